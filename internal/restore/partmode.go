package restore

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/pibackup/pibackup/internal/backupset"
)

// ErrNotSupported is returned for sets this build cannot restore yet.
var ErrNotSupported = errors.New("not supported yet")

// planPartitions plans a partition-oriented (-P) restore.
func (p *Plan) planPartitions(ctx context.Context) error {
	return fmt.Errorf("set %s: partition-oriented sets: %w", p.set.dirName, ErrNotSupported)
}

func (p *Plan) executePartitions(ctx context.Context, res *Result) error {
	return fmt.Errorf("set %s: partition-oriented sets: %w", p.set.dirName, ErrNotSupported)
}

// restoreBootTar makes a FAT32 boot partition from a .tmg tar.
func (p *Plan) restoreBootTar(ctx context.Context, f *os.File, boot backupset.Partition) (int64, error) {
	return 0, fmt.Errorf("set %s: boot partition as tar (%s): %w", p.set.dirName, p.set.bootTar, ErrNotSupported)
}
