package backupset

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// manifestSeed is a manifest as backupctl writes it.
func manifestSeed(f *testing.F) []byte {
	m := &Manifest{
		FormatVersion: ManifestVersion, Tool: "backupctl", ToolVersion: "dev", Host: "pi",
		OSRelease: "debian12", Type: TypeTGZ, Compression: "gzip",
		Started:  time.Date(2024, 4, 16, 9, 41, 6, 0, time.UTC),
		Finished: time.Date(2024, 4, 16, 9, 42, 0, 0, time.UTC),
		Disk: Disk{Device: "/dev/mmcblk0", Size: 32 << 30, SectorSize: 512, Table: "dos", DiskID: "0x1234abcd",
			Partitions: []Partition{{Number: 1, Start: 4 << 20, Size: 512 << 20, Type: "c", PartUUID: "1234abcd-01", FSType: "vfat"}}},
		Files: []File{{Path: "pi@debian12-tgz-backup-20240416-094106.tgz", Size: 42, SHA256: strings.Repeat("ab", 32)}},
		Trees: []Tree{{Root: ".", Listing: "pi-backup.tree.list", Entries: 3, Bytes: 9}},
	}
	var b bytes.Buffer
	if err := WriteManifest(&b, m); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}

// FuzzReadManifest feeds arbitrary bytes to ReadManifest, which reads a
// file from a backup folder that anyone with write access to the share
// may have made. It must not panic; what it accepts must name only paths
// inside the set and must survive a write and read unchanged, so verify
// and restore see what the writer meant.
func FuzzReadManifest(f *testing.F) {
	f.Add(manifestSeed(f))
	f.Add([]byte(`{"format_version":1,"type":"rsync","files":[{"path":"../etc/shadow","size":1,"sha256":"` + strings.Repeat("0", 64) + `"}]}`))
	f.Add([]byte(`{"format_version":1,"type":"dd","files":[{"path":"a//b","sha256":""}]}`))
	f.Add([]byte(`{"format_version":2}`))
	f.Add([]byte(`{"format_version":1,"type":"tar","started":"not a time"}`))
	f.Add([]byte("\xef\xbb\xbf{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadManifest(bytes.NewReader(data))
		if err != nil {
			if m != nil {
				t.Fatalf("ReadManifest returned a manifest and error %v", err)
			}
			return
		}
		for _, fl := range m.Files {
			if !ValidName(fl.Path) {
				t.Fatalf("accepted file path %q", fl.Path)
			}
		}
		var b bytes.Buffer
		if err := WriteManifest(&b, m); err != nil {
			// A time outside year 0..9999 decodes but does not encode.
			if strings.Contains(err.Error(), "year outside of range") {
				return
			}
			t.Fatalf("WriteManifest of an accepted manifest: %v", err)
		}
		m2, err := ReadManifest(&b)
		if err != nil {
			t.Fatalf("re-read of a written manifest: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(normalize(m), normalize(m2)) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}

// normalize drops what JSON cannot carry exactly (monotonic and location
// details of times), so DeepEqual compares content.
func normalize(m *Manifest) Manifest {
	c := *m
	c.Started, c.Finished = c.Started.UTC().Round(0), c.Finished.UTC().Round(0)
	return c
}
