package netup

import (
	"errors"
	"net/netip"
	"reflect"
	"regexp"
	"testing"
)

func TestMatch(t *testing.T) {
	names := []string{"lo", "eth0", "usb0", "wlan0", "enp1s0", "end0", "enx00e04c680001", "docker0", "veth12ab", "eth1", "bond0"}
	got := Match(regexp.MustCompile(DefaultIfaces), names)
	want := []string{"end0", "enp1s0", "enx00e04c680001", "eth0", "eth1", "usb0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Match(DefaultIfaces) = %q; want %q", got, want)
	}
}

func TestStatusString(t *testing.T) {
	for _, tt := range []struct {
		st   Status
		want string
	}{
		{Status{}, "no network"},
		{Status{Links: []Link{{Name: "eth0", Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.15/24")}}}}, "eth0 10.0.2.15/24"},
		{Status{Links: []Link{{Name: "eth0"}, {Name: "usb0", Carrier: true, Err: errors.New("dhcp: timeout")}}}, "eth0 no cable, usb0 no address"},
	} {
		if got := tt.st.String(); got != tt.want {
			t.Errorf("String() = %q; want %q", got, tt.want)
		}
		if got, want := tt.st.HasAddress(), tt.want == "eth0 10.0.2.15/24"; got != want {
			t.Errorf("%q: HasAddress() = %v", tt.want, got)
		}
	}
}

func TestResolvConf(t *testing.T) {
	got := ResolvConf([]netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("2001:db8::1")})
	if want := "nameserver 10.0.2.3\nnameserver 2001:db8::1\n"; got != want {
		t.Errorf("ResolvConf() = %q; want %q", got, want)
	}
}
