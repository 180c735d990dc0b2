package setfs

import (
	"context"
	"fmt"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// passthrough shows a folder as it is (go-fuse's loopback): a raspiBackup
// rsync set's tree, or an ext4 filesystem mounted read-only. Inode
// numbers are the folder's own, offset by base (see tree), so hardlinks
// keep sharing theirs and two folders of one mount never share one.
// hide, if not nil, hides names at the top (a set's own files).
func passthrough(dir string, base uint64, hide func(name string) bool) (fs.InodeEmbedder, fs.StableAttr, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, fs.StableAttr{}, fmt.Errorf("stat %s: %w", dir, err)
	}
	// The loopback numbers inodes st_ino ^ swap32(st_dev ^ Dev); a Dev
	// that differs from the folder's device by base>>32 makes that
	// st_ino ^ base.
	r := &fs.LoopbackRoot{Path: dir, Dev: st.Dev ^ (base >> 32)}
	var root fs.InodeEmbedder = &fs.LoopbackNode{RootData: r}
	if hide != nil {
		root = &hidingNode{LoopbackNode: fs.LoopbackNode{RootData: r}, hide: hide}
	}
	r.RootNode = root
	return root, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: st.Ino ^ base}, nil
}

// hidingNode is a loopback folder that does not show some of its names.
type hidingNode struct {
	fs.LoopbackNode
	hide func(name string) bool
}

func (n *hidingNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.hide(name) {
		return nil, syscall.ENOENT
	}
	return n.LoopbackNode.Lookup(ctx, name, out)
}

// OpendirHandle serves the listing without the hidden names (the
// loopback's own handle would list them).
func (n *hidingNode) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, errno := n.Readdir(ctx)
	return ds, 0, errno
}

func (n *hidingNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ds, errno := n.LoopbackNode.Readdir(ctx)
	if errno != 0 {
		return nil, errno
	}
	defer ds.Close()
	var list []fuse.DirEntry
	for ds.HasNext() {
		e, errno := ds.Next()
		if errno != 0 {
			return nil, errno
		}
		if !n.hide(e.Name) {
			list = append(list, e)
		}
	}
	return fs.NewListDirStream(list), 0
}
