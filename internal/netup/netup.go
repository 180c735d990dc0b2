// Package netup brings the recovery's network up: every wired interface
// whose name matches a pattern is set up, then configured by DHCP (u-root
// pkg/dhclient) or with a static address. The network is optional for the
// recovery: a USB restore needs none, so callers log a failure and go on.
package netup

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"
)

// DefaultIfaces matches wired Ethernet (eth0, enp1s0, end0, enx…) and USB
// gadget/tethering links (usb0), not lo, Wi-Fi or virtual links.
const DefaultIfaces = `^(eth[0-9]+|en[a-z0-9]+|usb[0-9]+)$`

// Config says how to bring the network up.
type Config struct {
	Ifaces *regexp.Regexp // nil: DefaultIfaces
	// Static, when valid, is set on the first interface with a carrier
	// instead of asking DHCP.
	Static  netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr
	// LinkWait is how long to wait for an interface with a carrier to
	// appear (USB network adapters on a Pi 3 take about 13 s). 0: 20 s.
	LinkWait time.Duration
	// DHCPTimeout bounds one DHCP attempt; there are 3. 0: 5 s.
	DHCPTimeout time.Duration
	// ResolvConf is where DNS servers go; "": /etc/resolv.conf.
	ResolvConf string
}

func (c Config) ifaces() *regexp.Regexp {
	if c.Ifaces != nil {
		return c.Ifaces
	}
	return regexp.MustCompile(DefaultIfaces)
}

// Link is the state of one interface after Up.
type Link struct {
	Name    string
	Carrier bool
	Addrs   []netip.Prefix
	Err     error // why it has no address
}

// Status is the result of Up.
type Status struct {
	Links []Link
}

// String is the one-line summary the UI header shows:
// "eth0 10.0.2.15/24, usb0 no carrier", or "no network".
func (s Status) String() string {
	var parts []string
	for _, l := range s.Links {
		switch {
		case len(l.Addrs) > 0:
			var as []string
			for _, a := range l.Addrs {
				as = append(as, a.String())
			}
			parts = append(parts, l.Name+" "+strings.Join(as, " "))
		case !l.Carrier:
			parts = append(parts, l.Name+" no cable")
		default:
			parts = append(parts, l.Name+" no address")
		}
	}
	if len(parts) == 0 {
		return "no network"
	}
	return strings.Join(parts, ", ")
}

// HasAddress reports whether any link got an address.
func (s Status) HasAddress() bool {
	for _, l := range s.Links {
		if len(l.Addrs) > 0 {
			return true
		}
	}
	return false
}

// Match returns the names that re matches, sorted.
func Match(re *regexp.Regexp, names []string) []string {
	var out []string
	for _, n := range names {
		if re.MatchString(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// ResolvConf renders a resolv.conf for the given servers.
func ResolvConf(dns []netip.Addr) string {
	var b strings.Builder
	for _, a := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	return b.String()
}
