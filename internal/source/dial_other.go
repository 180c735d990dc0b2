//go:build !linux

package source

import (
	"context"
	"net"
	"time"
)

// dialTCP connects with keepalives; TCP_USER_TIMEOUT is Linux-only (see
// dial_linux.go for why both matter).
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}}
	return d.DialContext(ctx, "tcp", addr)
}
