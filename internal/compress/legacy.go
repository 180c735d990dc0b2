package compress

import (
	"bufio"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"hash/crc32"
	"io"

	lzo "github.com/anchore/go-lzo"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/pibackup/pibackup/internal/backupset"
)

// raspiBackup's --tarCompressionTool also makes .tar.bz2, .tar.xz,
// .tar.lzma, .tar.lz, .tar.lzo and .tar.lz4 sets. backupctl never writes
// them, but its users' old sets must list, verify and restore, on the Pi
// and in the recovery image, which has no bzip2, xz or lzop binaries: so
// every one is read by a pure-Go decoder. bzip2 is the standard
// library's; xz and lzma ulikunitz/xz's; lz4 pierrec/lz4's frame reader.
// lzip and lzop have no maintained streaming Go reader (lzip-go reads the
// whole file into memory, too much for a 512 MB Pi), so their thin
// container formats are read here over ulikunitz/xz's LZMA decoder and
// anchore/go-lzo's LZO1X block decoder.

// Dictionary bound for xz, lzma and lzip streams: xz -9 and lzip -9 use
// 64 MiB, the largest any of their presets makes; a header asking for more
// is refused rather than allowed to take the Pi's memory.
const maxDict = 64 << 20

// newLegacyReader returns a reader for the read-only compressions.
func newLegacyReader(r io.Reader, c backupset.Compression) (io.ReadCloser, error) {
	switch c {
	case backupset.CompressBzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	case backupset.CompressXz:
		zr, err := xz.ReaderConfig{DictCap: maxDict}.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz stream: %w", err)
		}
		return io.NopCloser(zr), nil
	case backupset.CompressLzma:
		zr, err := lzma.ReaderConfig{DictCap: maxDict}.NewReader(bufio.NewReaderSize(r, 1<<16))
		if err != nil {
			return nil, fmt.Errorf("lzma stream: %w", err)
		}
		return io.NopCloser(zr), nil
	case backupset.CompressLz4:
		return io.NopCloser(lz4.NewReader(r)), nil
	case backupset.CompressLzip:
		return io.NopCloser(&lzipReader{br: bufio.NewReaderSize(r, 1<<16)}), nil
	case backupset.CompressLzop:
		return io.NopCloser(&lzopReader{br: bufio.NewReaderSize(r, 1<<16)}), nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

// lzipReader reads an lzip file: one or more members, each a 6-byte
// header ("LZIP", version 1, coded dictionary size), an LZMA stream with
// lc=3 lp=0 pb=2 ending in an end-of-stream marker, and a 20-byte trailer
// (CRC32 and size of the data, size of the member).
type lzipReader struct {
	br      *bufio.Reader
	member  *lzma.Reader
	counted *countReader // the member's compressed bytes, for its trailer
	crc     hash.Hash32
	n       uint64 // data bytes of this member
	members int
}

const lzipHeaderLen, lzipTrailerLen = 6, 20

func (z *lzipReader) Read(p []byte) (int, error) {
	for {
		if z.member == nil {
			if err := z.next(); err != nil {
				return 0, err
			}
		}
		n, err := z.member.Read(p)
		z.crc.Write(p[:n])
		z.n += uint64(n)
		if err == io.EOF {
			if err := z.trailer(); err != nil {
				return n, err
			}
			z.member = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, fmt.Errorf("lzip member %d: %w", z.members, err)
		}
		return n, nil
	}
}

// next starts the next member, or returns io.EOF after the last one.
func (z *lzipReader) next() error {
	var h [lzipHeaderLen]byte
	n, err := io.ReadFull(z.br, h[:])
	if z.members > 0 && n == 0 && err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("lzip header: %w", noEOF(err))
	}
	if string(h[:4]) != "LZIP" {
		return errors.New("lzip: not an lzip file (no LZIP magic)")
	}
	if h[4] != 1 {
		return fmt.Errorf("lzip: version %d, only version 1 exists", h[4])
	}
	dict := uint32(1) << (h[5] & 0x1f)
	dict -= dict / 16 * uint32(h[5]>>5)
	if dict < 1<<12 || dict > maxDict {
		return fmt.Errorf("lzip: dictionary size %d out of range", dict)
	}
	// The member's LZMA data with a classic LZMA header in front: the
	// fixed properties, the dictionary size and "size unknown" (the
	// stream ends in an end marker).
	var lh [lzma.HeaderLen]byte
	lh[0] = lzma.Properties{LC: 3, LP: 0, PB: 2}.Code()
	binary.LittleEndian.PutUint32(lh[1:5], dict)
	binary.LittleEndian.PutUint64(lh[5:], ^uint64(0))
	z.counted = &countReader{br: z.br}
	z.member, err = lzma.ReaderConfig{DictCap: maxDict}.NewReader(&prefixed{head: lh[:], rest: z.counted})
	if err != nil {
		return fmt.Errorf("lzip member %d: %w", z.members+1, err)
	}
	z.members++
	z.crc, z.n = crc32.NewIEEE(), 0
	return nil
}

// trailer checks the member's trailer against what was read.
func (z *lzipReader) trailer() error {
	if !z.member.EOSMarker() {
		return fmt.Errorf("lzip member %d: no end-of-stream marker", z.members)
	}
	var t [lzipTrailerLen]byte
	if _, err := io.ReadFull(z.br, t[:]); err != nil {
		return fmt.Errorf("lzip member %d trailer: %w", z.members, noEOF(err))
	}
	switch {
	case binary.LittleEndian.Uint32(t[0:4]) != z.crc.Sum32():
		return fmt.Errorf("lzip member %d: CRC mismatch (the file is corrupt)", z.members)
	case binary.LittleEndian.Uint64(t[4:12]) != z.n:
		return fmt.Errorf("lzip member %d: data size %d, trailer says %d", z.members, z.n, binary.LittleEndian.Uint64(t[4:12]))
	case binary.LittleEndian.Uint64(t[12:20]) != uint64(lzipHeaderLen)+z.counted.n+lzipTrailerLen:
		return fmt.Errorf("lzip member %d: member size does not match its trailer", z.members)
	}
	return nil
}

// countReader is a byte reader that counts what the LZMA decoder took, so
// nothing past the member is consumed.
type countReader struct {
	br *bufio.Reader
	n  uint64
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := c.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// prefixed reads head, then rest, byte by byte as the LZMA decoder asks.
type prefixed struct {
	head []byte
	rest *countReader
}

func (p *prefixed) ReadByte() (byte, error) {
	if len(p.head) > 0 {
		b := p.head[0]
		p.head = p.head[1:]
		return b, nil
	}
	return p.rest.ReadByte()
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.rest.Read(b)
}

// lzop's container (lzop 1.x, as `tar --lzop` and raspiBackup make it):
// a header naming the method and which checksums follow, then blocks of
// at most 256 KiB, each stored or LZO1X-compressed, ended by a zero
// length.
var lzopMagic = []byte{0x89, 'L', 'Z', 'O', 0x00, '\r', '\n', 0x1a, '\n'}

const (
	lzopAdler32D   = 0x0001
	lzopAdler32C   = 0x0002
	lzopExtraField = 0x0040
	lzopCRC32D     = 0x0100
	lzopCRC32C     = 0x0200
	lzopMultipart  = 0x0400
	lzopFilter     = 0x0800
	lzopHeaderCRC  = 0x1000
	lzopMaxBlock   = 64 << 20 // lzop writes 256 KiB; more is a corrupt file
)

type lzopReader struct {
	br     *bufio.Reader
	flags  uint32
	header bool
	done   bool
	out    []byte // decompressed data not yet returned
	src    []byte
	dst    []byte
}

func (z *lzopReader) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.done {
			return 0, io.EOF
		}
		if !z.header {
			if err := z.readHeader(); err != nil {
				return 0, fmt.Errorf("lzop header: %w", err)
			}
			z.header = true
		}
		if err := z.block(); err != nil {
			return 0, fmt.Errorf("lzop: %w", err)
		}
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

func (z *lzopReader) u16() (uint16, error) {
	var b [2]byte
	_, err := io.ReadFull(z.br, b[:])
	return binary.BigEndian.Uint16(b[:]), noEOF(err)
}

func (z *lzopReader) u32() (uint32, error) {
	var b [4]byte
	_, err := io.ReadFull(z.br, b[:])
	return binary.BigEndian.Uint32(b[:]), noEOF(err)
}

func (z *lzopReader) readHeader() error {
	magic := make([]byte, len(lzopMagic))
	if _, err := io.ReadFull(z.br, magic); err != nil {
		return noEOF(err)
	}
	if string(magic) != string(lzopMagic) {
		return errors.New("not an lzop file (no lzop magic)")
	}
	// Everything from the version to the header checksum is checksummed.
	var sum hash.Hash32 = adler32.New()
	var raw []byte
	read := func(n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(z.br, b); err != nil {
			return nil, noEOF(err)
		}
		raw = append(raw, b...)
		return b, nil
	}
	b, err := read(6) // version, library version, version needed
	if err != nil {
		return err
	}
	version := binary.BigEndian.Uint16(b[0:2])
	if version < 0x0940 {
		// lzop older than 0.94 (1997) has no "version needed" field.
		return fmt.Errorf("lzop format version %#x is too old", version)
	}
	if b, err = read(2); err != nil { // method, level
		return err
	}
	if m := b[0]; m < 1 || m > 3 {
		return fmt.Errorf("method %d: only LZO1X (1, 2, 3) is supported", m)
	}
	if b, err = read(4); err != nil {
		return err
	}
	z.flags = binary.BigEndian.Uint32(b)
	if z.flags&lzopFilter != 0 {
		return errors.New("filtered lzop files are not supported")
	}
	if z.flags&lzopMultipart != 0 {
		return errors.New("multipart lzop files are not supported")
	}
	if _, err = read(12); err != nil { // mode, mtime low, mtime high
		return err
	}
	if b, err = read(1); err != nil {
		return err
	}
	if _, err = read(int(b[0])); err != nil { // file name
		return err
	}
	if z.flags&lzopHeaderCRC != 0 {
		sum = crc32.NewIEEE()
	}
	sum.Write(raw)
	want, err := z.u32()
	if err != nil {
		return err
	}
	if want != sum.Sum32() {
		return errors.New("header checksum mismatch (the file is corrupt)")
	}
	if z.flags&lzopExtraField != 0 {
		n, err := z.u32()
		if err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, z.br, int64(n)+4); err != nil {
			return noEOF(err)
		}
	}
	return nil
}

// block reads one block into z.out, or marks the end.
func (z *lzopReader) block() error {
	dstLen, err := z.u32()
	if err != nil {
		return err
	}
	if dstLen == 0 {
		z.done = true
		return nil
	}
	srcLen, err := z.u32()
	if err != nil {
		return err
	}
	if dstLen > lzopMaxBlock || srcLen > dstLen {
		return fmt.Errorf("block of %d bytes from %d: the file is corrupt", dstLen, srcLen)
	}
	var dAdler, dCRC, cAdler, cCRC uint32
	if z.flags&lzopAdler32D != 0 {
		if dAdler, err = z.u32(); err != nil {
			return err
		}
	}
	if z.flags&lzopCRC32D != 0 {
		if dCRC, err = z.u32(); err != nil {
			return err
		}
	}
	stored := srcLen == dstLen
	if !stored {
		if z.flags&lzopAdler32C != 0 {
			if cAdler, err = z.u32(); err != nil {
				return err
			}
		}
		if z.flags&lzopCRC32C != 0 {
			if cCRC, err = z.u32(); err != nil {
				return err
			}
		}
	}
	z.src = grow(z.src, int(srcLen))
	if _, err := io.ReadFull(z.br, z.src); err != nil {
		return noEOF(err)
	}
	if !stored {
		if z.flags&lzopAdler32C != 0 && adler32.Checksum(z.src) != cAdler {
			return errors.New("compressed block checksum mismatch (the file is corrupt)")
		}
		if z.flags&lzopCRC32C != 0 && crc32.ChecksumIEEE(z.src) != cCRC {
			return errors.New("compressed block checksum mismatch (the file is corrupt)")
		}
		z.dst = grow(z.dst, int(dstLen))
		n, err := lzo.Decompress(z.src, z.dst)
		if err != nil {
			return fmt.Errorf("LZO1X block: %w (the file is corrupt)", err)
		}
		if n != int(dstLen) {
			return fmt.Errorf("LZO1X block gave %d bytes, header says %d (the file is corrupt)", n, dstLen)
		}
		z.out = z.dst
	} else {
		z.out = z.src
	}
	if z.flags&lzopAdler32D != 0 && adler32.Checksum(z.out) != dAdler {
		return errors.New("block checksum mismatch (the file is corrupt)")
	}
	if z.flags&lzopCRC32D != 0 && crc32.ChecksumIEEE(z.out) != dCRC {
		return errors.New("block checksum mismatch (the file is corrupt)")
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// noEOF turns a clean EOF in the middle of a structure into
// io.ErrUnexpectedEOF: the file is truncated.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
