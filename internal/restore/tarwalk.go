package restore

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The restore extracts tar payloads with GNU tar, so the restore's check
// on the side of the extraction (CheckTar) and verify, which calls it,
// must judge an archive as GNU tar reads it, not as Go's archive/tar
// does. The two part
// ways on archives GNU tar reads to the end:
//
//   - a member that declares a PAX sparse map (GNU.sparse.major=1) but
//     holds none, as Python's tarfile writes when it copies a GNU tar
//     sparse member: GNU tar reports that one member ("malformed sparse
//     archive member"), skips its data and goes on; archive/tar returns
//     "invalid tar header" and cannot go on, so every later member went
//     unchecked;
//   - an archive that ends with one zero block followed by anything:
//     GNU tar stops there ("A lone zero block", exit 0); archive/tar
//     fails with "invalid tar header".
//
// walkTar therefore reads the stream itself, header by header, the way
// GNU tar's list does: header checksums (unsigned or signed, as GNU tar
// accepts both), octal and base-256 sizes, PAX, GNU long-name and old GNU
// sparse headers, every member's data to its padded end, and the first
// zero block as the end. It reads every byte of member data, so a
// compressed stream is decompressed and checked throughout.

const tarBlock = 512

// maxTarMeta bounds the data of a PAX or long-name header held in memory.
// GNU tar has no limit; real ones are a few KiB (long paths, xattrs,
// ACLs), and a damaged size field must not cost the host its memory.
const maxTarMeta = 16 << 20

// tarWalk is what walkTar found.
type tarWalk struct {
	members int      // file members (PAX and long-name headers not counted)
	broken  []string // members GNU tar would report and skip
	end     bool     // the archive ended at a zero block, not just stopped
}

// nameError is a member whose name points outside the filesystem
// (TarMembers); it is the archive's content, not its structure.
type nameError struct{ error }

// walkTar reads a tar stream to its end-of-archive marker (or to the end
// of the stream at a header boundary). Members GNU tar skips with an
// error are listed in broken; an error is returned for a stream that
// cannot be read on (a bad header checksum, a truncated member).
func walkTar(r io.Reader) (*tarWalk, error) {
	w := &tarWalk{}
	var blk [tarBlock]byte
	var pax map[string]string // the extended header for the next member
	var longName, longLink string
	var names TarMembers
	for {
		n, err := io.ReadFull(r, blk[:])
		if err == io.EOF {
			// No zero block: GNU tar accepts it silently, CheckTar does
			// not (an archive cut right after a member looks like this).
			return w, nil
		}
		if err != nil {
			return w, fmt.Errorf("the archive ends inside a header after %d members (%d of %d bytes): it is truncated", w.members, n, tarBlock)
		}
		if isZeroBlock(blk[:]) {
			// GNU tar ends at the first zero block; what follows (a second
			// zero block, or anything with a warning) is not read as members.
			w.end = true
			return w, nil
		}
		if err := checkHeaderSum(blk[:]); err != nil {
			return w, fmt.Errorf("header after %d members: %w (the archive is corrupt)", w.members, err)
		}
		size, err := parseTarNumber(blk[124:136])
		if err != nil || size < 0 {
			return w, fmt.Errorf("header after %d members: bad size field %q: the archive is corrupt", w.members, cstring(blk[124:136]))
		}
		typ := blk[156]
		switch typ {
		case 'x', 'g', 'L', 'K':
			if size > maxTarMeta {
				return w, fmt.Errorf("header after %d members: %c header of %d bytes: the archive is corrupt", w.members, typ, size)
			}
			data, err := readPadded(r, size)
			if err != nil {
				return w, fmt.Errorf("%c header after %d members: %w", typ, w.members, err)
			}
			switch typ {
			case 'x':
				if pax, err = parsePAX(data); err != nil {
					return w, fmt.Errorf("extended header after %d members: %w (the archive is corrupt)", w.members, err)
				}
			case 'L':
				longName = cstring(data)
			case 'K':
				longLink = cstring(data)
			}
			continue
		}
		name := headerName(blk[:])
		if longName != "" {
			name = longName
		}
		if p, ok := pax["path"]; ok {
			name = p
		}
		link := cstring(blk[157:257])
		if longLink != "" {
			link = longLink
		}
		if p, ok := pax["linkpath"]; ok {
			link = p
		}
		if err := names.Check(&tar.Header{Name: name, Typeflag: typ, Linkname: link}); err != nil {
			return w, nameError{err}
		}
		if s, ok := pax["size"]; ok {
			if size, err = strconv.ParseInt(s, 10, 64); err != nil || size < 0 {
				return w, fmt.Errorf("member %q: bad PAX size %q: the archive is corrupt", name, s)
			}
		}
		if typ == 'S' {
			if err := skipOldSparseHeaders(r, blk[:]); err != nil {
				return w, fmt.Errorf("member %q: %w", name, err)
			}
		}
		if headerOnly(typ) {
			size = 0
		}
		w.members++
		if pax["GNU.sparse.major"] == "1" && pax["GNU.sparse.minor"] == "0" {
			if err := readSparseMap10(r, size, pax["GNU.sparse.realsize"]); err != nil {
				var b *brokenMember
				if !errors.As(err, &b) {
					return w, fmt.Errorf("member %q: %w", name, err)
				}
				w.broken = append(w.broken, fmt.Sprintf("%q: malformed sparse archive member (%s)", name, b.why))
				if err := skipPadded(r, size-b.read); err != nil {
					return w, fmt.Errorf("member %q: %w", name, err)
				}
			}
		} else if err := skipPadded(r, size); err != nil {
			return w, fmt.Errorf("member %q: %w", name, err)
		}
		pax, longName, longLink = nil, "", ""
	}
}

// CheckTar reads a tar stream as GNU tar, which extracts it, reads it
// (walkTar), and refuses it unless every member can be extracted and
// lies inside the filesystem (TarMembers), and the archive ends at a
// zero block: a stream cut right after a member has none, and GNU tar
// would extract it without a word. An archive without members is
// refused too: even an empty filesystem's archive holds its root "./".
// The restore runs it on the side of every tar extraction, verify on
// every tar payload, so both refuse a set in the same words.
func CheckTar(r io.Reader) error {
	w, err := walkTar(r)
	var ne nameError
	switch {
	case errors.As(err, &ne):
		return ne.error
	case err != nil:
		return fmt.Errorf("tar archive: %w", err)
	case len(w.broken) > 0:
		return fmt.Errorf("tar archive: %d of its %d members cannot be extracted (GNU tar fails on them too): %s",
			len(w.broken), w.members, strings.Join(w.broken, "; "))
	case !w.end:
		return fmt.Errorf("the tar archive stops after %d members without its end-of-archive marker: it is truncated", w.members)
	case w.members == 0:
		return errors.New("empty tar archive (no members, not even ./)")
	}
	return nil
}

// headerOnly reports whether a member of type typ has no data whatever
// its size field says (links, devices, folders, FIFOs), as archive/tar
// and GNU tar read them.
func headerOnly(typ byte) bool {
	switch typ {
	case '1', '2', '3', '4', '5', '6':
		return true
	}
	return false
}

// readPadded reads n bytes of member data and the padding to the next
// block; it returns the data only when n is small (metadata headers).
func readPadded(r io.Reader, n int64) ([]byte, error) {
	padded := (n + tarBlock - 1) / tarBlock * tarBlock
	if n <= maxTarMeta {
		b := make([]byte, padded)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, truncated(err)
		}
		return b[:n], nil
	}
	if _, err := io.CopyN(io.Discard, r, padded); err != nil {
		return nil, truncated(err)
	}
	return nil, nil
}

// skipPadded reads past a member's data of n bytes and its padding.
// Unlike readPadded it keeps nothing: a member's data is read through in
// small pieces, not into a buffer of its size (which cost an allocation
// and clearing of every file up to maxTarMeta in a verify).
func skipPadded(r io.Reader, n int64) error {
	padded := (n + tarBlock - 1) / tarBlock * tarBlock
	if _, err := io.CopyN(io.Discard, r, padded); err != nil {
		return truncated(err)
	}
	return nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the archive ends inside it: it is truncated")
	}
	return err
}

// brokenMember is a member GNU tar skips with an error: read bytes of
// its data are consumed.
type brokenMember struct {
	why  string
	read int64
}

func (b *brokenMember) Error() string { return b.why }

// readSparseMap10 reads the sparse map at the start of a PAX 1.0 sparse
// member's data (decimal numbers, one a line: the count, then offset and
// size of each data region; padded to a block) and the data regions
// after it, and checks that they fill the member's size exactly, as GNU
// tar needs to rebuild the file. A map that is not one is a
// *brokenMember.
func readSparseMap10(r io.Reader, size int64, realSize string) error {
	var buf []byte
	var read int64
	next := func() (int64, error) {
		for {
			if i := bytes.IndexByte(buf, '\n'); i >= 0 {
				s := string(buf[:i])
				buf = buf[i+1:]
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil || v < 0 || s == "" || s[0] == '+' {
					return 0, &brokenMember{why: "its data does not start with the sparse map its GNU.sparse.major=1 header announces", read: read}
				}
				return v, nil
			}
			if len(buf) > 20 || read+tarBlock > size {
				return 0, &brokenMember{why: "its data does not start with the sparse map its GNU.sparse.major=1 header announces", read: read}
			}
			b := make([]byte, tarBlock)
			if _, err := io.ReadFull(r, b); err != nil {
				return 0, truncated(err)
			}
			read += tarBlock
			buf = append(buf, b...)
		}
	}
	count, err := next()
	if err != nil {
		return err
	}
	real, rerr := strconv.ParseInt(realSize, 10, 64)
	if rerr != nil || real < 0 {
		return &brokenMember{why: fmt.Sprintf("bad GNU.sparse.realsize %q", realSize), read: read}
	}
	if count > size/2+1 {
		return &brokenMember{why: fmt.Sprintf("%d regions in %d bytes", count, size), read: read}
	}
	var data, end int64
	for i := int64(0); i < count; i++ {
		off, err := next()
		if err != nil {
			return err
		}
		n, err := next()
		if err != nil {
			return err
		}
		if off < end || n > real-off {
			return &brokenMember{why: fmt.Sprintf("region %d (%d+%d) overlaps or lies beyond the file's %d bytes", i, off, n, real), read: read}
		}
		end, data = off+n, data+n
	}
	if read+data != size {
		return &brokenMember{why: fmt.Sprintf("its map names %d bytes of data, the member holds %d", data, size-read), read: read}
	}
	if _, err := readPadded(r, data); err != nil {
		return err
	}
	return nil
}

// skipOldSparseHeaders reads the extension headers of an old GNU sparse
// member ('S'), whose header at 482 says whether one follows; each
// extension says so at 504. The member's data (its stored regions) is
// what the size field counts.
func skipOldSparseHeaders(r io.Reader, hdr []byte) error {
	ext := hdr[482] != 0
	for i := 0; ext; i++ {
		var b [tarBlock]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return truncated(err)
		}
		if i > 1<<20 {
			return errors.New("endless sparse extension headers: the archive is corrupt")
		}
		ext = b[504] != 0
	}
	return nil
}

// checkHeaderSum checks the header checksum: the sum of the header's
// bytes with the checksum field counted as spaces. GNU tar accepts the
// sum of unsigned or of signed bytes (old tars wrote the latter).
func checkHeaderSum(b []byte) error {
	want, err := parseTarNumber(b[148:156])
	if err != nil {
		return fmt.Errorf("bad checksum field %q", cstring(b[148:156]))
	}
	var u, s int64
	for i, c := range b[:tarBlock] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		u += int64(c)
		s += int64(int8(c))
	}
	if want != u && want != s {
		return fmt.Errorf("header checksum %d, the header sums to %d", want, u)
	}
	return nil
}

// parseTarNumber parses a numeric header field: octal digits padded with
// spaces or NULs, or base-256 (the high bit of the first byte set), which
// GNU tar writes for values octal cannot hold.
func parseTarNumber(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0] == 0xff {
			return 0, errors.New("negative base-256 number")
		}
		var v uint64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if v>>56 != 0 {
				return 0, errors.New("base-256 number too large")
			}
			v = v<<8 | uint64(c)
		}
		if v > 1<<62 {
			return 0, errors.New("base-256 number too large")
		}
		return int64(v), nil
	}
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 8, 64)
	if err != nil {
		return 0, err
	}
	return v, nil
}

// parsePAX parses PAX extended header records: "<len> <key>=<value>\n",
// where len counts the whole record.
func parsePAX(b []byte) (map[string]string, error) {
	m := map[string]string{}
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return nil, errors.New("malformed extended header record")
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= sp+1 || n > len(b) || b[n-1] != '\n' {
			return nil, errors.New("malformed extended header record length")
		}
		k, v, ok := strings.Cut(string(b[sp+1:n-1]), "=")
		if !ok || k == "" {
			return nil, errors.New("malformed extended header: missing equal sign")
		}
		m[k] = v
		b = b[n:]
	}
	return m, nil
}

// headerName is the member name of a ustar or GNU header: POSIX ustar
// headers may put the leading folders into the prefix field.
func headerName(b []byte) string {
	name := cstring(b[0:100])
	if string(b[257:263]) == "ustar\x00" {
		if prefix := cstring(b[345:500]); prefix != "" {
			return prefix + "/" + name
		}
	}
	return name
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func isZeroBlock(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
