package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// nfsVersions are tried in this order when the Spec names none. The
// kernel.amd64 QEMU kernel has no 4.1/4.2; a Pi kernel has all.
var nfsVersions = []string{"4.2", "4.1", "4", "3"}

// NFSMountArgs returns the mount(2) source and data string for NFS
// version vers of sp, mounted by the kernel client without the mount.nfs
// helper (so addr= must be an IP, and v4 needs clientaddr=).
//
// The mount is soft with a bounded retry, so a server that goes away
// mid-restore gives the restore an I/O error instead of hanging it
// forever; we only read, so soft cannot corrupt anything.
func NFSMountArgs(sp Spec, vers string, server, client netip.Addr) (src, data string) {
	srv := server.String()
	if server.Is6() {
		srv = "[" + srv + "]"
	}
	src = srv + ":" + sp.Export
	opts := []string{"vers=" + vers, "proto=tcp"}
	if server.Is6() {
		opts[1] = "proto=tcp6"
	}
	if sp.Port != 0 {
		opts = append(opts, "port="+strconv.Itoa(sp.Port))
	}
	if vers == "3" {
		if sp.MountPort != 0 {
			opts = append(opts, "mountport="+strconv.Itoa(sp.MountPort))
		}
		opts = append(opts, "mountproto="+strings.TrimPrefix(opts[1], "proto="), "nolock")
	}
	opts = append(opts, "soft", "timeo=150", "retrans=3", "addr="+server.String())
	if vers != "3" && client.IsValid() {
		opts = append(opts, "clientaddr="+client.String())
	}
	return src, strings.Join(opts, ",")
}

func (o *Opener) openNFS(ctx context.Context, sp Spec) (Source, error) {
	server, client, err := probeTCP(ctx, sp.Host, sp.Addr())
	if err != nil {
		return nil, fmt.Errorf("nfs %s: %w", sp.Host, err)
	}
	versions := nfsVersions
	if sp.NFSVersion != "" {
		versions = []string{sp.NFSVersion}
	}
	mnt, err := o.mountpoint(KindNFS)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, v := range versions {
		src, data := NFSMountArgs(sp, v, server, client)
		err := o.Mounter.Mount(src, mnt, "nfs", mountReadOnly, data)
		if err == nil {
			if o.Log != nil {
				o.Log.Info("nfs mounted", "source", src, "options", data)
			}
			return o.mounted(mnt, sp.Path, "", "nfs "+src)
		}
		errs = append(errs, fmt.Errorf("vers=%s: %w", v, err))
	}
	_ = os.Remove(mnt)
	return nil, fmt.Errorf("nfs mount %s:%s: %w", sp.Host, sp.Export, errors.Join(errs...))
}

// probeTCP resolves host and opens a TCP connection to addr, to fail fast
// with ErrUnreachable and to learn which local address reaches the server
// (NFSv4 clientaddr=).
func probeTCP(ctx context.Context, host, addr string) (server, client netip.Addr, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("%w (%w)", ErrUnreachable, err)
	}
	defer conn.Close()
	ra, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	la, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	return ra.Addr().Unmap(), la.Addr().Unmap(), nil
}
