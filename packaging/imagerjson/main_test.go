package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// fakeImage writes recovery-BOARD.img.xz (and the .sha256 files buildimage
// writes) into dir and returns the raw image.
func fakeImage(t *testing.T, dir, board string, size int) []byte {
	t.Helper()
	img := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 7))
	for i := 0; i < size/2; i++ { // half noise, half zeros, like a real image
		img[i] = byte(r.Uint32())
	}
	var zb bytes.Buffer
	zw, err := xz.NewWriter(&zb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(img); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	name := "recovery-" + board + ".img"
	if err := os.WriteFile(filepath.Join(dir, name+".xz"), zb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	if err := os.WriteFile(filepath.Join(dir, name+".sha256"), []byte(sum(img)+"  "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".xz.sha256"), []byte(sum(zb.Bytes())+"  "+name+".xz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestOSList(t *testing.T) {
	dir := t.TempDir()
	imgs := map[string][]byte{}
	var paths []string
	for i, b := range []string{"pi4", "rpi-arm64", "zero2w"} {
		imgs[b] = fakeImage(t, dir, b, (i+1)<<20)
		paths = append(paths, filepath.Join(dir, "recovery-"+b+".img.xz"))
	}
	out := filepath.Join(dir, "os_list.json")
	o := options{baseURL: "https://example.org/releases/v1.2.3", version: "v1.2.3", date: "2026-11-25",
		boardDir: filepath.Join("..", "..", "board-configs"), out: out, images: paths}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if errs := ValidateJSON(data); len(errs) > 0 {
		t.Fatalf("os_list.json fails Imager's rules:\n%v\n%s", errs, data)
	}
	var l List
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.OSList) != 3 || !strings.Contains(l.OSList[0].URL, "rpi-arm64") {
		t.Fatalf("want 3 entries, the every-Pi image first; got %+v", l.OSList)
	}
	for _, e := range l.OSList {
		board := strings.TrimSuffix(strings.TrimPrefix(e.URL, o.baseURL+"/recovery-"), ".img.xz")
		img, ok := imgs[board]
		if !ok {
			t.Fatalf("url %s names no image of the test", e.URL)
		}
		sum := sha256.Sum256(img)
		if e.ExtractSize != int64(len(img)) || e.ExtractSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: extract_size/sha256 %d %s do not describe the decompressed image", board, e.ExtractSize, e.ExtractSHA256)
		}
		xzData, _ := os.ReadFile(filepath.Join(dir, "recovery-"+board+".img.xz"))
		xsum := sha256.Sum256(xzData)
		if e.ImageDownloadSize != int64(len(xzData)) || e.ImageDownloadSHA256 != hex.EncodeToString(xsum[:]) {
			t.Errorf("%s: image_download_size/sha256 do not describe the .xz file", board)
		}
		if e.InitFormat != "none" || e.ReleaseDate != "2026-11-25" || e.Icon != o.baseURL+"/"+IconFile {
			t.Errorf("%s: init_format %q, release_date %q, icon %q", board, e.InitFormat, e.ReleaseDate, e.Icon)
		}
	}
	if !strings.Contains(l.OSList[1].Name, "Raspberry Pi 4") {
		t.Errorf("pi4 entry name %q lacks the board description from board-configs/pi4.toml", l.OSList[1].Name)
	}
	if want := []string{"pi5-64bit", "pi4-64bit", "pi3-64bit"}; fmt.Sprint(l.OSList[0].Devices) != fmt.Sprint(want) {
		t.Errorf("rpi-arm64 devices %v, want %v", l.OSList[0].Devices, want)
	}
	if _, err := os.Stat(filepath.Join(dir, IconFile)); err != nil {
		t.Errorf("icon not written next to the list: %v", err)
	}
}

func TestOSListRefuses(t *testing.T) {
	dir := t.TempDir()
	fakeImage(t, dir, "pi5", 1<<16)
	fakeImage(t, dir, "qemu-x86_64", 1<<16)
	base := options{baseURL: "https://example.org/r/", date: "2026-11-25", boardDir: filepath.Join("..", "..", "board-configs"),
		out: filepath.Join(dir, "os_list.json")}

	o := base
	o.images = []string{filepath.Join(dir, "recovery-qemu-x86_64.img.xz")}
	if err := run(o); err == nil || !strings.Contains(err.Error(), "no Raspberry Pi") {
		t.Errorf("a QEMU image: err = %v, want a refusal", err)
	}

	// A .sha256 from buildimage that disagrees: a stale or damaged image.
	if err := os.WriteFile(filepath.Join(dir, "recovery-pi5.img.sha256"), []byte(strings.Repeat("0", 64)+"  recovery-pi5.img\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o = base
	o.images = []string{filepath.Join(dir, "recovery-pi5.img.xz")}
	if err := run(o); err == nil || !strings.Contains(err.Error(), "stale or damaged") {
		t.Errorf("mismatching .sha256: err = %v", err)
	}
}

// The validator itself must catch what Imager rejects.
func TestValidateJSONCatches(t *testing.T) {
	good := `{"name":"x","description":"d","icon":"https://e.org/i.png","url":"https://e.org/x.img.xz",
		"extract_size":10,"extract_sha256":"` + strings.Repeat("a", 64) + `","image_download_size":5,
		"release_date":"2026-01-02","devices":["pi4-64bit"],"init_format":"none"}`
	if errs := ValidateJSON([]byte(`{"os_list":[` + good + `]}`)); len(errs) > 0 {
		t.Fatalf("a good list fails: %v", errs)
	}
	cases := map[string]string{
		"missing devices":   strings.Replace(good, `"devices":["pi4-64bit"],`, "", 1),
		"empty devices":     strings.Replace(good, `["pi4-64bit"]`, `[]`, 1),
		"unknown device":    strings.Replace(good, `pi4-64bit`, `pi4`, 1),
		"size as string":    strings.Replace(good, `"extract_size":10`, `"extract_size":"10"`, 1),
		"bad sha":           strings.Replace(good, strings.Repeat("a", 64), "abc", 1),
		"bad date":          strings.Replace(good, "2026-01-02", "02.01.2026", 1),
		"bad init_format":   strings.Replace(good, `"none"`, `"system-d"`, 1),
		"not an image url":  strings.Replace(good, "x.img.xz", "x.tar.bz2", 1),
		"missing icon":      strings.Replace(good, `"icon":"https://e.org/i.png",`, "", 1),
		"missing extract":   strings.Replace(good, `"extract_sha256":"`+strings.Repeat("a", 64)+`",`, "", 1),
		"empty description": strings.Replace(good, `"description":"d"`, `"description":""`, 1),
	}
	for name, entry := range cases {
		if errs := ValidateJSON([]byte(`{"os_list":[` + entry + `]}`)); len(errs) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
	if errs := ValidateJSON([]byte(`{"os_list":[` + good + `],"extra":1}`)); len(errs) == 0 {
		t.Error("an unknown top-level key is not caught")
	}
}
