package sshui

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TestMDNSOverNetwork asks the running responder the way a plain
// resolver does (from a port other than 5353, so the answer comes back
// by unicast). It skips where multicast does not work (no route, 5353
// taken).
func TestMDNSOverNetwork(t *testing.T) {
	if len(localIPv4()) == 0 {
		t.Skip("no IPv4 address to announce")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- MDNS(ctx, "pibackup-test", nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Log("responder:", err)
		}
	}()
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := query(t, 99, false, q("pibackup-test.local.", dnsmessage.TypeA, dnsmessage.ClassINET))
	buf := make([]byte, 1500)
	for range 20 {
		if _, err := c.WriteToUDP(msg, mdnsGroup); err != nil {
			t.Skip("no multicast route:", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if m.ID != 99 || len(m.Answers) == 0 {
			t.Fatalf("answer %+v; want ID 99 with A records", m)
		}
		return
	}
	select {
	case err := <-done:
		t.Skip("no multicast here:", err)
	default:
	}
	t.Skip("no answer over multicast (no multicast loopback here?)")
}
