package initramfs

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestToolsGoListsCommands keeps tools.go (which keeps the commands in
// go.mod) in step with the commands the builder passes to u-root.
func TestToolsGoListsCommands(t *testing.T) {
	b, err := os.ReadFile("tools.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range URootCommands() {
		if !bytes.Contains(b, []byte(`_ "`+c+`"`)) {
			t.Errorf("tools.go does not import %s", c)
		}
	}
}

func TestURootArgs(t *testing.T) {
	o := Options{GOARCH: "arm64", ModuleDir: "/m", Recovery: "./recovery"}
	if err := o.fill(); err != nil {
		t.Fatal(err)
	}
	args := o.uRootArgs("/tmp/x.cpio")
	for _, want := range []string{"-uinitcmd=recovery", "-defaultsh=gosh", "./recovery", selftestPkg,
		"github.com/u-root/u-root/cmds/core/init"} {
		if !slices.Contains(args, want) {
			t.Errorf("uRootArgs() = %q, missing %q", args, want)
		}
	}
	if slices.Contains(args, "github.com/u-root/u-root/cmds/core/tar") {
		t.Error("u-root's tar would shadow GNU tar")
	}
	if args[len(args)-1] != "./recovery" {
		t.Errorf("last package = %q, want the recovery program", args[len(args)-1])
	}
}

func TestOptionsFill(t *testing.T) {
	for _, o := range []Options{{GOARCH: "arm", ModuleDir: "/m"}, {GOARCH: "arm64"}} {
		if err := o.fill(); err == nil {
			t.Errorf("fill(%+v) = nil error", o)
		}
	}
}

func TestCompressors(t *testing.T) {
	var buf bytes.Buffer
	w, err := newCompressor("zstd", &buf)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "070701 cpio")
	w.Close()
	r, err := zstd.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "070701 cpio" {
		t.Errorf("zstd round trip = %q, %v", got, err)
	}
	if _, err := newCompressor("lz4", &buf); err == nil || !strings.Contains(err.Error(), "zstd or gzip") {
		t.Errorf("newCompressor(lz4) = %v", err)
	}
	if Ext("gzip") != ".cpio.gz" || Ext("zstd") != ".cpio.zst" {
		t.Error("Ext() names")
	}
}

// TestURootKeyStable: the cache key of the u-root archive must not change
// between two runs over the same tree, or the cache never hits.
func TestURootKeyStable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the whole initramfs")
	}
	o := Options{GOARCH: "arm64", ModuleDir: "..", Recovery: "./initramfs/testdata/recovery"}
	if err := o.fill(); err != nil {
		t.Fatal(err)
	}
	k1, err := o.uRootKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := o.uRootKey(t.Context())
	if err != nil || k1 != k2 || len(k1) != 16 {
		t.Fatalf("uRootKey() = %q then %q, %v; want the same 16 hex digits", k1, k2, err)
	}
	o.GOARCH = "amd64"
	if k3, err := o.uRootKey(t.Context()); err != nil || k3 == k1 {
		t.Errorf("uRootKey(amd64) = %q, %v; want a key different from arm64's %q", k3, err, k1)
	}
}
