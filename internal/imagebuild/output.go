package imagebuild

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

//go:embed recovery.conf
var defaultRecoveryConf []byte

// DefaultRecoveryConf returns the shipped recovery.conf: every key present
// with its default, commented out.
func DefaultRecoveryConf() []byte { return append([]byte(nil), defaultRecoveryConf...) }

// Compress writes img+".zst" or img+".xz" and returns its path. The output
// is written under a temporary name and renamed when complete.
func Compress(img, kind string) (string, error) {
	var ext string
	switch kind {
	case "zst", "zstd":
		ext = ".zst"
	case "xz":
		ext = ".xz"
	default:
		return "", fmt.Errorf("compression %q: want zst or xz", kind)
	}
	dst := img + ext
	tmp := dst + ".partial"
	if err := compressTo(img, tmp, ext); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("rename %s: %w", tmp, err)
	}
	return dst, nil
}

func compressTo(src, dst, ext string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	defer out.Close()
	var w io.WriteCloser
	if ext == ".zst" {
		w, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	} else {
		w, err = xz.NewWriter(out)
	}
	if err != nil {
		return fmt.Errorf("compress %s: %w", ext, err)
	}
	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	return nil
}

// WriteSHA256 writes p+".sha256" in sha256sum's format ("<hex>  <name>"),
// so `sha256sum -c` works in the output directory.
func WriteSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", p, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	line := sum + "  " + filepath.Base(p) + "\n"
	if err := os.WriteFile(p+".sha256", []byte(line), 0o644); err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	return sum, nil
}
