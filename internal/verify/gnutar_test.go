package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/testfs"
)

// pyRewrite copies the tar members read from stdin into a new archive
// in PAX format on stdout, the way a script built on Python's tarfile
// does. With "whole", sparse members are written as plain files (their
// GNU.sparse records dropped); without it the records are copied while
// tarfile writes the expanded data, so the sparse map the records
// announce is missing. With "lonezero" the archive ends with one zero
// block followed by a block of junk instead of two zero blocks.
const pyRewrite = `
import sys, tarfile, io
mode = sys.argv[1]
src = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
out = io.BytesIO()
dst = tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT)
for m in src:
    if mode in ("whole", "lonezero"):
        m.pax_headers = {k: v for k, v in m.pax_headers.items() if not k.startswith("GNU.sparse.")}
    dst.addfile(m, src.extractfile(m) if m.isreg() else None)
end = dst.offset
dst.close()
b = out.getvalue()
if mode == "lonezero":
    b = b[:end] + bytes(512) + b"x" * 512
sys.stdout.buffer.write(b)
`

// TestVerifyReadsTarLikeGNUTar rewrites the tgz payload of a backupctl
// set with Python's tarfile in PAX format, re-signs it (the manifest gets
// the new size and SHA-256, so only reading the archive can object), and
// judges verify by GNU tar, which the restore extracts with: verify
// passes exactly the archives GNU tar lists without an error, reads each
// to its end (it names GNU tar's member count), and names the member
// GNU tar fails on.
func TestVerifyReadsTarLikeGNUTar(t *testing.T) {
	testfs.Require(t, "pidisk")
	testfs.Require(t, "python3")
	dir := t.TempDir()
	d, err := testfs.BuildPiDisk(dir, testfs.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := backup.Run(context.Background(), backup.Options{Target: filepath.Join(dir, "backups"), Type: backupset.TypeTGZ, SourceDisk: d.Path}, backup.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	set := res.SetDir
	payload := filepath.Base(set) + ".tgz"
	orig, err := os.ReadFile(filepath.Join(set, payload))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode     string
		wantOK   bool
		wantMsgs []string
	}{
		{mode: "copy", wantMsgs: []string{testfs.PathSparse, "malformed sparse archive member"}},
		{mode: "whole", wantOK: true},
		{mode: "lonezero", wantOK: true},
	} {
		t.Run(c.mode, func(t *testing.T) {
			rewritten := pythonRewrite(t, orig, c.mode)
			list := exec.Command("tar", "-tz")
			list.Stdin = bytes.NewReader(rewritten)
			var listOut, listErr bytes.Buffer
			list.Stdout, list.Stderr = &listOut, &listErr
			listRunErr := list.Run()
			members := strings.Count(listOut.String(), "\n")
			t.Logf("GNU tar lists %d members, err %v: %s", members, listRunErr, strings.TrimSpace(listErr.String()))
			if (listRunErr == nil) != c.wantOK {
				t.Fatalf("BUG: GNU tar -t = %v; the case expects GNU tar to succeed=%v", listRunErr, c.wantOK)
			}

			defer rewriteRecorded(t, set, payload, func([]byte) []byte { return rewritten })()
			rep, err := Dir(context.Background(), set, Options{})
			t.Logf("verify: %v %v", err, rep.Problems)
			if c.wantOK {
				if err != nil {
					t.Errorf("verify refuses an archive GNU tar reads without error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFailed) || len(rep.Problems) != 1 || rep.Problems[0].File != payload {
				t.Fatalf("verify = %v %v; want one problem in %s", err, rep.Problems, payload)
			}
			msg := rep.Problems[0].Msg
			// Read to the end: the count is GNU tar's, not where a reader stopped.
			for _, want := range append(c.wantMsgs, fmt.Sprintf("of its %d members", members)) {
				if !strings.Contains(msg, want) {
					t.Errorf("verify's problem %q does not say %q", msg, want)
				}
			}
		})
	}
}

// pythonRewrite runs pyRewrite over the gzip archive tgz and returns the
// result, gzip-compressed again.
func pythonRewrite(t *testing.T, tgz []byte, mode string) []byte {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command("sh", "-c", `gzip -dc | python3 -c "$0" "$1" | gzip -1`, pyRewrite, mode)
	cmd.Stdin = bytes.NewReader(tgz)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3 rewrite: %v: %s", err, errOut.String())
	}
	return out.Bytes()
}
