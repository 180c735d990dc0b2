package netup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
)

// Up brings the network up as c says and reports what it got. It fails
// only when no interface got an address; the Status is valid either way.
func Up(ctx context.Context, c Config, log *slog.Logger) (Status, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := loopbackUp(); err != nil {
		log.Warn("loopback up", "err", err)
	}
	wait := c.LinkWait
	if wait == 0 {
		wait = 20 * time.Second
	}
	links, err := waitLinks(ctx, c.ifaces(), wait)
	if err != nil {
		return Status{}, err
	}
	var up []netlink.Link
	for _, l := range links {
		if carrier(l) {
			up = append(up, l)
		}
	}
	if len(up) == 0 {
		return status(links, nil), fmt.Errorf("no network cable on %s", names(links))
	}
	errs := map[string]error{}
	if c.Static.IsValid() {
		if err := static(up[0], c); err != nil {
			errs[up[0].Attrs().Name] = err
		}
		log.Info("static address", "link", up[0].Attrs().Name, "addr", c.Static.String(), "err", err)
	} else {
		timeout := c.DHCPTimeout
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		cfg := dhclient.Config{Timeout: timeout, Retries: 3}
		for r := range dhclient.SendRequests(ctx, up, true, false, cfg, 5*time.Second) {
			name := r.Interface.Attrs().Name
			if r.Err != nil {
				errs[name] = fmt.Errorf("dhcp: %w", r.Err)
				log.Warn("dhcp", "link", name, "err", r.Err)
				continue
			}
			if err := r.Lease.Configure(); err != nil {
				errs[name] = fmt.Errorf("configure lease: %w", err)
				log.Warn("dhcp configure", "link", name, "err", err)
				continue
			}
			log.Info("dhcp lease", "link", name, "lease", r.Lease.String())
		}
	}
	st := status(links, errs)
	if !st.HasAddress() {
		return st, fmt.Errorf("no address on %s: %w", names(up), errors.Join(mapValues(errs)...))
	}
	return st, nil
}

func mapValues(m map[string]error) []error {
	var out []error
	for _, e := range m {
		out = append(out, e)
	}
	return out
}

func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// waitLinks sets every matching link up and waits until one has a
// carrier, or until wait passes; it returns the matching links.
func waitLinks(ctx context.Context, re interface{ MatchString(string) bool }, wait time.Duration) ([]netlink.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		all, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list network links: %w", err)
		}
		var links []netlink.Link
		anyCarrier := false
		for _, l := range all {
			if !re.MatchString(l.Attrs().Name) {
				continue
			}
			if l.Attrs().Flags&net.FlagUp == 0 {
				_ = netlink.LinkSetUp(l)
			}
			if fresh, err := netlink.LinkByIndex(l.Attrs().Index); err == nil {
				l = fresh
			}
			links = append(links, l)
			anyCarrier = anyCarrier || carrier(l)
		}
		if anyCarrier || time.Now().After(deadline) {
			if len(links) == 0 {
				return nil, errors.New("no wired network interface found")
			}
			return links, nil
		}
		select {
		case <-ctx.Done():
			return links, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func carrier(l netlink.Link) bool {
	o := l.Attrs().OperState
	return o == netlink.OperUp || o == netlink.OperUnknown
}

func names(links []netlink.Link) string {
	var s []string
	for _, l := range links {
		s = append(s, l.Attrs().Name)
	}
	return fmt.Sprint(s)
}

func static(l netlink.Link, c Config) error {
	ipnet := &net.IPNet{IP: c.Static.Addr().AsSlice(), Mask: net.CIDRMask(c.Static.Bits(), c.Static.Addr().BitLen())}
	if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: ipnet}); err != nil {
		return fmt.Errorf("add %s to %s: %w", c.Static, l.Attrs().Name, err)
	}
	if c.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: c.Gateway.AsSlice()}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s: %w", c.Gateway, err)
		}
	}
	if len(c.DNS) > 0 {
		p := c.ResolvConf
		if p == "" {
			p = "/etc/resolv.conf"
		}
		if err := os.WriteFile(p, []byte(ResolvConf(c.DNS)), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// status reads the addresses of links.
func status(links []netlink.Link, errs map[string]error) Status {
	var st Status
	for _, l := range links {
		if fresh, err := netlink.LinkByIndex(l.Attrs().Index); err == nil {
			l = fresh
		}
		sl := Link{Name: l.Attrs().Name, Carrier: carrier(l), Err: errs[l.Attrs().Name]}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			if p, ok := netip.AddrFromSlice(a.IP); ok {
				ones, _ := a.Mask.Size()
				sl.Addrs = append(sl.Addrs, netip.PrefixFrom(p.Unmap(), ones))
			}
		}
		st.Links = append(st.Links, sl)
	}
	return st
}
