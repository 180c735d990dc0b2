package testfs

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// PopulateOptions adjusts the tree written by Populate. The zero value is
// valid.
type PopulateOptions struct {
	// Fstab is the content of /etc/fstab. Empty means a generic Pi fstab
	// whose PARTUUIDs belong to no disk.
	Fstab string
	// Hostname is the content of /etc/hostname without the newline.
	// Empty means "raspberrypi".
	Hostname string
}

// Well-known paths in a tree written by Populate, relative to its root, for
// tests that need to poke at one kind of metadata.
const (
	PathPing      = "usr/bin/ping"           // security.capability cap_net_raw+ep
	PathSudo      = "usr/bin/sudo"           // mode 04755
	PathNotes     = "home/pi/notes.txt"      // 1000:1000, user.* xattrs
	PathRandom    = "home/pi/random.bin"     // 4 MiB of incompressible data
	PathHostname  = "etc/hostname"           // plain root-owned file
	PathFstab     = "etc/fstab"              // PopulateOptions.Fstab
	PathSyslog    = "var/log/syslog"         // 0:4 mode 0640
	PathSymlink   = "home/pi/hostname-link"  // -> /etc/hostname, owned 1000:1000
	PathACLFile   = "srv/shared/report.txt"  // system.posix_acl_access
	PathACLDir    = "srv/shared"             // system.posix_acl_default, mode 02775
	PathSparse    = "var/lib/sparse.img"     // 64 MiB with four 4 KiB islands
	PathOrphan    = "opt/orphan/data.bin"    // 4242:4343, no passwd entry
	PathDevBlock  = "srv/chroot/dev/mmcblk0" // block device 179,0 (outside /dev, which backups exclude)
	PathFIFO      = "var/spool/ctl.fifo"     // named pipe
	PathHardlink1 = "usr/bin/hl-tool"        // three links to one inode ...
	PathHardlink2 = "usr/bin/hl-tool-alias"  // ... in the same directory ...
	PathHardlink3 = "usr/sbin/hl-tool"       // ... and in another one.
	PathBootMount = "boot/firmware"          // empty mount point
	PathDeepLeaf  = "srv/deep/level-01/level-02/level-03/level-04/level-05/level-06/level-07/level-08/level-09/level-10/level-11/level-12/level-13/level-14/level-15/level-16/level-17/level-18/level-19/level-20/level-21/level-22/level-23/level-24/level-25/level-26/level-27/level-28/level-29/level-30/level-31/level-32/level-33/level-34/level-35/level-36/level-37/level-38/level-39/level-40/bottom.txt"
)

const (
	deepLevels      = 40
	randomSize      = 4 << 20
	sparseSize      = 64 << 20
	sparseIsland    = 4 << 10
	populateSeed    = "pibackup testfs populate seed 01" // 32 bytes: ChaCha8 seed
	defaultHostname = "raspberrypi"
)

// Populate writes into the existing directory root (typically a freshly
// mounted ext4) a Raspberry Pi–like tree that holds every kind of metadata a
// backup can lose:
//
//   - owners other than root: 1000:1000 (pi), 33:33 (www-data), and
//     4242:4343, which has no passwd entry, so name-mapping tools lose it;
//   - modes with setuid, setgid, sticky, 0000 files and a 0000 directory;
//   - security.capability in the binary form setcap(8) writes
//     (cap_net_raw+ep on /usr/bin/ping), user.* xattrs on files and a
//     directory (one empty value, one too large for the inode);
//   - POSIX ACLs: an access ACL on a file, a default ACL on a directory and
//     a file that inherited from it;
//   - a set of three hardlinks across two directories and a set of two;
//   - relative, absolute, dangling and directory symlinks, one not owned
//     by root;
//   - char and block device nodes, a FIFO;
//   - a 64 MiB sparse file with four 4 KiB islands, ending in a hole;
//   - empty directories and mount points (/boot/firmware, /proc, ...);
//   - 255-byte names (ASCII and UTF-8), non-ASCII names, the same name in
//     NFC and NFD, a name with a tab and a newline, and a path 40
//     directories deep (longer than tar's 256-byte ustar limit);
//   - 4 MiB of deterministic incompressible data;
//   - atimes and mtimes with distinct nanoseconds, including one before
//     1970 and one after 2038, set after all content so directory mtimes
//     stick.
//
// The result is the same on every run (except ctimes, which no one can
// set). It needs root for chown, mknod and security.* xattrs. About 5 MiB
// of data is written.
func Populate(root string, opts PopulateOptions) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("populate: %s is not a directory", root)
	}
	p := &populator{root: root, rng: rand.NewChaCha8([32]byte([]byte(populateSeed)))}
	p.populate(opts)
	if p.err != nil {
		return fmt.Errorf("populate %s: %w", root, p.err)
	}
	return nil
}

// populator writes the tree. Its methods stop doing anything after the
// first error (like bufio.Writer), so populate reads as a list.
type populator struct {
	root  string
	rng   *rand.ChaCha8
	err   error
	nodes []string          // non-directories in creation order, one path per inode
	dirs  []string          // directories, for mtimes that are set last
	when  map[string]fixedT // explicit times, overriding the generated ones
}

type fixedT struct{ atime, mtime time.Time }

const (
	rootID = 0
	piID   = 1000
	wwwID  = 33
)

func (p *populator) populate(opts PopulateOptions) {
	hostname := cmp.Or(opts.Hostname, defaultHostname)
	fstab := cmp.Or(opts.Fstab, "proc            /proc           proc    defaults          0       0\n"+
		"PARTUUID=00000000-01  /boot/firmware  vfat    defaults          0       2\n"+
		"PARTUUID=00000000-02  /               ext4    defaults,noatime  0       1\n")

	p.dir(".", 0o755, rootID, rootID)
	for _, d := range []string{"boot", "boot/firmware", "proc", "sys", "mnt", "media", "run"} {
		p.dir(d, 0o755, rootID, rootID)
	}

	// /etc
	p.dir("etc", 0o755, rootID, rootID)
	p.file(PathFstab, []byte(fstab), 0o644, rootID, rootID)
	p.file(PathHostname, []byte(hostname+"\n"), 0o644, rootID, rootID)
	p.file("etc/hosts", []byte("127.0.0.1\tlocalhost\n127.0.1.1\t"+hostname+"\n"), 0o644, rootID, rootID)
	p.file("etc/os-release", []byte(osRelease), 0o644, rootID, rootID)
	p.file("etc/passwd", []byte("root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n"), 0o644, rootID, rootID)
	p.file("etc/group", []byte("root:x:0:\nadm:x:4:pi\ntty:x:5:\ndisk:x:6:\nmail:x:8:\nwww-data:x:33:\nshadow:x:42:\npi:x:1000:\n"), 0o644, rootID, rootID)
	p.file("etc/shadow", []byte("root:*:19000:0:99999:7:::\npi:$y$j9T$pibackup$notarealhash:19000:0:99999:7:::\n"), 0o640, rootID, 42)
	p.file("etc/empty.conf", nil, 0o644, rootID, rootID)
	p.file("etc/secret.key", []byte("nobody may read this\n"), 0o000, rootID, rootID)
	p.symlink("etc/localtime", "/usr/share/zoneinfo/Europe/London", rootID, rootID) // absolute and dangling here

	// /dev: device nodes keep major:minor only if the backup knows them.
	p.dir("dev", 0o755, rootID, rootID)
	p.node("dev/null", unix.S_IFCHR, 0o666, 1, 3, rootID, rootID)
	p.node("dev/console", unix.S_IFCHR, 0o600, 5, 1, rootID, rootID)
	p.node("dev/mmcblk0p2", unix.S_IFBLK, 0o660, 179, 2, rootID, 6)
	// raspiBackup excludes /dev/* (devtmpfs covers it on a running Pi), so
	// the nodes a backup must keep live in a chroot, as a build chroot or
	// container root on a Pi would hold them.
	p.dir("srv", 0o755, rootID, rootID)
	p.dir("srv/chroot", 0o755, rootID, rootID)
	p.dir("srv/chroot/dev", 0o755, rootID, rootID)
	p.node("srv/chroot/dev/null", unix.S_IFCHR, 0o666, 1, 3, rootID, rootID)
	p.node(PathDevBlock, unix.S_IFBLK, 0o660, 179, 0, rootID, 6)

	// /home/pi: a user's files.
	p.dir("home", 0o755, rootID, rootID)
	p.dir("home/pi", 0o755, piID, piID)
	p.xattr("home/pi", "user.pibackup.dir", []byte("xattr on a directory"))
	p.file("home/pi/.bashrc", []byte("# ~/.bashrc\nexport EDITOR=nano\n"), 0o644, piID, piID)
	p.file(PathNotes, []byte("remember the milk\n"), 0o644, piID, piID)
	p.xattr(PathNotes, "user.comment", []byte("a user xattr"))
	p.xattr(PathNotes, "user.empty", nil)
	p.xattr(PathNotes, "user.big", p.random(2000)) // does not fit in a 256-byte inode
	p.file(PathRandom, p.random(randomSize), 0o644, piID, piID)
	p.symlink(PathSymlink, "/etc/hostname", piID, piID)
	p.symlink("home/pi/dangling", "../nowhere/missing", piID, piID)
	p.symlink("home/pi/etc-link", "../../etc", piID, piID)
	p.file("home/pi/a.txt", []byte("two links to one inode\n"), 0o600, piID, piID)
	p.link("home/pi/a.txt", "home/pi/b.txt")
	p.file("home/pi/old.txt", []byte("before the epoch\n"), 0o644, piID, piID)
	p.at("home/pi/old.txt", time.Date(1965, 6, 15, 12, 0, 0, 500_000_001, time.UTC))
	p.file("home/pi/future.txt", []byte("after 2038\n"), 0o644, piID, piID)
	p.at("home/pi/future.txt", time.Date(2040, 1, 1, 0, 0, 0, 999_999_999, time.UTC))
	p.dir("home/pi/empty-dir", 0o755, piID, piID)
	p.dir("home/pi/Ünïcödé ✓", 0o755, piID, piID)
	p.file("home/pi/Ünïcödé ✓/naïve café.txt", []byte("UTF-8 names\n"), 0o644, piID, piID)
	p.file("home/pi/caf\u00e9", []byte("NFC\n"), 0o644, piID, piID)  // é as one code point
	p.file("home/pi/cafe\u0301", []byte("NFD\n"), 0o644, piID, piID) // e + combining acute
	p.file("home/pi/tab\tand\nnewline", []byte("hostile name\n"), 0o644, piID, piID)
	p.file("home/pi/"+strings.Repeat("L", 251)+".txt", []byte("255-byte name\n"), 0o644, piID, piID)
	p.file("home/pi/"+strings.Repeat("ü", 127)+"x", []byte("255-byte UTF-8 name\n"), 0o644, piID, piID)

	p.dir("root", 0o700, rootID, rootID)
	p.file("root/.profile", []byte("mesg n 2> /dev/null || true\n"), 0o600, rootID, rootID)
	p.dir("tmp", 0o1777, rootID, rootID)

	// /usr: special modes, capabilities, hardlinks, symlinks.
	p.dir("usr", 0o755, rootID, rootID)
	p.dir("usr/bin", 0o755, rootID, rootID)
	p.dir("usr/sbin", 0o755, rootID, rootID)
	p.dir("usr/lib", 0o755, rootID, rootID)
	p.file(PathPing, p.random(64<<10), 0o755, rootID, rootID)
	p.xattr(PathPing, "security.capability", vfsCapV2(1<<capNetRaw, 0, true))
	p.file("usr/bin/dumpcap", p.random(16<<10), 0o750, rootID, 4)
	p.xattr("usr/bin/dumpcap", "security.capability", vfsCapV2(1<<capNetRaw|1<<capNetAdmin, 1<<capNetAdmin, false))
	p.file(PathSudo, p.random(32<<10), 0o4755, rootID, rootID)
	p.file("usr/bin/wall", p.random(8<<10), 0o2755, rootID, 5)
	p.file(PathHardlink1, []byte("#!/bin/sh\necho one inode, three names\n"), 0o755, rootID, rootID)
	p.xattr(PathHardlink1, "user.pibackup.links", []byte("3"))
	p.link(PathHardlink1, PathHardlink2)
	p.link(PathHardlink1, PathHardlink3)
	p.file("usr/lib/libfoo.so.1", p.random(512<<10), 0o644, rootID, rootID)
	p.symlink("usr/lib/libfoo.so", "libfoo.so.1", rootID, rootID)

	// /var
	p.dir("var", 0o755, rootID, rootID)
	p.dir("var/log", 0o755, rootID, rootID)
	p.file(PathSyslog, []byte("Jan  1 00:00:00 raspberrypi kernel: Booting Linux\n"), 0o640, rootID, 4)
	p.dir("var/log/journal", 0o2755, rootID, 101)
	p.dir("var/mail", 0o2775, rootID, 8)
	p.dir("var/www", 0o755, rootID, rootID)
	p.dir("var/www/html", 0o755, wwwID, wwwID)
	p.file("var/www/html/index.html", []byte("<h1>It works</h1>\n"), 0o644, wwwID, wwwID)
	p.dir("var/lib", 0o755, rootID, rootID)
	p.sparse(PathSparse, 0o600)
	p.dir("var/spool", 0o755, rootID, rootID)
	p.node(PathFIFO, unix.S_IFIFO, 0o620, 0, 0, rootID, rootID)

	// /opt/orphan: ids without names.
	p.dir("opt", 0o755, rootID, rootID)
	p.dir("opt/orphan", 0o750, 4242, 4343)
	p.file(PathOrphan, p.random(256<<10), 0o640, 4242, 4343)

	// /srv: ACLs, unreadable directory, deep path.
	p.dir(PathACLDir, 0o2775, piID, wwwID)
	p.xattr(PathACLDir, "system.posix_acl_default", posixACL(
		aclEntry{aclUserObj, 7, aclUndefinedID},
		aclEntry{aclUser, 7, piID},
		aclEntry{aclGroupObj, 5, aclUndefinedID},
		aclEntry{aclGroup, 7, wwwID},
		aclEntry{aclMask, 7, aclUndefinedID},
		aclEntry{aclOther, 5, aclUndefinedID},
	))
	// Created after the default ACL, so the kernel gives it an inherited
	// access ACL.
	p.file("srv/shared/inherited.txt", []byte("inherits the default ACL\n"), 0o664, piID, wwwID)
	p.file(PathACLFile, []byte("quarterly numbers\n"), 0o640, piID, wwwID)
	p.xattr(PathACLFile, "system.posix_acl_access", posixACL(
		aclEntry{aclUserObj, 6, aclUndefinedID},
		aclEntry{aclUser, 4, 4242},
		aclEntry{aclGroupObj, 4, aclUndefinedID},
		aclEntry{aclMask, 4, aclUndefinedID},
		aclEntry{aclOther, 0, aclUndefinedID},
	))
	p.dir("srv/locked", 0o000, rootID, rootID)
	p.file("srv/locked/inside", []byte("behind a 0000 directory\n"), 0o000, rootID, rootID)
	p.dir("srv/deep", 0o755, rootID, rootID)
	deep := "srv/deep"
	for i := 1; i <= deepLevels; i++ {
		deep = fmt.Sprintf("%s/level-%02d", deep, i)
		p.dir(deep, 0o755, rootID, rootID)
	}
	p.file(PathDeepLeaf, []byte("40 levels down\n"), 0o644, rootID, rootID)

	p.setTimes()
}

const osRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`

func (p *populator) path(rel string) string { return filepath.Join(p.root, rel) }

// own sets owner then mode, in that order: chown clears setuid/setgid bits.
func (p *populator) own(rel string, mode uint32, uid, gid int) {
	if p.err != nil {
		return
	}
	if err := os.Lchown(p.path(rel), uid, gid); err != nil {
		p.err = err
		return
	}
	// Explicit chmod because mkdir, mknod and open are filtered by umask.
	if err := unix.Chmod(p.path(rel), mode); err != nil {
		p.err = fmt.Errorf("chmod %s: %w", rel, err)
	}
}

func (p *populator) dir(rel string, mode uint32, uid, gid int) {
	if p.err != nil {
		return
	}
	if rel != "." {
		if err := os.Mkdir(p.path(rel), 0o700); err != nil {
			p.err = err
			return
		}
	}
	p.own(rel, mode, uid, gid)
	p.dirs = append(p.dirs, rel)
}

func (p *populator) file(rel string, data []byte, mode uint32, uid, gid int) {
	if p.err != nil {
		return
	}
	if err := os.WriteFile(p.path(rel), data, 0o600); err != nil {
		p.err = err
		return
	}
	p.own(rel, mode, uid, gid)
	p.nodes = append(p.nodes, rel)
}

func (p *populator) sparse(rel string, mode uint32) {
	if p.err != nil {
		return
	}
	f, err := os.OpenFile(p.path(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		p.err = err
		return
	}
	// Four islands; the file ends in a hole, which is the case tar
	// --sparse and cp get wrong most often.
	for _, off := range []int64{0, 1 << 20, 17<<20 + 3*4096, 40 << 20} {
		if _, err := f.WriteAt(p.random(sparseIsland), off); err != nil {
			p.err = err
		}
	}
	if err := f.Truncate(sparseSize); err != nil && p.err == nil {
		p.err = err
	}
	if err := f.Close(); err != nil && p.err == nil {
		p.err = err
	}
	p.own(rel, mode, rootID, rootID)
	p.nodes = append(p.nodes, rel)
}

func (p *populator) node(rel string, typ, mode, major, minor uint32, uid, gid int) {
	if p.err != nil {
		return
	}
	if err := unix.Mknod(p.path(rel), typ|0o600, int(unix.Mkdev(major, minor))); err != nil {
		p.err = fmt.Errorf("mknod %s: %w", rel, err)
		return
	}
	p.own(rel, mode, uid, gid)
	p.nodes = append(p.nodes, rel)
}

func (p *populator) symlink(rel, target string, uid, gid int) {
	if p.err != nil {
		return
	}
	if err := os.Symlink(target, p.path(rel)); err != nil {
		p.err = err
		return
	}
	if err := os.Lchown(p.path(rel), uid, gid); err != nil {
		p.err = err
		return
	}
	p.nodes = append(p.nodes, rel)
}

// link adds a hardlink. It is not recorded in nodes: times belong to the
// inode, which was recorded under its first name.
func (p *populator) link(oldRel, newRel string) {
	if p.err != nil {
		return
	}
	p.err = os.Link(p.path(oldRel), p.path(newRel))
}

func (p *populator) xattr(rel, name string, value []byte) {
	if p.err != nil {
		return
	}
	if err := unix.Lsetxattr(p.path(rel), name, value, 0); err != nil {
		p.err = fmt.Errorf("setxattr %s %s: %w", rel, name, err)
	}
}

// at pins the mtime of rel; its atime is one day and one nanosecond later.
func (p *populator) at(rel string, mtime time.Time) {
	if p.when == nil {
		p.when = map[string]fixedT{}
	}
	p.when[rel] = fixedT{atime: mtime.Add(24*time.Hour + time.Nanosecond), mtime: mtime}
}

func (p *populator) random(n int) []byte {
	b := make([]byte, n)
	_, _ = p.rng.Read(b) // ChaCha8.Read never fails
	return b
}

// setTimes gives every inode its own atime and mtime, with nanoseconds that
// differ from entry to entry so that truncation to seconds, microseconds or
// FAT's 2 seconds shows up as a diff. Directories come last, deepest first,
// because creating an entry in a directory resets its mtime.
func (p *populator) setTimes() {
	if p.err != nil {
		return
	}
	dirs := slices.Clone(p.dirs)
	slices.SortStableFunc(dirs, func(a, b string) int {
		return cmp.Compare(depth(b), depth(a))
	})
	base := time.Date(2024, 3, 14, 15, 9, 26, 535_897_932, time.UTC)
	for i, rel := range slices.Concat(p.nodes, dirs) {
		step := time.Duration(i) * (time.Hour + time.Minute + time.Second + 7*time.Nanosecond)
		ft, ok := p.when[rel]
		if !ok {
			m := base.Add(-step)
			ft = fixedT{mtime: m, atime: m.Add(36*time.Hour + 123*time.Nanosecond)}
		}
		ts := []unix.Timespec{timespec(ft.atime), timespec(ft.mtime)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p.path(rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			p.err = fmt.Errorf("utimensat %s: %w", rel, err)
			return
		}
	}
}

// timespec keeps tv_nsec in [0, 1e9) also before 1970, as utimensat
// requires.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func depth(rel string) int {
	if rel == "." {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

// Capability numbers from linux/capability.h.
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// vfsCapV2 returns a security.capability value in the struct vfs_cap_data
// revision 2 layout (linux/capability.h), which is what setcap(8) writes
// outside a user namespace: le32 magic_etc (revision | effective flag),
// then {le32 permitted, le32 inheritable} for capabilities 0-31 and 32-63.
func vfsCapV2(permitted, inheritable uint64, effective bool) []byte {
	const (
		vfsCapRevision2     = 0x02000000
		vfsCapFlagEffective = 0x000001
	)
	magic := uint32(vfsCapRevision2)
	if effective {
		magic |= vfsCapFlagEffective
	}
	b := binary.LittleEndian.AppendUint32(nil, magic)
	b = binary.LittleEndian.AppendUint32(b, uint32(permitted))
	b = binary.LittleEndian.AppendUint32(b, uint32(inheritable))
	b = binary.LittleEndian.AppendUint32(b, uint32(permitted>>32))
	return binary.LittleEndian.AppendUint32(b, uint32(inheritable>>32))
}

// POSIX ACL xattr layout (linux/posix_acl_xattr.h): le32 version 2, then
// entries {le16 tag, le16 perm, le32 id}, sorted by tag and id.
const (
	aclXattrVersion = 2
	aclUserObj      = 0x01
	aclUser         = 0x02
	aclGroupObj     = 0x04
	aclGroup        = 0x08
	aclMask         = 0x10
	aclOther        = 0x20
	aclUndefinedID  = 0xffffffff
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

func posixACL(entries ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, aclXattrVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}
