package bootcmdline

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/i18n"
)

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc\n", []string{"a", "b", "c"}},
		{`console=ttyS0,115200 recovery.source="sftp://u@h/my backups" quiet`, []string{"console=ttyS0,115200", "recovery.source=sftp://u@h/my backups", "quiet"}},
		{`"a b"c d`, []string{"a bc", "d"}},
		{`x=""`, []string{"x="}},
		{`""`, []string{""}},
	} {
		if got := Split(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

const fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"

// Public keys for authorized_key (ssh-keygen -t ed25519, private halves
// thrown away).
const (
	pubKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwCdzfFPDnHXW9ngv0ysnGvbXUbhl8F2iPH6hDIgeii me@laptop"
	pubKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJyUv/2Pg5qE+E8/bEVye/E6vEOxY/IZkASYfTvQSe2Y"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cmdline string
		conf    string
		want    Config
		wantErr string // substring; "" means no error
	}{
		{name: "empty", want: Config{}},
		{
			name:    "unattended sftp",
			cmdline: "console=tty1 recovery.source=sftp://backup@10.0.2.2:2222/srv/backups recovery.set=latest recovery.target=/dev/mmcblk0 recovery.yes=1 recovery.after=reboot recovery.host=pi",
			conf:    "# secrets\npassword=hunter2\nknown_host=" + fp + "\n",
			want: Config{Source: "sftp://backup@10.0.2.2:2222/srv/backups", Set: "latest", Target: "/dev/mmcblk0",
				Yes: true, After: AfterReboot, Host: "pi", Password: "hunter2", KnownHost: fp},
		},
		{
			name: "conf only, prefix optional, quotes, CRLF, BOM",
			conf: "\ufeffrecovery.source=\"nfs://nas/export/backups?vers=3\"\r\ntarget = /dev/sda\r\n\r\nyes=yes\r\nidentity=keys/id_ed25519\r\n",
			want: Config{Source: "nfs://nas/export/backups?vers=3", Target: "/dev/sda", Yes: true, Identity: "keys/id_ed25519"},
		},
		{
			name:    "cmdline overrides conf",
			cmdline: "recovery.target=/dev/sdb recovery.yes=0",
			conf:    "source=usb:BACKUP/pi\ntarget=/dev/sda\nyes=1\n",
			want:    Config{Source: "usb:BACKUP/pi", Target: "/dev/sdb", Yes: false},
		},
		{
			name:    "network static",
			cmdline: "recovery.net=static recovery.ip=192.168.1.50/24 recovery.gateway=192.168.1.1 recovery.dns=1.1.1.1,9.9.9.9 recovery.iface=^(eth|usb)[0-9]+$ recovery.tty=/dev/ttyS0",
			want: Config{Net: "static", IP: netip.MustParsePrefix("192.168.1.50/24"), Gateway: netip.MustParseAddr("192.168.1.1"),
				DNS: []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("9.9.9.9")}, Iface: "^(eth|usb)[0-9]+$", TTY: "ttyS0"},
		},
		{name: "set by name", cmdline: "recovery.set=pi@debian12-tar-backup-20260101-120000", want: Config{Set: "pi@debian12-tar-backup-20260101-120000"}},
		{name: "password on cmdline", cmdline: "recovery.password=hunter2", wantErr: "recovery.conf only"},
		{name: "identity on cmdline", cmdline: "recovery.identity=id", wantErr: "recovery.conf only"},
		{name: "known_host on cmdline", cmdline: "recovery.known_host=" + fp, wantErr: "recovery.conf only"},
		{name: "age_identity inline", conf: "age_identity=AGE-SECRET-KEY-1QQQ\n", want: Config{AgeIdentity: "AGE-SECRET-KEY-1QQQ"}},
		{name: "age_identity file", conf: "age_identity=keys/pibackup.key\n", want: Config{AgeIdentity: "keys/pibackup.key"}},
		{name: "age_identity outside", conf: "age_identity=../etc/key\n", wantErr: "age_identity"},
		{name: "age_identity on cmdline", cmdline: "recovery.age_identity=AGE-SECRET-KEY-1QQQ", wantErr: "recovery.conf only"},
		{name: "unknown key", cmdline: "recovery.sorce=usb:X", wantErr: `unknown key "sorce"`},
		{name: "unknown conf key with line", conf: "\n\nfoo=1\n", wantErr: "recovery.conf line 3: unknown key"},
		{name: "conf line without =", conf: "source\n", wantErr: "line 1: want KEY=VALUE"},
		{name: "bad url", cmdline: "recovery.source=ftp://h/x", wantErr: "unknown scheme"},
		{name: "password in url", cmdline: "recovery.source=sftp://u:pw@h/x", wantErr: "password in the URL"},
		{name: "relative target", cmdline: "recovery.target=sda", wantErr: "device path"},
		{name: "bad set", cmdline: "recovery.set=newest", wantErr: "latest or a set folder"},
		{name: "bad after", cmdline: "recovery.after=halt", wantErr: "poweroff or reboot"},
		{name: "bad yes", cmdline: "recovery.yes=maybe", wantErr: "want 1 or 0"},
		{name: "bad ip", cmdline: "recovery.ip=192.168.1.50", wantErr: "prefix length"},
		{name: "static without ip", cmdline: "recovery.net=static", wantErr: "needs recovery.ip"},
		{name: "yes without target", cmdline: "recovery.source=usb:B recovery.yes=1", wantErr: "needs both"},
		{name: "unattended sftp unpinned", cmdline: "recovery.source=sftp://u@h/x recovery.target=/dev/sda recovery.yes=1", wantErr: "known_host"},
		{
			name:    "unattended s3",
			cmdline: "recovery.source=s3://AKID@pibackups/site?endpoint=http://10.0.2.2:7070 recovery.target=/dev/sda recovery.yes=1",
			conf:    "password=the-secret-key\n",
			want:    Config{Source: "s3://AKID@pibackups/site?endpoint=http://10.0.2.2:7070", Target: "/dev/sda", Yes: true, Password: "the-secret-key"},
		},
		{name: "unattended s3 without secret", cmdline: "recovery.source=s3://AKID@b/x recovery.target=/dev/sda", wantErr: "password= in recovery.conf"},
		{name: "unattended s3 without key id", cmdline: "recovery.source=s3://b/x recovery.target=/dev/sda", conf: "password=x\n", wantErr: "s3://ACCESSKEY@"},
		{name: "bad known_host", conf: "known_host=MD5:aa:bb", wantErr: "bad known_host (value not shown)"},
		{name: "identity escapes", conf: "identity=../../etc/shadow", wantErr: "bad identity"},
		{
			name:    "ssh with keys",
			cmdline: "recovery.ssh_port=2222",
			conf:    "authorized_key=" + pubKey + "\nauthorized_key = \"" + pubKey2 + "\"\n",
			want:    Config{SSHPort: 2222, AuthorizedKeys: []string{pubKey, pubKey2}},
		},
		{name: "ssh on", cmdline: "recovery.ssh=1", want: Config{SSH: SSHOn}},
		{name: "ssh off overrides conf", cmdline: "recovery.ssh=0", conf: "ssh=1\n", want: Config{SSH: SSHOff}},
		{name: "authorized_key on cmdline", cmdline: `recovery.authorized_key="` + pubKey + `"`, wantErr: "recovery.conf only"},
		{name: "authorized_key garbage", conf: "authorized_key=ssh-ed25519 AAAAnotbase64", wantErr: "want a public key line"},
		{name: "authorized_key with options", conf: `authorized_key=from="10.0.0.1" ` + pubKey, wantErr: "not supported"},
		{name: "authorized_key private", conf: "authorized_key=-----BEGIN OPENSSH PRIVATE KEY-----", wantErr: "want a public key line"},
		{name: "ssh_port zero", cmdline: "recovery.ssh_port=0", wantErr: "1 to 65535"},
		{name: "ssh_port word", cmdline: "recovery.ssh_port=ssh", wantErr: "1 to 65535"},
		{name: "ssh maybe", cmdline: "recovery.ssh=maybe", wantErr: "want 1 or 0"},
		{name: "lang from conf", conf: "lang=de_DE.UTF-8\n", want: Config{Lang: i18n.German}},
		{name: "lang cmdline over conf", cmdline: "recovery.lang=en", conf: "lang=de\n", want: Config{Lang: i18n.English}},
		{name: "lang unknown", cmdline: "recovery.lang=fr", wantErr: "want en or de"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var conf *strings.Reader
			if tt.conf != "" {
				conf = strings.NewReader(tt.conf)
			}
			var got Config
			var err error
			if conf != nil {
				got, err = Parse(tt.cmdline, conf)
			} else {
				got, err = Parse(tt.cmdline, nil)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v; want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "shadow") {
					t.Errorf("Parse() error %q shows a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestSecretOnCmdlineIsSentinel(t *testing.T) {
	_, err := Parse("recovery.password=x", nil)
	if !errors.Is(err, ErrSecretOnCmdline) {
		t.Errorf("Parse() = %v; want ErrSecretOnCmdline", err)
	}
}

func TestDefaultsAndSpec(t *testing.T) {
	c, err := Parse("recovery.source=sftp://u@h:2222/b recovery.target=/dev/sda", strings.NewReader("password=pw\nknown_host=256 "+fp+" root@nas (ED25519)\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Unattended() || c.SetOrLatest() != "latest" || c.AfterOrDefault() != AfterPowerOff {
		t.Errorf("Unattended()=%v SetOrLatest()=%q AfterOrDefault()=%q", c.Unattended(), c.SetOrLatest(), c.AfterOrDefault())
	}
	sp, err := c.Spec([]byte("KEY"))
	if err != nil {
		t.Fatal(err)
	}
	if sp.Host != "h" || sp.Port != 2222 || sp.User != "u" || sp.Path != "/b" || sp.Password != "pw" || string(sp.Identity) != "KEY" || sp.KnownHost != fp {
		t.Errorf("Spec() = %+v", sp)
	}
}

func TestSSHEnabled(t *testing.T) {
	for _, tt := range []struct {
		c        Config
		on, otp  bool
		wantPort int
	}{
		{c: Config{}, wantPort: 22},
		{c: Config{SSH: SSHOn}, on: true, otp: true, wantPort: 22},
		{c: Config{AuthorizedKeys: []string{pubKey}, SSHPort: 2222}, on: true, wantPort: 2222},
		{c: Config{SSH: SSHOn, AuthorizedKeys: []string{pubKey}}, on: true, wantPort: 22},
		{c: Config{SSH: SSHOff, AuthorizedKeys: []string{pubKey}}, wantPort: 22},
	} {
		if on, otp, port := tt.c.SSHEnabled(), tt.c.SSHOneTimePassword(), tt.c.SSHPortOrDefault(); on != tt.on || otp != tt.otp || port != tt.wantPort {
			t.Errorf("%+v: SSHEnabled()=%v SSHOneTimePassword()=%v SSHPortOrDefault()=%d; want %v %v %d", tt.c, on, otp, port, tt.on, tt.otp, tt.wantPort)
		}
	}
}

func TestConfOnlyIsSentinel(t *testing.T) {
	_, err := Parse("recovery.authorized_key="+strings.ReplaceAll(pubKey, " ", ""), nil)
	if !errors.Is(err, ErrConfOnly) {
		t.Errorf("Parse() = %v; want ErrConfOnly", err)
	}
}

// FuzzParse checks that no input panics, that errors never show a
// password, and that a parsed config validates the same way twice.
func FuzzParse(f *testing.F) {
	f.Add("recovery.source=sftp://u@h/x recovery.target=/dev/sda recovery.yes=1", "password=secretpw\nknown_host="+fp)
	f.Add(`recovery.source="nfs://h/e?vers=3&port=2049" quiet`, "")
	f.Add("recovery.password=secretpw", "")
	f.Add("", "identity=\"id\"\n#c\nfoo")
	f.Fuzz(func(t *testing.T, cmdline, conf string) {
		c, err := Parse(cmdline, strings.NewReader(conf))
		if err != nil {
			if strings.Contains(conf, "password=secretpw") && strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("error shows the password: %v", err)
			}
			return
		}
		if c.Source != "" {
			if _, err := c.Spec(nil); err != nil {
				t.Fatalf("accepted source %q does not give a Spec: %v", c.Source, err)
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}
