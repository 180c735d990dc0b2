package restore

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The restore reads and rewrites files inside trees it does not control:
// a root filesystem just extracted from an archive, an rsync set's tree.
// Either may hold symlinks that point anywhere (etc/fstab -> /etc/passwd
// of the host), or device nodes. os.ReadFile and os.OpenFile would follow
// such a symlink onto the host. The helpers below resolve every name the
// way the restored system will see it (openat2 RESOLVE_IN_ROOT: absolute
// symlinks and ".." stop at the tree's root, /proc magic links are
// refused) and only ever open regular files.

// ErrNotRegular is returned for a name that is not a regular file inside
// the root (a folder, a device node, a FIFO).
var ErrNotRegular = errors.New("not a regular file")

const inRootResolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// OpenInRoot opens the regular file name (relative, slash-separated)
// below root for reading, resolved as the restored system would resolve
// it (see openInRoot): a restore test reads a restored tree with it.
func OpenInRoot(root, name string) (*os.File, error) { return openInRoot(root, name, os.O_RDONLY) }

// openInRoot opens name (relative, slash-separated) below the folder
// root with flags (O_RDONLY or O_WRONLY|O_TRUNC, never O_CREAT). It
// refuses anything but a regular file before opening it for I/O, so no
// device or FIFO of the tree is ever opened.
func openInRoot(root, name string, flags int) (*os.File, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	// First an O_PATH handle: it opens nothing, so we can look at what the
	// name is before touching it.
	pfd, err := openat2(rfd, name, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name + " (in " + root + ")", Err: err}
	}
	var pst unix.Stat_t
	err = unix.Fstat(pfd, &pst)
	unix.Close(pfd)
	if err != nil {
		return nil, &os.PathError{Op: "stat", Path: name + " (in " + root + ")", Err: err}
	}
	if pst.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &os.PathError{Op: "open", Path: name + " (in " + root + ")", Err: ErrNotRegular}
	}
	fd, err := openat2(rfd, name, flags|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name + " (in " + root + ")", Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != pst.Dev || st.Ino != pst.Ino {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: name + " (in " + root + ")", Err: errors.New("changed while opened")}
	}
	return os.NewFile(uintptr(fd), root+"/"+name), nil
}

func openat2(dirfd int, name string, flags int) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags), Resolve: inRootResolve}
	for {
		fd, err := unix.Openat2(dirfd, name, how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // RESOLVE_IN_ROOT asks to retry when a rename raced
		}
		if errors.Is(err, unix.ENOSYS) {
			return -1, fmt.Errorf("openat2 (Linux 5.6 or later) is needed to open files inside a restored tree safely: %w", err)
		}
		return fd, err
	}
}

// readFileInRoot reads the regular file name below root.
func readFileInRoot(root, name string) ([]byte, error) {
	f, err := openInRoot(root, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// rewriteFileInRoot replaces the content of the existing regular file
// name below root; its owner, mode and xattrs stay.
func rewriteFileInRoot(root, name string, data []byte) error {
	f, err := openInRoot(root, name, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isDirInRoot reports whether name below root is a folder (symlinks
// resolved inside root).
func isDirInRoot(root, name string) bool {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(rfd)
	fd, err := openat2(rfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
