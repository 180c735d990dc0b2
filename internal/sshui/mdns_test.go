package sshui

import (
	"net/netip"
	"reflect"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func query(t *testing.T, id uint16, response bool, qs ...dnsmessage.Question) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: response})
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if err := b.Question(q); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func q(name string, typ dnsmessage.Type, class dnsmessage.Class) dnsmessage.Question {
	return dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: class}
}

func TestMDNSAnswer(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("192.168.1.50"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.0.0.7")}
	qu := dnsmessage.ClassINET | 1<<15
	for _, tt := range []struct {
		name        string
		msg         []byte
		legacy      bool
		wantAnswer  bool
		wantUnicast bool
	}{
		{name: "A", msg: query(t, 0, false, q("pibackup-recovery.local.", dnsmessage.TypeA, dnsmessage.ClassINET)), wantAnswer: true},
		{name: "ANY in capitals among others", msg: query(t, 0, false, q("other.local.", dnsmessage.TypeA, dnsmessage.ClassINET), q("PiBackup-Recovery.local.", dnsmessage.TypeALL, dnsmessage.ClassINET)), wantAnswer: true},
		{name: "QU bit", msg: query(t, 0, false, q("pibackup-recovery.local.", dnsmessage.TypeA, qu)), wantAnswer: true, wantUnicast: true},
		{name: "legacy resolver", msg: query(t, 4711, false, q("pibackup-recovery.local.", dnsmessage.TypeA, dnsmessage.ClassINET)), legacy: true, wantAnswer: true, wantUnicast: true},
		{name: "other name", msg: query(t, 0, false, q("pi.local.", dnsmessage.TypeA, dnsmessage.ClassINET))},
		{name: "AAAA", msg: query(t, 0, false, q("pibackup-recovery.local.", dnsmessage.TypeAAAA, dnsmessage.ClassINET))},
		{name: "a response", msg: query(t, 0, true, q("pibackup-recovery.local.", dnsmessage.TypeA, dnsmessage.ClassINET))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, unicast, err := mdnsAnswer(tt.msg, "pibackup-recovery", tt.legacy, addrs)
			if err != nil {
				t.Fatal(err)
			}
			if (resp != nil) != tt.wantAnswer || unicast != tt.wantUnicast {
				t.Fatalf("mdnsAnswer() = answer %v, unicast %v; want %v, %v", resp != nil, unicast, tt.wantAnswer, tt.wantUnicast)
			}
			if resp == nil {
				return
			}
			var m dnsmessage.Message
			if err := m.Unpack(resp); err != nil {
				t.Fatal(err)
			}
			if !m.Response || !m.Authoritative {
				t.Errorf("header %+v; want an authoritative response", m.Header)
			}
			if tt.legacy && (m.ID != 4711 || len(m.Questions) != 1) {
				t.Errorf("legacy answer: ID %d, %d questions; want 4711 and the question", m.ID, len(m.Questions))
			}
			var got []netip.Addr
			for _, a := range m.Answers {
				got = append(got, netip.AddrFrom4(a.Body.(*dnsmessage.AResource).A))
				if a.Header.TTL != mdnsTTL {
					t.Errorf("TTL %d", a.Header.TTL)
				}
			}
			if want := []netip.Addr{addrs[0], addrs[2]}; !reflect.DeepEqual(got, want) {
				t.Errorf("answers %v; want %v", got, want)
			}
		})
	}
	if resp, _, err := mdnsAnswer([]byte("junk"), "x", false, addrs); resp != nil || err == nil {
		t.Errorf("mdnsAnswer(junk) = %v, %v; want an error", resp, err)
	}
}
