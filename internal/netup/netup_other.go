//go:build !linux

package netup

import (
	"context"
	"errors"
	"log/slog"
)

// Up needs Linux (netlink).
func Up(ctx context.Context, c Config, log *slog.Logger) (Status, error) {
	return Status{}, errors.New("netup: network bring-up needs Linux")
}
