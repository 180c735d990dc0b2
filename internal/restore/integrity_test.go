package restore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/fstest"

	"github.com/pibackup/pibackup/internal/backupset"
)

// tarBytes builds a tar of members (name -> content); end adds the
// end-of-archive marker.
func tarBytes(t *testing.T, end bool, members ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, m[1])
	}
	if end {
		tw.Close()
	} else {
		tw.Flush()
	}
	return b.Bytes()
}

func TestCheckTar(t *testing.T) {
	zeros := string(make([]byte, 3000))
	whole := tarBytes(t, true, [2]string{"./a", "hello"}, [2]string{"./b", "world"})
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"whole", whole, true},
		{"whole plus record padding", append(append([]byte(nil), whole...), make([]byte, 8192)...), true},
		{"no marker", tarBytes(t, false, [2]string{"./a", "hello"}), false},
		// GNU tar ends at a lone zero block ("A lone zero block", exit 0).
		{"one zero block", append(tarBytes(t, false, [2]string{"./a", "hello"}), make([]byte, 512)...), true},
		{"dot-dot member", tarBytes(t, true, [2]string{"./../a", "hello"}), false},
		// A member full of zeros must not pass for the marker.
		{"zero member, no marker", tarBytes(t, false, [2]string{"./z", zeros}), false},
		{"zero member, marker", tarBytes(t, true, [2]string{"./z", zeros}), true},
		{"cut inside a member", whole[:700], false},
		{"empty", nil, false},
		{"marker only", make([]byte, 1024), false},
	}
	for _, tt := range tests {
		err := CheckTar(bytes.NewReader(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("CheckTar(%s) = %v; want ok %v", tt.name, err, tt.ok)
		}
	}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// TestPayloadFinish streams payloads through payload and checks that
// only a whole stream that matches the manifest passes.
func TestPayloadFinish(t *testing.T) {
	ctx := context.Background()
	good := gz(t, tarBytes(t, true, [2]string{"./etc/hostname", "pi\n"}))
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-8] ^= 1 // the CRC32 in the gzip trailer
	noMarker := gz(t, tarBytes(t, false, [2]string{"./etc/hostname", "pi\n"}))
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	tests := []struct {
		name     string
		data     []byte
		manifest *backupset.File // nil: a raspiBackup set
		ok       bool
	}{
		{"good, manifest", good, &backupset.File{Size: int64(len(good)), SHA256: sum(good)}, true},
		{"good, no manifest", good, nil, true},
		{"hash differs", good, &backupset.File{Size: int64(len(good)), SHA256: sum(badCRC)}, false},
		{"size differs", good, &backupset.File{Size: int64(len(good)) + 1, SHA256: sum(good)}, false},
		{"gzip CRC wrong, no manifest", badCRC, nil, false},
		{"gzip truncated, no manifest", good[:len(good)-4], nil, false},
		{"tar without end marker, no manifest", noMarker, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &setInfo{fsys: fstest.MapFS{"x.tgz": {Data: tt.data}}, dirName: "x"}
			if tt.manifest != nil {
				f := *tt.manifest
				f.Path = "x.tgz"
				s.manifest = &backupset.Manifest{Files: []backupset.File{f}}
			}
			p, err := s.openPayload("x.tgz", backupset.CompressGzip, nil, true)
			if err != nil {
				if tt.ok {
					t.Fatal(err)
				}
				return
			}
			defer p.Close()
			// The consumer (tar) stops at the end-of-archive marker and
			// leaves the rest; finish reads it.
			buf := make([]byte, 512)
			readBlock(p, buf)
			err = p.finish(ctx)
			if (err == nil) != tt.ok {
				t.Errorf("finish = %v; want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrDamaged) {
				t.Errorf("finish = %v; want it to wrap ErrDamaged", err)
			}
		})
	}
}
