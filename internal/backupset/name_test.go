package backupset

import (
	"errors"
	"testing"
	"testing/fstest"
	"time"
)

func TestParse(t *testing.T) {
	ts := time.Date(2024, 4, 16, 9, 41, 6, 0, time.UTC)
	tests := []struct {
		in   string
		want Name
		err  bool
	}{
		{in: "raspberrypi@debian12-rsync-backup-20240416-094106", want: Name{Host: "raspberrypi", OSRelease: "debian12", Type: TypeRsync, Time: ts}},
		{in: "raspberrypi@debian12-rsync-backup-20240416-094106_Hello_world", want: Name{Host: "raspberrypi", OSRelease: "debian12", Type: TypeRsync, Time: ts, Snapshot: "Hello_world"}},
		{in: "raspberrypi-tgz-backup-20240416-094106", want: Name{Host: "raspberrypi", Type: TypeTGZ, Time: ts}},
		{in: "my-pi-4@raspbian10-ddz-backup-20240416-094106", want: Name{Host: "my-pi-4", OSRelease: "raspbian10", Type: TypeDDZ, Time: ts}},
		{in: "pi@debian12-dd-backup-20240416-094106", want: Name{Host: "pi", OSRelease: "debian12", Type: TypeDD, Time: ts}},
		{in: "pi@ubuntu24~04-tar-backup-20240416-094106_x-y", want: Name{Host: "pi", OSRelease: "ubuntu24~04", Type: TypeTar, Time: ts, Snapshot: "x-y"}},
		{in: "pi@debian12-zip-backup-20240416-094106", err: true},
		{in: "pi@debian12-dd-backup-2024041-094106", err: true},
		{in: "pi@debian12-dd-backup-20241341-094106", err: true},
		{in: "tmp", err: true},
		{in: "-dd-backup-20240416-094106", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err {
			if !errors.Is(err, ErrNotASet) {
				t.Errorf("Parse(%q) = %+v, %v; want ErrNotASet", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.in {
			t.Errorf("Parse(%q).String() = %q", tt.in, s)
		}
	}
}

func TestTags(t *testing.T) {
	if got := OSReleaseTag("debian", "12"); got != "debian12" {
		t.Errorf("OSReleaseTag = %q", got)
	}
	if got := OSReleaseTag("ubuntu", "24.04"); got != "ubuntu24~04" {
		t.Errorf("OSReleaseTag = %q", got)
	}
	if got := OSReleaseTag("", ""); got != "unknownOS" {
		t.Errorf("OSReleaseTag = %q", got)
	}
	if got := SnapshotTag(`Before "big" upgrade: v1.2-rc`); got != "Before_big_upgrade__v1_2_rc" {
		t.Errorf("SnapshotTag = %q", got)
	}
	id, v := ParseOSRelease("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n")
	if id != "debian" || v != "12" {
		t.Errorf("ParseOSRelease = %q %q", id, v)
	}
}

func TestPayloadExt(t *testing.T) {
	tests := []struct {
		t    Type
		c    Compression
		want string
		err  bool
	}{
		{TypeDD, CompressNone, ".img", false},
		{TypeDD, CompressZstd, "", true},
		{TypeDDZ, CompressGzip, ".img.gz", false},
		{TypeDDZ, CompressZstd, ".img.zst", false},
		{TypeTar, CompressNone, ".tar", false},
		{TypeTar, CompressZstd, ".tar.zst", false},
		{TypeTGZ, CompressGzip, ".tgz", false},
		{TypeTGZ, CompressZstd, "", true},
		{TypeRsync, CompressNone, "", false},
		{TypeRsync, CompressGzip, "", true},
	}
	for _, tt := range tests {
		got, err := PayloadExt(tt.t, tt.c)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("PayloadExt(%s, %s) = %q, %v", tt.t, tt.c, got, err)
		}
	}
	for in, want := range map[string][2]string{
		"x.tar": {"x", ".tar"}, "x.tar.gz": {"x", ".tar.gz"}, "mmcblk0p2.tgz": {"mmcblk0p2", ".tgz"}, "a.tar.zst": {"a", ".tar.zst"},
	} {
		b, e, ok := TarPayloadBase(in)
		if !ok || b != want[0] || e != want[1] {
			t.Errorf("TarPayloadBase(%q) = %q %q %v", in, b, e, ok)
		}
	}
	if _, _, ok := TarPayloadBase("pi-backup.img"); ok {
		t.Error("TarPayloadBase accepted an image")
	}
}

func TestList(t *testing.T) {
	fsys := fstest.MapFS{
		"pi/pi@debian12-rsync-backup-20240416-094106/etc/fstab":                                {},
		"pi/pi@debian12-rsync-backup-20240416-094106/" + LegacyManifestFile:                    {},
		"pi/pi@debian12-tgz-backup-20240417-094106/pi@debian12-tgz-backup-20240417-094106.tgz": {},
		"pi/pi@debian12-tgz-backup-20240417-094106/pi-backup.img":                              {},
		"pi/pi-dd-backup-20230101-000000/pi-dd-backup-20230101-000000.img":                     {},
		"pi/pi@debian12-tar-backup-20240418-000000_keep/mmcblk0p2.tar":                         {},
		"pi/pi@debian12-tar-backup-20240418-000000_keep/pi-backup.blkid":                       {},
		"pi/tmp/pi@debian12-rsync-backup-20240420-000000/etc/x":                                {},
		"pi/pi-weird-backup-x/a": {},
		"other/other@debian11-ddz-backup-20240419-000000/other@debian11-ddz-backup-20240419-000000.img.zst": {},
		"other/other@debian11-ddz-backup-20240419-000000/other-backup.manifest.json":                        {},
		"lost+found/x": {},
	}
	l, err := List(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range l.Sets {
		got = append(got, s.String())
	}
	want := []string{
		"pi@debian12-rsync-backup-20240420-000000",
		"other@debian11-ddz-backup-20240419-000000",
		"pi@debian12-tar-backup-20240418-000000_keep",
		"pi@debian12-tgz-backup-20240417-094106",
		"pi@debian12-rsync-backup-20240416-094106",
		"pi-dd-backup-20230101-000000",
	}
	if len(got) != len(want) {
		t.Fatalf("List = %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("List = %q; want %q", got, want)
		}
	}
	if !l.Sets[0].InProgress || l.Sets[1].InProgress {
		t.Errorf("InProgress wrong: %+v", l.Sets[:2])
	}
	// Sets[4] has the legacy manifest name, Sets[1] the current one.
	if !l.Sets[2].PartitionMode || !l.Sets[4].HasManifest || l.Sets[3].HasManifest || !l.Sets[1].HasManifest {
		t.Errorf("flags wrong: %+v", l.Sets)
	}
	if len(l.Sets[3].Payload) != 1 || l.Sets[3].Payload[0] != "pi@debian12-tgz-backup-20240417-094106.tgz" {
		t.Errorf("payload = %q", l.Sets[3].Payload)
	}
	if len(l.Strays) != 1 {
		t.Errorf("strays = %+v", l.Strays)
	}
	latest, err := Latest(l.Sets, "pi")
	if err != nil || latest.String() != "pi@debian12-tar-backup-20240418-000000_keep" {
		t.Errorf("Latest = %v, %v", latest, err)
	}
	// A host folder and a set folder list too.
	if l, err := List(fsys, "other"); err != nil || len(l.Sets) != 1 {
		t.Errorf("List(host) = %+v, %v", l, err)
	}
	if l, err := List(fsys, "pi/pi-dd-backup-20230101-000000"); err != nil || len(l.Sets) != 1 || len(l.Sets[0].Payload) != 1 {
		t.Errorf("List(set) = %+v, %v", l, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"pi@debian12-rsync-backup-20240416-094106_x", "a-dd-backup-20000101-000000", "@-tar-backup-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if back, err := Parse(n.String()); err != nil || back != n {
			t.Fatalf("round trip %q -> %q: %v", s, n.String(), err)
		}
	})
}
