// Package bootcmdline reads the settings of the recovery from the kernel
// command line (recovery.KEY=VALUE) and from recovery.conf on the
// recovery's boot partition (KEY=VALUE, one per line). Together they drive
// unattended mode:
//
//	recovery.source=sftp://backup@nas:22/srv/backups
//	   or s3://ACCESSKEY@bucket/prefix?endpoint=http://nas:7070 (password= is the secret key)
//	recovery.host=pi          only sets of this host
//	recovery.set=latest       or a set folder name
//	recovery.target=/dev/mmcblk0
//	recovery.yes=1            without it unattended mode only plans
//	recovery.after=poweroff   or reboot
//	recovery.lang=de          the screens in German (LANG=de works too)
//
// Secrets (password=, identity=, known_host=, age_identity=) are read from recovery.conf
// only, never from the command line, which any process can read from
// /proc/cmdline and which the firmware may print. recovery.conf gives the
// defaults and the command line overrides them.
//
// Headless restores use the SSH server (package sshui):
//
//	authorized_key=ssh-ed25519 AAAA... me@laptop   recovery.conf only, repeatable
//	recovery.ssh=1            without a key: log in with a one-time password shown on the console
//	recovery.ssh=0            no SSH server even with keys
//	recovery.ssh_port=22
//
// The package does no I/O; the recovery main reads /proc/cmdline and the
// file and passes them in.
package bootcmdline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/source"
)

// Prefix marks our keys on the kernel command line.
const Prefix = "recovery."

// ConfFile is the name of the settings file on the boot partition.
const ConfFile = "recovery.conf"

// After is what the recovery does when unattended mode ends.
type After string

// The choices of recovery.after.
const (
	AfterPowerOff After = "poweroff"
	AfterReboot   After = "reboot"
)

// Config holds the settings. The zero value means: no unattended mode,
// DHCP on every wired interface.
type Config struct {
	Source string // recovery.source: a URL as source.ParseURL takes it
	Host   string // recovery.host: only sets of this host
	Set    string // recovery.set: "latest" or a set folder name
	Target string // recovery.target: the disk to overwrite
	Yes    bool   // recovery.yes: write without asking
	After  After  // recovery.after

	// Network (netup): recovery.net=dhcp|static|off, recovery.iface is a
	// regular expression of interface names, recovery.ip an address with
	// prefix length (192.168.1.50/24), recovery.gateway, recovery.dns
	// (comma separated).
	Net     string
	Iface   string
	IP      netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr

	TTY string // recovery.tty: the console the UI runs on (ttyS0, tty1)

	// Lang is recovery.lang: the language of the screens (en, de); ""
	// means LANG from the kernel command line, else English.
	Lang i18n.Lang

	// SSH server (see SSHEnabled). AuthorizedKeys are authorized_keys
	// lines from recovery.conf (authorized_key=, repeatable), checked
	// and without options.
	SSH            SSHMode
	SSHPort        int // recovery.ssh_port; 0 means 22
	AuthorizedKeys []string

	// Secrets, recovery.conf only.
	Password  string // smb/sftp password, or the identity's passphrase
	Identity  string // path of a private key file on the boot partition
	KnownHost string // the sftp server's pinned host key, SHA256:...
	// AgeIdentity opens encrypted sets: an AGE-SECRET-KEY-1... line
	// itself, or the path of an age identity file or SSH private key on
	// the boot partition.
	AgeIdentity string
}

// SSHMode is recovery.ssh.
type SSHMode int8

// The choices of recovery.ssh.
const (
	SSHAuto SSHMode = iota // unset: on when there is an authorized_key
	SSHOn                  // ssh=1: on; a one-time password when there is no key
	SSHOff                 // ssh=0: off
)

// key describes one setting.
type key struct {
	secret   bool // recovery.conf only, and the value is never shown
	confOnly bool // recovery.conf only
	set      func(c *Config, v string) error
}

func keys() map[string]key {
	return map[string]key{
		"source": {set: func(c *Config, v string) error {
			if _, err := source.ParseURL(v); err != nil {
				return err
			}
			c.Source = v
			return nil
		}},
		"host": {set: func(c *Config, v string) error {
			if strings.ContainsAny(v, "/@ ") {
				return fmt.Errorf("not a host name")
			}
			c.Host = v
			return nil
		}},
		"set": {set: func(c *Config, v string) error {
			if v != "latest" {
				if _, err := backupset.Parse(v); err != nil {
					return fmt.Errorf("want latest or a set folder name: %w", err)
				}
			}
			c.Set = v
			return nil
		}},
		"target": {set: func(c *Config, v string) error {
			if !path.IsAbs(v) || path.Clean(v) != v {
				return fmt.Errorf("want a device path such as /dev/mmcblk0")
			}
			c.Target = v
			return nil
		}},
		"yes": {set: func(c *Config, v string) (err error) {
			c.Yes, err = parseBool(v)
			return err
		}},
		"after": {set: func(c *Config, v string) error {
			switch After(v) {
			case AfterPowerOff, AfterReboot:
				c.After = After(v)
				return nil
			}
			return fmt.Errorf("want poweroff or reboot")
		}},
		"net": {set: func(c *Config, v string) error {
			switch v {
			case "dhcp", "static", "off":
				c.Net = v
				return nil
			}
			return fmt.Errorf("want dhcp, static or off")
		}},
		"iface": {set: func(c *Config, v string) error {
			if _, err := regexp.Compile(v); err != nil {
				return fmt.Errorf("not a regular expression: %w", err)
			}
			c.Iface = v
			return nil
		}},
		"ip": {set: func(c *Config, v string) (err error) {
			c.IP, err = netip.ParsePrefix(v)
			if err != nil {
				return fmt.Errorf("want an address with prefix length, such as 192.168.1.50/24")
			}
			return nil
		}},
		"gateway": {set: func(c *Config, v string) (err error) {
			c.Gateway, err = netip.ParseAddr(v)
			return err
		}},
		"dns": {set: func(c *Config, v string) error {
			c.DNS = nil
			for f := range strings.SplitSeq(v, ",") {
				a, err := netip.ParseAddr(strings.TrimSpace(f))
				if err != nil {
					return err
				}
				c.DNS = append(c.DNS, a)
			}
			return nil
		}},
		"lang": {set: func(c *Config, v string) error {
			l, ok := i18n.Parse(v)
			if !ok {
				return fmt.Errorf("want en or de")
			}
			c.Lang = l
			return nil
		}},
		"tty": {set: func(c *Config, v string) error {
			v = strings.TrimPrefix(v, "/dev/")
			if v == "" || strings.ContainsAny(v, "/ ") {
				return fmt.Errorf("want a tty name such as ttyS0")
			}
			c.TTY = v
			return nil
		}},
		"ssh": {set: func(c *Config, v string) error {
			on, err := parseBool(v)
			c.SSH = SSHOff
			if on {
				c.SSH = SSHOn
			}
			return err
		}},
		"ssh_port": {set: func(c *Config, v string) error {
			p, err := strconv.Atoi(v)
			if err != nil || p < 1 || p > 65535 {
				return fmt.Errorf("want a port number from 1 to 65535")
			}
			c.SSHPort = p
			return nil
		}},
		"authorized_key": {confOnly: true, set: func(c *Config, v string) error {
			_, _, opts, rest, err := ssh.ParseAuthorizedKey([]byte(v))
			switch {
			case err != nil:
				return fmt.Errorf("want a public key line as in authorized_keys (ssh-ed25519 AAAA... comment): %w", err)
			case len(opts) > 0:
				return fmt.Errorf("options such as %q are not supported", opts[0])
			case len(bytes.TrimSpace(rest)) > 0:
				return fmt.Errorf("one key per authorized_key= line")
			}
			c.AuthorizedKeys = append(c.AuthorizedKeys, v)
			return nil
		}},
		"password": {secret: true, set: func(c *Config, v string) error {
			c.Password = v
			return nil
		}},
		"identity": {secret: true, set: func(c *Config, v string) error {
			if strings.Contains(v, "..") {
				return fmt.Errorf("want a file on the boot partition")
			}
			c.Identity = v
			return nil
		}},
		"age_identity": {secret: true, set: func(c *Config, v string) error {
			if !strings.HasPrefix(v, "AGE-SECRET-KEY-") && strings.Contains(v, "..") {
				return fmt.Errorf("want an AGE-SECRET-KEY-1... line or a file on the boot partition")
			}
			c.AgeIdentity = v
			return nil
		}},
		"known_host": {secret: true, set: func(c *Config, v string) error {
			fp := source.NormalizeFingerprint(v)
			if !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
				return fmt.Errorf("want SHA256:... as ssh-keygen -l prints it")
			}
			c.KnownHost = fp
			return nil
		}},
	}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on", "":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("want 1 or 0")
}

// ErrSecretOnCmdline is returned for a secret key on the kernel command
// line. The value is not part of the error.
var ErrSecretOnCmdline = errors.New("secrets are read from recovery.conf only, not from the kernel command line")

// ErrConfOnly is returned for a key that is not a secret but is still
// read from recovery.conf only (authorized_key: who may log in is kept in
// one file, not spread over the command line that anyone at the boot
// prompt can edit).
var ErrConfOnly = errors.New("read from recovery.conf only, not from the kernel command line")

// Split splits a kernel command line into parameters the way the kernel
// does (lib/cmdline.c next_arg): blanks separate, double quotes group and
// are removed.
func Split(cmdline string) []string {
	var out []string
	var b strings.Builder
	inQuote, any := false, false
	for _, r := range cmdline {
		switch {
		case r == '"':
			inQuote = !inQuote
			any = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if any {
				out = append(out, b.String())
				b.Reset()
				any = false
			}
		default:
			b.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, b.String())
	}
	return out
}

// ParseCmdline applies the recovery.* parameters of a kernel command line
// to c. Other parameters are ignored. All errors are reported, joined.
func ParseCmdline(c *Config, cmdline string) error {
	var errs []error
	ks := keys()
	for _, p := range Split(cmdline) {
		name, val, _ := strings.Cut(p, "=")
		k, ok := strings.CutPrefix(name, Prefix)
		if !ok {
			continue
		}
		errs = append(errs, apply(c, ks, k, val, "kernel command line", true))
	}
	return errors.Join(errs...)
}

// ParseConf applies recovery.conf to c: KEY=VALUE lines, the recovery.
// prefix optional, blank lines and lines starting with # ignored, a value
// may be in double quotes. All errors are reported with line numbers.
func ParseConf(c *Config, r io.Reader) error {
	var errs []error
	ks := keys()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%s line %d: want KEY=VALUE", ConfFile, n))
			continue
		}
		name = strings.TrimPrefix(strings.TrimSpace(name), Prefix)
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		errs = append(errs, apply(c, ks, name, val, fmt.Sprintf("%s line %d", ConfFile, n), false))
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read %s: %w", ConfFile, err))
	}
	return errors.Join(errs...)
}

func apply(c *Config, ks map[string]key, name, val, where string, cmdline bool) error {
	k, ok := ks[name]
	if !ok {
		return fmt.Errorf("%s: unknown key %q", where, name)
	}
	if k.secret && cmdline {
		return fmt.Errorf("%s: %s%s: %w", where, Prefix, name, ErrSecretOnCmdline)
	}
	if k.confOnly && cmdline {
		return fmt.Errorf("%s: %s%s: %w", where, Prefix, name, ErrConfOnly)
	}
	if err := k.set(c, val); err != nil {
		if k.secret {
			return fmt.Errorf("%s: bad %s (value not shown): %w", where, name, err)
		}
		return fmt.Errorf("%s: %s=%q: %w", where, name, val, err)
	}
	return nil
}

// Parse reads recovery.conf (conf may be nil when there is none) and then
// the kernel command line, which overrides it, and checks the result.
func Parse(cmdline string, conf io.Reader) (Config, error) {
	var c Config
	var errs []error
	if conf != nil {
		errs = append(errs, ParseConf(&c, conf))
	}
	errs = append(errs, ParseCmdline(&c, cmdline), c.Validate())
	return c, errors.Join(errs...)
}

// Unattended reports whether the settings ask for unattended mode: a
// source and a target. Without Yes it plans and reports, but writes
// nothing.
func (c Config) Unattended() bool { return c.Source != "" && c.Target != "" }

// SetOrLatest is Set with its default.
func (c Config) SetOrLatest() string {
	if c.Set == "" {
		return "latest"
	}
	return c.Set
}

// AfterOrDefault is After with its default, power off.
func (c Config) AfterOrDefault() After {
	if c.After == "" {
		return AfterPowerOff
	}
	return c.After
}

// SSHEnabled reports whether the recovery runs its SSH server: with
// ssh=1, or with an authorized_key unless ssh=0.
func (c Config) SSHEnabled() bool {
	return c.SSH == SSHOn || (c.SSH == SSHAuto && len(c.AuthorizedKeys) > 0)
}

// SSHOneTimePassword reports whether the SSH server lets a one-time
// password in: when it runs and no key is authorised.
func (c Config) SSHOneTimePassword() bool {
	return c.SSHEnabled() && len(c.AuthorizedKeys) == 0
}

// SSHPortOrDefault is SSHPort with its default, 22.
func (c Config) SSHPortOrDefault() int {
	if c.SSHPort == 0 {
		return 22
	}
	return c.SSHPort
}

// Validate checks settings that depend on each other.
func (c Config) Validate() error {
	var errs []error
	if (c.Source != "") != (c.Target != "") && c.Yes {
		errs = append(errs, errors.New("recovery.yes=1 needs both recovery.source and recovery.target"))
	}
	if c.Net == "static" && !c.IP.IsValid() {
		errs = append(errs, errors.New("recovery.net=static needs recovery.ip"))
	}
	if c.Source != "" {
		sp, err := source.ParseURL(c.Source)
		if err == nil && sp.Kind == source.KindSFTP && c.Unattended() && c.KnownHost == "" {
			errs = append(errs, errors.New("unattended sftp needs known_host= in recovery.conf: an unpinned host key is never accepted"))
		}
		if err == nil && sp.Kind == source.KindS3 && c.Unattended() && (sp.User == "" || c.Password == "") {
			errs = append(errs, errors.New("unattended s3 needs the access key in the URL (s3://ACCESSKEY@bucket/prefix) and the secret key as password= in recovery.conf"))
		}
	}
	return errors.Join(errs...)
}

// Spec turns the settings into a source.Spec with the secrets filled in.
// identity is the content of the Identity file, read by the caller.
func (c Config) Spec(identity []byte) (source.Spec, error) {
	sp, err := source.ParseURL(c.Source)
	if err != nil {
		return source.Spec{}, err
	}
	sp.Password, sp.Identity, sp.KnownHost = c.Password, identity, c.KnownHost
	return sp, nil
}
