package source_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/source"
)

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    source.Spec
		wantErr string
	}{
		{in: "sftp://backup@nas:2222/srv/backups", want: source.Spec{Kind: source.KindSFTP, Host: "nas", Port: 2222, User: "backup", Path: "/srv/backups"}},
		{in: "sftp://backup@10.0.2.2", want: source.Spec{Kind: source.KindSFTP, Host: "10.0.2.2", User: "backup", Path: "."}},
		{in: "sftp://[fe80::1]:22/b", wantErr: "user"},
		{in: "sftp://u@[fd00::1]:22/b", want: source.Spec{Kind: source.KindSFTP, Host: "fd00::1", Port: 22, User: "u", Path: "/b"}},
		{in: "nfs://nas/export/backups", want: source.Spec{Kind: source.KindNFS, Host: "nas", Export: "/export/backups", Path: "."}},
		{in: "nfs://nas:2049/srv/x?vers=3&mountport=20048&export=/srv", want: source.Spec{Kind: source.KindNFS, Host: "nas", Port: 2049, MountPort: 20048, NFSVersion: "3", Export: "/srv", Path: "x"}},
		{in: "nfs://nas/srv/x?port=20490&vers=4.2", want: source.Spec{Kind: source.KindNFS, Host: "nas", Port: 20490, NFSVersion: "4.2", Export: "/srv/x", Path: "."}},
		{in: "nfs://nas/srv/x?export=/other", wantErr: "not a prefix"},
		{in: "nfs://nas/x?vers=5", wantErr: "vers"},
		{in: "nfs://nas/x?bogus=1", wantErr: "unknown option"},
		{in: "smb://nas/backups/pi", want: source.Spec{Kind: source.KindSMB, Host: "nas", Share: "backups", Path: "pi"}},
		{in: "smb://WORK%5Cjoe@nas:4455/share", want: source.Spec{Kind: source.KindSMB, Host: "nas", Port: 4455, User: `WORK\joe`, Share: "share", Path: "."}},
		{in: "smb://nas/", wantErr: "missing share"},
		{in: "s3://AKID@pibackups/site1?endpoint=http://10.0.2.2:7070", want: source.Spec{Kind: source.KindS3, Host: "pibackups", User: "AKID", Path: "site1", Endpoint: "http://10.0.2.2:7070"}},
		{in: "s3://bkt?region=eu-central-1", want: source.Spec{Kind: source.KindS3, Host: "bkt", Path: ".", Region: "eu-central-1"}},
		{in: "s3://bkt/a/../b", wantErr: "clean path"},
		{in: "s3://bkt:9000/x", wantErr: "?endpoint="},
		{in: "s3://bkt/x?endpoint=ftp://h", wantErr: "endpoint="},
		{in: "s3://bkt/x?bogus=1", wantErr: "unknown option"},
		{in: "s3://AKID:secret@bkt/x", wantErr: "password in the URL"},
		{in: "usb:BACKUP/pi/sets", want: source.Spec{Kind: source.KindUSB, Label: "BACKUP", Path: "pi/sets"}},
		{in: "usb:BACKUP", want: source.Spec{Kind: source.KindUSB, Label: "BACKUP", Path: "."}},
		{in: "usb:/dev/sda1/backups", want: source.Spec{Kind: source.KindUSB, Device: "/dev/sda1", Path: "backups"}},
		{in: "usb:X/../../etc", wantErr: "leaves"},
		{in: "usb:", wantErr: "missing label"},
		{in: "dir:/mnt/backups/", want: source.Spec{Kind: source.KindDir, Path: "/mnt/backups"}},
		{in: "dir:relative", wantErr: "absolute"},
		{in: "sftp://u:secret@h/x", wantErr: "password in the URL"},
		{in: "ftp://h/x", wantErr: "unknown scheme"},
		{in: "https://nas:8443/backups/pi/pi@debian12-tgz-backup-20260302-030405/", want: source.Spec{Kind: source.KindHTTPS, Host: "nas", Port: 8443, Path: "/backups/pi/pi@debian12-tgz-backup-20260302-030405"}},
		{in: "http://u@nas/pi/s", want: source.Spec{Kind: source.KindHTTP, Host: "nas", User: "u", Path: "/pi/s"}},
		{in: "https://nas/x?a=1", wantErr: "takes no options"},
		{in: "sftp:///x", wantErr: "missing host"},
		{in: "sftp://u@h:99999/x", wantErr: "bad port"},
	} {
		got, err := source.ParseURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseURL(%q) = %+v, %v; want error with %q", tt.in, got, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q) error shows the password: %v", tt.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		// String gives a URL that parses to the same Spec.
		again, err := source.ParseURL(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseURL(%q).String() = %q parses to %+v, %v", tt.in, got.String(), again, err)
		}
	}
}

func TestSpecStringHasNoSecrets(t *testing.T) {
	sp := source.Spec{Kind: source.KindSFTP, Host: "h", User: "u", Path: "/p", Password: "hunter2", Identity: []byte("KEY"), KnownHost: "SHA256:x"}
	if s := sp.String(); strings.Contains(s, "hunter2") || strings.Contains(s, "KEY") {
		t.Errorf("String() = %q shows a secret", s)
	}
	sp = source.Spec{Kind: source.KindS3, Host: "bkt", User: "AKID", Path: "p", Password: "hunter2", Endpoint: "http://nas:9000"}
	if s := sp.String(); strings.Contains(s, "hunter2") {
		t.Errorf("String() = %q shows the secret key", s)
	}
}

func TestNFSMountArgs(t *testing.T) {
	srv, cli := netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("10.0.2.15")
	for _, tt := range []struct {
		sp        source.Spec
		vers      string
		src, data string
	}{
		{
			sp:   source.Spec{Kind: source.KindNFS, Export: "/srv/export4", Port: 20491, MountPort: 20492},
			vers: "3", src: "10.0.2.2:/srv/export4",
			data: "vers=3,proto=tcp,port=20491,mountport=20492,mountproto=tcp,nolock,soft,timeo=150,retrans=3,addr=10.0.2.2",
		},
		{
			sp:   source.Spec{Kind: source.KindNFS, Export: "/"},
			vers: "3", src: "10.0.2.2:/",
			data: "vers=3,proto=tcp,mountproto=tcp,nolock,soft,timeo=150,retrans=3,addr=10.0.2.2",
		},
		{
			sp:   source.Spec{Kind: source.KindNFS, Export: "/export4", Port: 20491},
			vers: "4.2", src: "10.0.2.2:/export4",
			data: "vers=4.2,proto=tcp,port=20491,soft,timeo=150,retrans=3,addr=10.0.2.2,clientaddr=10.0.2.15",
		},
	} {
		src, data := source.NFSMountArgs(tt.sp, tt.vers, srv, cli)
		if src != tt.src || data != tt.data {
			t.Errorf("NFSMountArgs(%+v, %s) =\n  %s %s\nwant\n  %s %s", tt.sp, tt.vers, src, data, tt.src, tt.data)
		}
	}
	v6src, v6data := source.NFSMountArgs(source.Spec{Export: "/e"}, "4", netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::f"))
	if v6src != "[fd00::2]:/e" || !strings.Contains(v6data, "proto=tcp6") || !strings.Contains(v6data, "clientaddr=fd00::f") {
		t.Errorf("IPv6: %s %s", v6src, v6data)
	}
}

func TestFindPartition(t *testing.T) {
	disks := []source.Disk{{Path: "/dev/sda", Partitions: []source.Partition{
		{Path: "/dev/sda1", Label: "boot"}, {Path: "/dev/sda2", Label: "Backup"},
	}}}
	if d, p, err := source.FindPartition(disks, source.Spec{Label: "BACKUP"}); err != nil || p.Path != "/dev/sda2" || d.Path != "/dev/sda" {
		t.Errorf("by label: %v %v %v", d.Path, p.Path, err)
	}
	if _, p, err := source.FindPartition(disks, source.Spec{Device: "/dev/sda1"}); err != nil || p.Label != "boot" {
		t.Errorf("by device: %v %v", p, err)
	}
	if _, _, err := source.FindPartition(disks, source.Spec{Label: "nope"}); err == nil || !strings.Contains(err.Error(), "plugged in") {
		t.Errorf("missing: %v", err)
	}
}
