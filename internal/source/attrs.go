package source

import (
	"io/fs"
	"syscall"

	"github.com/pkg/sftp"
)

// Attrs is what a source tells about a file beyond io/fs: its numeric
// owner and, for a device node, its numbers.
type Attrs struct {
	UID, GID uint32
	HasOwner bool // the source reports owners (a local folder, SFTP)
	Rdev     uint64
	HasRdev  bool // the source reports device numbers (a local folder only)
	Ino      uint64
	HasIno   bool // the source reports inode numbers, so hardlinks show (a local folder only)
}

// AttrsOf returns what fi's source reports: a local folder (os.DirFS)
// everything stat(2) has; SFTP (version 3, OpenSSH) the numeric uid and
// gid but no device numbers and no inode numbers; SMB without unix
// extensions none of them.
func AttrsOf(fi fs.FileInfo) Attrs {
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t:
		return Attrs{UID: st.Uid, GID: st.Gid, HasOwner: true, Rdev: uint64(st.Rdev), HasRdev: true, Ino: st.Ino, HasIno: true}
	case *sftp.FileStat:
		return Attrs{UID: st.UID, GID: st.GID, HasOwner: true}
	}
	return Attrs{}
}
