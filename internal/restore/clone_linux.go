package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// usedBytes is how much of the filesystem holding path is in use.
func usedBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks-st.Bfree) * int64(st.Bsize), nil // Bsize is int32 on 32-bit ARM
}

// owner gives the file owner fi holds, if it holds one.
func owner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*unix.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// syncDirTimes gives every directory under dst the times of the same
// directory under src, staying on src's filesystem like rsync -x (a
// mount point's own times are taken, what is below it is not walked).
func syncDirTimes(ctx context.Context, src, dst string) error {
	var root unix.Stat_t
	if err := unix.Lstat(src, &root); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
				return nil // vanished or unreadable (live /proc, ...): rsync skipped it too
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		var ss, ds unix.Stat_t
		if err := unix.Lstat(p, &ss); err != nil {
			return nil
		}
		t := filepath.Join(dst, rel)
		if err := unix.Lstat(t, &ds); err == nil && ds.Mode&unix.S_IFMT == unix.S_IFDIR && ds.Mtim != ss.Mtim {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, t, []unix.Timespec{ss.Atim, ss.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("set times of %s: %w", t, err)
			}
		}
		if ss.Dev != root.Dev {
			return filepath.SkipDir
		}
		return nil
	})
}

// copyTimes gives dst the access and modification times of src, to the
// nanosecond.
func copyTimes(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", dst, err)
	}
	return nil
}
