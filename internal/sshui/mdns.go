package sshui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// mdnsGroup is the IPv4 multicast DNS group and port (RFC 6762).
var mdnsGroup = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// mdnsTTL is how long answers may be cached, in seconds: the RFC's
// recommendation for host names.
const mdnsTTL = 120

// MDNS answers multicast DNS queries for name.local with the machine's
// IPv4 addresses until ctx is done, so that "ssh root@name.local" finds
// the recovery without knowing its address.
//
// It is a minimal responder: IPv4 only, on the interface the system picks
// for multicast, A records only, and no probing: when two machines
// announce the same name, clients get either.
func MDNS(ctx context.Context, name string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := net.ListenMulticastUDP("udp4", nil, mdnsGroup)
	if err != nil {
		return fmt.Errorf("mdns: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, 9000)
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("mdns: %w", err)
		}
		resp, unicast, err := mdnsAnswer(buf[:n], name, int(src.Port()) != mdnsGroup.Port, localIPv4())
		if err != nil || resp == nil {
			continue
		}
		dst := mdnsGroup.AddrPort()
		if unicast {
			dst = src
		}
		if _, err := c.WriteToUDPAddrPort(resp, dst); err != nil {
			log.Debug("mdns: answer", "to", dst, "err", err)
		}
	}
}

// localIPv4 is the machine's global unicast IPv4 addresses.
func localIPv4() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsGlobalUnicast() {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				out = append(out, ip)
			}
		}
	}
	return out
}

// mdnsAnswer answers an mDNS query for name.local (any case) with A
// records of addrs. It returns a nil response for packets that are not
// such a query. legacy is a query from a port other than 5353 (a plain
// DNS resolver, RFC 6762 section 6.7): it is answered by unicast with
// its ID and question. unicast says to send the answer to the asker
// rather than to the group.
func mdnsAnswer(query []byte, name string, legacy bool, addrs []netip.Addr) (resp []byte, unicast bool, err error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false, err
	}
	if h.Response || h.OpCode != 0 || len(addrs) == 0 {
		return nil, false, nil
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil, false, err
	}
	want := strings.ToLower(name) + ".local."
	var asked *dnsmessage.Question
	unicast = legacy
	for i, q := range qs {
		if (q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL) && strings.ToLower(q.Name.String()) == want {
			asked = &qs[i]
			if q.Class&(1<<15) != 0 { // the QU bit: the asker wants a unicast answer
				unicast = true
			}
		}
	}
	if asked == nil {
		return nil, false, nil
	}
	rh := dnsmessage.Header{Response: true, Authoritative: true}
	class := dnsmessage.ClassINET | 1<<15 // cache-flush: these are all our addresses
	if legacy {
		rh.ID = h.ID
		class = dnsmessage.ClassINET
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if legacy {
		if err := b.StartQuestions(); err != nil {
			return nil, false, err
		}
		q := *asked
		q.Class &^= 1 << 15
		if err := b.Question(q); err != nil {
			return nil, false, err
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false, err
	}
	for _, a := range addrs {
		if !a.Is4() {
			continue
		}
		rr := dnsmessage.ResourceHeader{Name: asked.Name, Class: class, TTL: mdnsTTL}
		if err := b.AResource(rr, dnsmessage.AResource{A: a.As4()}); err != nil {
			return nil, false, err
		}
	}
	resp, err = b.Finish()
	if err != nil {
		return nil, false, errors.Join(errors.New("BUG: mdns answer"), err)
	}
	return resp, unicast, nil
}
