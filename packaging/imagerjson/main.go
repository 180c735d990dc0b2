// Command imagerjson writes the os_list JSON that Raspberry Pi Imager reads
// from a custom repository (rpi-imager --repo URL, or "Content Repository"
// in its options), one entry per recovery image:
//
//	go run ./packaging/imagerjson -base-url https://example.org/v1.2.3/ \
//	    -o out/release/os_list.json out/release/recovery-*.img.xz
//
// Sizes and SHA-256 sums come from the images themselves: extract_* from
// the decompressed stream (what Imager checks after writing; a wrong one
// makes Imager abort and wipe the first MB of the card), image_download_*
// from the .xz file. A .sha256 file that buildimage wrote next to an
// image must agree. The icon is written next to the JSON.
//
// The fields are those of rpi-imager's doc/json-schema/os-list-schema.json
// and doc/schema-notes.md; validate.go checks a list against them.
package main

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/pibackup/pibackup/internal/boardcfg"
)

//go:embed icon.svg
var iconSVG []byte

// IconFile is the icon's file name next to os_list.json.
const IconFile = "pibackup-recovery.svg"

// OS is one os_list entry.
type OS struct {
	Name                string   `json:"name"`
	Description         string   `json:"description"`
	URL                 string   `json:"url"`
	Icon                string   `json:"icon"`
	Website             string   `json:"website,omitempty"`
	ExtractSize         int64    `json:"extract_size"`
	ExtractSHA256       string   `json:"extract_sha256"`
	ImageDownloadSize   int64    `json:"image_download_size"`
	ImageDownloadSHA256 string   `json:"image_download_sha256"`
	ReleaseDate         string   `json:"release_date"`
	InitFormat          string   `json:"init_format"`
	Devices             []string `json:"devices"`
}

// List is the file.
type List struct {
	OSList []OS `json:"os_list"`
}

// boardDevices maps our boards to Imager's device tags, the tags of the
// device list in Imager's own os_list_imagingutility_v4.json: Zero 2 W and
// CM3 are "pi3", Pi 400 and CM4 are "pi4", Pi 500 and CM5 are "pi5". All
// our boards are 64-bit. Boards not here (the QEMU ones) are no Pi.
var boardDevices = map[string][]string{
	"rpi-arm64": {"pi5-64bit", "pi4-64bit", "pi3-64bit"},
	"pi5":       {"pi5-64bit"},
	"pi4":       {"pi4-64bit"},
	"cm4":       {"pi4-64bit"},
	"pi3":       {"pi3-64bit"},
	"zero2w":    {"pi3-64bit"},
}

// boardOrder puts the image for every Pi first.
var boardOrder = []string{"rpi-arm64", "pi5", "pi4", "cm4", "pi3", "zero2w"}

type options struct {
	baseURL, iconURL, website string
	version, date, boardDir   string
	out                       string
	images                    []string
}

func main() {
	var o options
	flag.StringVar(&o.baseURL, "base-url", "", "URL of the folder the images are downloaded from (the release's download folder)")
	flag.StringVar(&o.iconURL, "icon-url", "", "icon URL (default: -base-url + "+IconFile+", which is written next to -o)")
	flag.StringVar(&o.website, "website", "https://github.com/pibackup/pibackup", "project website shown by Imager")
	flag.StringVar(&o.version, "version", "", "release version, shown in the descriptions")
	flag.StringVar(&o.date, "date", "", "release date YYYY-MM-DD (default: from SOURCE_DATE_EPOCH, else today, UTC)")
	flag.StringVar(&o.boardDir, "board-dir", "board-configs", "folder of the board files (for the descriptions)")
	flag.StringVar(&o.out, "o", "os_list.json", "file to write")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: imagerjson -base-url URL [flags] recovery-BOARD.img.xz...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.images = flag.Args()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "imagerjson:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.baseURL == "" || len(o.images) == 0 {
		return errors.New("need -base-url and at least one recovery-BOARD.img.xz")
	}
	if !strings.HasSuffix(o.baseURL, "/") {
		o.baseURL += "/"
	}
	if o.iconURL == "" {
		o.iconURL = o.baseURL + IconFile
		if err := os.WriteFile(filepath.Join(filepath.Dir(o.out), IconFile), iconSVG, 0o644); err != nil {
			return err
		}
	}
	date, err := releaseDate(o.date)
	if err != nil {
		return err
	}
	var list List
	for _, img := range sortImages(o.images) {
		e, err := entry(o, img, date)
		if err != nil {
			return err
		}
		list.OSList = append(list.OSList, e)
	}
	if errs := Validate(&list); len(errs) > 0 {
		return fmt.Errorf("the list would not load in Imager: %v", errors.Join(errs...))
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := o.out + ".partial"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, o.out)
}

func releaseDate(s string) (string, error) {
	if s != "" {
		if _, err := time.Parse("2006-01-02", s); err != nil {
			return "", fmt.Errorf("-date %q: want YYYY-MM-DD", s)
		}
		return s, nil
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return "", fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", e, err)
		}
		return time.Unix(n, 0).UTC().Format("2006-01-02"), nil
	}
	return time.Now().UTC().Format("2006-01-02"), nil
}

// boardOf returns BOARD of .../recovery-BOARD.img.xz.
func boardOf(path string) (string, error) {
	base := filepath.Base(path)
	if !strings.HasPrefix(base, "recovery-") || !strings.HasSuffix(base, ".img.xz") {
		return "", fmt.Errorf("%s: want a file named recovery-BOARD.img.xz (buildimage -compress xz)", path)
	}
	return strings.TrimSuffix(strings.TrimPrefix(base, "recovery-"), ".img.xz"), nil
}

func sortImages(images []string) []string {
	rank := func(p string) int {
		b, _ := boardOf(p)
		for i, x := range boardOrder {
			if x == b {
				return i
			}
		}
		return len(boardOrder)
	}
	out := append([]string(nil), images...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func entry(o options, img, date string) (OS, error) {
	board, err := boardOf(img)
	if err != nil {
		return OS{}, err
	}
	devices, ok := boardDevices[board]
	if !ok {
		return OS{}, fmt.Errorf("%s: board %q is no Raspberry Pi that Imager knows; leave it out", img, board)
	}
	desc := board
	if b, err := boardcfg.Load(o.boardDir, board); err == nil {
		desc = b.Description
	} else if !errors.Is(err, os.ErrNotExist) {
		return OS{}, err
	}
	e := OS{
		Name:        "pibackup recovery (" + desc + ")",
		Description: "Boots into the pibackup restore menu: restores a backupctl or raspiBackup backup from USB, NFS, SMB or SFTP onto a new card or disk.",
		URL:         o.baseURL + filepath.Base(img),
		Icon:        o.iconURL,
		Website:     o.website,
		ReleaseDate: date,
		// The recovery has no firstrun.sh or cloud-init: Imager must not
		// offer OS customisation (schema-notes.md: "none" disables it).
		InitFormat: "none",
		Devices:    devices,
	}
	if o.version != "" {
		e.Name += " " + o.version
	}
	if e.ImageDownloadSize, e.ImageDownloadSHA256, err = hashFile(img); err != nil {
		return OS{}, err
	}
	if e.ExtractSize, e.ExtractSHA256, err = hashXZ(img); err != nil {
		return OS{}, err
	}
	// buildimage's sums for the .xz and the raw image, when they are here.
	if err := checkSumFile(img+".sha256", e.ImageDownloadSHA256); err != nil {
		return OS{}, err
	}
	if err := checkSumFile(strings.TrimSuffix(img, ".xz")+".sha256", e.ExtractSHA256); err != nil {
		return OS{}, err
	}
	return e, nil
}

func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// hashXZ decompresses path and returns the size and SHA-256 of the image.
func hashXZ(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	zr, err := xz.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, zr)
	if err != nil {
		return 0, "", fmt.Errorf("%s: decompress: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// checkSumFile compares a "HEX  NAME" file with sum; a missing file is fine.
func checkSumFile(path, sum string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 || !strings.EqualFold(fields[0], sum) {
		return fmt.Errorf("%s says %.64s but the file hashes to %s: stale or damaged image", path, string(data), sum)
	}
	return nil
}
