package store

import (
	"context"
	"fmt"
)

// WriteFile creates name in st with data (a small file: a log, a state
// file). Like Create, it refuses a name that exists; nothing is left
// behind when it fails.
func WriteFile(ctx context.Context, st Store, name string, data []byte) error {
	f, err := st.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		f.Abort()
		return err
	}
	return nil
}
