package source

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dead-peer detection for the user-space network sources (SFTP, SMB).
// A restore reads for many minutes; when the cable is pulled or the
// server dies, no RST ever arrives and, without these, a read waits for
// the kernel's default of about 15 minutes of retransmissions (or for
// ever when the connection is idle), with the UI frozen on a progress
// bar. With them a dead link fails the read in about 30 s and the
// restore ends in a clear "incomplete" error.
const (
	keepAliveIdle     = 10 * time.Second // first probe after this much silence
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
	// userTimeout bounds how long sent data may stay unacknowledged
	// (TCP_USER_TIMEOUT); it also caps the keepalive probing.
	userTimeout = 30 * time.Second
)

// dialTCP connects to addr with keepalives and a user timeout set, so
// that a dead peer turns into a read error rather than a hang.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout/time.Millisecond))
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return d.DialContext(ctx, "tcp", addr)
}
