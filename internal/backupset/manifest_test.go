package backupset

import (
	"bytes"
	"strings"
	"testing"
)

// TestReadManifestRefusesNamesOutside: a manifest is read from a share
// anyone with write access may have changed, and re-signing (recomputing
// the hashes) is easy. Verify opens every file it lists and the restore
// reads the listings and trees it names, so each must be a file name
// directly in the set folder: no "..", no absolute path, and no "/"
// either (a payload inside an rsync tree, "etc/shadow", is no payload).
func TestReadManifestRefusesNamesOutside(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	file := func(p string) string {
		return `{"format_version":1,"type":"tgz","files":[{"path":` + quote(p) + `,"size":1,"sha256":"` + sum + `"}]}`
	}
	tree := func(root, listing string) string {
		return `{"format_version":1,"type":"rsync","files":[{"path":"pibackup-tree.list","size":1,"sha256":"` + sum + `"}],` +
			`"trees":[{"root":` + quote(root) + `,"listing":` + quote(listing) + `}]}`
	}
	for _, c := range []struct {
		name, manifest string
		ok             bool
	}{
		{"payload", file("pi@debian12-tgz-backup-20240416-094106.tgz"), true},
		{"dot-dot", file("../pi-backup.img"), false},
		{"dot-dot inside", file("a/../pi-backup.img"), false},
		{"absolute", file("/etc/shadow"), false},
		{"subfolder", file("etc/shadow"), false},
		{"tree", tree(".", "pibackup-tree.list"), true},
		{"partition tree", tree("mmcblk0p2", "pibackup-tree.mmcblk0p2.list"), true},
		{"tree root with slash", tree("mmcblk0p2/etc", "pibackup-tree.list"), false},
		{"tree root dot-dot", tree("..", "pibackup-tree.list"), false},
		{"listing in a subfolder", tree(".", "etc/pibackup-tree.list"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadManifest(bytes.NewReader([]byte(c.manifest)))
			if (err == nil) != c.ok {
				t.Errorf("ReadManifest = %v; want ok=%v", err, c.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "set folder") {
				t.Errorf("error %q does not say the name must be in the set folder", err)
			}
		})
	}
}

func quote(s string) string { return `"` + s + `"` }
