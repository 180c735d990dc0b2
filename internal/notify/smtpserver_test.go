package notify

// A small SMTP server for the tests: EHLO, STARTTLS, implicit TLS, AUTH
// PLAIN and LOGIN, MAIL/RCPT/DATA. Just enough of RFC 5321 to let a real
// client (go-mail) run its whole dialogue against it.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

type received struct {
	From     string
	To       []string
	Data     string
	AuthUser string
	AuthMech string
	TLS      bool
}

type smtpServer struct {
	t         *testing.T
	ln        net.Listener
	tlsConf   *tls.Config
	implicit  bool // TLS from the first byte
	startTLS  bool // offer STARTTLS
	user      string
	password  string
	mu        sync.Mutex
	mails     []received
	authTries []string // "MECH user:pass" as received, to prove what was sent
	conns     []net.Conn
	wg        sync.WaitGroup
}

// testCert makes a self-signed certificate for 127.0.0.1 and "localhost".
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mail.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost", "mail.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func newSMTPServer(t *testing.T, implicit, startTLS bool, user, password string) (*smtpServer, *x509.CertPool) {
	cert, pool := testCert(t)
	s := &smtpServer{t: t, implicit: implicit, startTLS: startTLS, user: user, password: password,
		tlsConf: &tls.Config{Certificates: []tls.Certificate{cert}}}
	var err error
	if implicit {
		s.ln, err = tls.Listen("tcp", "127.0.0.1:0", s.tlsConf)
	} else {
		s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		s.ln.Close()
		// A client that gives up mid-dialogue may not hang up; do it for it.
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s, pool
}

func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *smtpServer) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	isTLS := s.implicit
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	say := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		w.Flush()
	}
	read := func() (string, bool) {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", false
		}
		return strings.TrimRight(l, "\r\n"), true
	}
	var cur received
	authed := s.user == ""
	say("220 mail.test ESMTP test")
	for {
		line, ok := read()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			lines := []string{"250-mail.test"}
			if s.startTLS && !isTLS {
				lines = append(lines, "250-STARTTLS")
			}
			if isTLS && s.user != "" {
				lines = append(lines, "250-AUTH PLAIN LOGIN")
			}
			lines = append(lines, "250 8BITMIME")
			say(lines...)
		case "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(c, s.tlsConf)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, isTLS = tc, true
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			var u, p string
			switch strings.ToUpper(mech) {
			case "PLAIN":
				if initial == "" {
					say("334 ")
					initial, _ = read()
				}
				b, _ := base64.StdEncoding.DecodeString(initial)
				parts := strings.Split(string(b), "\x00")
				if len(parts) == 3 {
					u, p = parts[1], parts[2]
				}
			case "LOGIN":
				say("334 " + base64.StdEncoding.EncodeToString([]byte("Username:")))
				l, _ := read()
				b, _ := base64.StdEncoding.DecodeString(l)
				u = string(b)
				say("334 " + base64.StdEncoding.EncodeToString([]byte("Password:")))
				l, _ = read()
				b, _ = base64.StdEncoding.DecodeString(l)
				p = string(b)
			default:
				say("504 unknown mechanism")
				continue
			}
			s.mu.Lock()
			s.authTries = append(s.authTries, strings.ToUpper(mech)+" "+u+":"+p)
			s.mu.Unlock()
			if u == s.user && p == s.password {
				authed = true
				cur.AuthUser, cur.AuthMech = u, strings.ToUpper(mech)
				say("235 ok")
			} else {
				say("535 5.7.8 authentication failed")
			}
		case "MAIL":
			if !authed {
				say("530 authentication required")
				continue
			}
			cur.From = arg
			say("250 ok")
		case "RCPT":
			cur.To = append(cur.To, arg)
			say("250 ok")
		case "DATA":
			say("354 go")
			var b strings.Builder
			for {
				l, ok := read()
				if !ok {
					return
				}
				if l == "." {
					break
				}
				b.WriteString(strings.TrimPrefix(l, ".") + "\n")
			}
			cur.Data, cur.TLS = b.String(), isTLS
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			cur = received{AuthUser: cur.AuthUser, AuthMech: cur.AuthMech}
			say("250 queued")
		case "RSET":
			cur = received{AuthUser: cur.AuthUser, AuthMech: cur.AuthMech}
			say("250 ok")
		case "NOOP":
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

func (s *smtpServer) got() ([]received, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.mails...), append([]string(nil), s.authTries...)
}
