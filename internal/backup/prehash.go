package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/treelist"
)

// A first rsync run copies every file, and the tree listing after it
// must hash every file of the new tree. Done one after the other, the
// listing is a second pass over all the data when rsync is done. A
// prehasher does most of that hashing while rsync runs: rsync names each
// file it has copied (--out-format), and a goroutine hashes that file in
// the new tree, from the page cache, while rsync goes on with the next.
// The listing then takes those hashes through a treelist.Reuse instead of
// reading the files again.
//
// A hash is only handed on for a file that has not changed since it was
// hashed: the same inode, size, mtime and ctime when rsync has ended as
// before and after the read (any write or rename in between changes the
// ctime). Anything else is left to the listing, and the set's
// verification re-lists the whole tree, so a wrong hash cannot pass
// unnoticed.

// rsyncNamePrefix marks rsync's --out-format lines among its
// --info=progress2 lines on stdout.
const rsyncNamePrefix = "pibackup-copied:"

// prehashMax bounds the files a prehasher remembers (about 150 bytes
// each): beyond it the listing hashes the rest itself.
const prehashMax = 1 << 18

// withOutFormat adds to rsync's argv (ending in SRC DEST) the option that
// makes it name every file it copied.
func withOutFormat(args []string) []string {
	n := len(args) - 2
	out := append(slices.Clone(args[:n]), "--out-format="+rsyncNamePrefix+"%n")
	return append(out, args[n:]...)
}

type prehashed struct {
	sum          [sha256.Size]byte
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func (p *prehashed) same(s *unix.Stat_t) bool {
	return s.Mode&unix.S_IFMT == unix.S_IFREG && uint64(s.Dev) == p.dev && s.Ino == p.ino &&
		s.Size == p.size && s.Mtim == p.mtime && s.Ctim == p.ctime
}

type prehasher struct {
	root    string
	names   chan string
	done    chan struct{}
	files   map[string]*prehashed // written by the worker only, read after done
	dropped int                   // names not queued: the worker was behind
	bytes   int64
	// named, in a --link-dest run, is every path rsync named (the files
	// it wrote; written by copied only), unless namedFull: too many to
	// remember. With it the listing takes the hashes of all other files
	// from the previous listing without an lstat of the previous tree
	// (treelist.NewReuseNamed).
	named     map[string]bool
	namedFull bool
}

// startPrehash starts hashing the files rsync names under root. linkDest
// says rsync runs with --link-dest: the names it gives are then kept.
func startPrehash(root string, linkDest bool) *prehasher {
	p := &prehasher{root: root, names: make(chan string, 4096), done: make(chan struct{}), files: map[string]*prehashed{}}
	if linkDest {
		p.named = map[string]bool{}
	}
	go p.work()
	return p
}

// copied takes a name from rsync's output. It never blocks rsync: when
// the worker is behind, the file is left to the listing.
func (p *prehasher) copied(escaped string) {
	if p == nil {
		return
	}
	if p.named != nil && !p.namedFull {
		if len(p.named) >= prehashMax {
			p.namedFull = true
		} else {
			p.named[strings.TrimSuffix(unescapeRsync(escaped), "/")] = true
		}
	}
	select {
	case p.names <- escaped:
	default:
		p.dropped++
	}
}

// work hashes the named files in rsync's order. rsync names a file when
// its sender has sent it, a little before its receiver has renamed it into
// place: a file that is not there yet is waited for, unless rsync has
// ended.
func (p *prehasher) work() {
	defer close(p.done)
	buf := make([]byte, 1<<20)
	var pending []string
	open := true
	wait := prehashWaitMin
	take := func(name string, ok bool) {
		switch {
		case !ok:
			open = false
		case len(pending) < prehashMax:
			pending = append(pending, name)
		default:
			p.dropped++
		}
	}
	for open || len(pending) > 0 {
		if len(pending) == 0 {
			name, ok := <-p.names
			take(name, ok)
			continue
		}
		for more := true; more && open; {
			select {
			case name, ok := <-p.names:
				take(name, ok)
			default:
				more = false
			}
		}
		hashed := false
		for len(pending) > 0 {
			if len(p.files) >= prehashMax {
				pending = pending[:0]
				break
			}
			if !p.hash(unescapeRsync(pending[0]), buf) && open && !p.exists(pending[1:min(len(pending), 4)]) {
				// Not in place yet. (When a later file is, this one
				// never will be: rsync's receiver keeps its sender's
				// order. The listing sees to it.)
				break
			}
			pending = pending[1:]
			hashed = true
		}
		if hashed {
			wait = prehashWaitMin
		}
		if !hashed && open && len(pending) > 0 {
			// The first file is not in place yet: look again after a
			// while, ever less often while it stays missing, taking
			// rsync's names meanwhile. Looking again on every new name
			// or every 2 ms took as many lstat calls as the listing makes
			// in all: CPU time rsync needs on a small machine.
			timer := time.NewTimer(wait)
			for waiting := true; waiting && open; {
				select {
				case name, ok := <-p.names:
					take(name, ok)
				case <-timer.C:
					waiting = false
				}
			}
			timer.Stop()
			wait = min(2*wait, prehashWaitMax)
		}
	}
}

// The prehasher looks for a file rsync named but has not put in place yet
// after prehashWaitMin, then ever less often, up to every prehashWaitMax.
const (
	prehashWaitMin = 2 * time.Millisecond
	prehashWaitMax = 64 * time.Millisecond
)

// exists reports whether any of the named files is in the tree.
func (p *prehasher) exists(names []string) bool {
	for _, n := range names {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(p.root, unescapeRsync(n)), &st) == nil {
			return true
		}
	}
	return false
}

// hash hashes the file rel of the tree; false if it is not there yet.
func (p *prehasher) hash(rel string, buf []byte) bool {
	if rel == "" || strings.HasSuffix(rel, "/") || !filepath.IsLocal(rel) {
		return true // a folder, or not a name in the tree
	}
	path := filepath.Join(p.root, rel)
	// Only a regular file is opened. rsync names device nodes, FIFOs and
	// sockets too, and opening the copy of a device node opens the device
	// itself: a copied /dev/watchdog would arm this machine's watchdog, a
	// console node would become our controlling terminal.
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return !errors.Is(err, unix.ENOENT)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return true // the listing sees to it
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return true // unreadable: the listing sees to it
	}
	defer f.Close()
	var before, after unix.Stat_t
	if unix.Fstat(int(f.Fd()), &before) != nil || before.Mode&unix.S_IFMT != unix.S_IFREG {
		return true
	}
	ph := &prehashed{dev: uint64(before.Dev), ino: before.Ino, size: before.Size, mtime: before.Mtim, ctime: before.Ctim}
	h := sha256.New()
	if n, err := io.CopyBuffer(h, f, buf); err != nil || n != before.Size {
		return true
	}
	if unix.Fstat(int(f.Fd()), &after) != nil || !ph.same(&after) {
		return true
	}
	h.Sum(ph.sum[:0])
	p.files[rel] = ph
	p.bytes += before.Size
	return true
}

// finish waits for the files queued so far and returns the hashes of
// those unchanged since, for the listing of root; nil if there are none.
func (p *prehasher) finish(log *slog.Logger) *treelist.Reuse {
	if p == nil {
		return nil
	}
	p.stop()
	return p.reuse(log)
}

// stop waits for the worker to hash the files queued so far.
func (p *prehasher) stop() {
	close(p.names)
	<-p.done
}

// reuse returns the hashes taken, for the listing of the tree. Whether a
// file is unchanged since it was hashed is checked by the listing's own
// walk (treelist.NewReuseHashed), with the lstat it makes anyway: no pass
// over the files here.
func (p *prehasher) reuse(log *slog.Logger) *treelist.Reuse {
	files := p.files
	p.files = nil
	named := p.named
	if p.namedFull {
		named = nil // incomplete: the listing looks at the previous tree
	}
	log.Info("files hashed while rsync ran", "files", len(files), "bytes", p.bytes, "not queued", p.dropped, "named by rsync", len(p.named))
	if len(files) == 0 && named == nil {
		return nil
	}
	hashed := make(map[string]treelist.Hashed, len(files))
	for rel, ph := range files {
		hashed[rel] = treelist.Hashed{Dev: ph.dev, Ino: ph.ino, Size: ph.size, Mtime: ph.mtime, Ctime: ph.ctime,
			Sum: hex.EncodeToString(ph.sum[:])}
	}
	if named != nil {
		return treelist.NewReuseNamed(hashed, named)
	}
	return treelist.NewReuseHashed(hashed)
}

// unescapeRsync undoes rsync's escape of bytes in names it prints: a
// backslash, a hash and three octal digits ("\#012").
func unescapeRsync(s string) string {
	if !strings.Contains(s, `\#`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+5 <= len(s) && s[i+1] == '#' {
			if v, err := strconv.ParseUint(s[i+2:i+5], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 4
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
