// Package bootcmdline reads the settings of the recovery from the kernel
// command line (recovery.KEY=VALUE) and from recovery.conf on the
// recovery's boot partition (KEY=VALUE, one per line). Together they drive
// unattended mode:
//
//	recovery.source=sftp://backup@nas:22/srv/backups
//	recovery.host=pi          only sets of this host
//	recovery.set=latest       or a set folder name
//	recovery.target=/dev/mmcblk0
//	recovery.yes=1            without it unattended mode only plans
//	recovery.after=poweroff   or reboot
//
// Secrets (password=, identity=, known_host=) are read from recovery.conf
// only, never from the command line, which any process can read from
// /proc/cmdline and which the firmware may print. recovery.conf gives the
// defaults and the command line overrides them.
//
// The package does no I/O; the recovery main reads /proc/cmdline and the
// file and passes them in.
package bootcmdline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"regexp"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
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

	// Secrets, recovery.conf only.
	Password  string // smb/sftp password, or the identity's passphrase
	Identity  string // path of a private key file on the boot partition
	KnownHost string // the sftp server's pinned host key, SHA256:...
}

// key describes one setting.
type key struct {
	secret bool
	set    func(c *Config, v string) error
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
		"tty": {set: func(c *Config, v string) error {
			v = strings.TrimPrefix(v, "/dev/")
			if v == "" || strings.ContainsAny(v, "/ ") {
				return fmt.Errorf("want a tty name such as ttyS0")
			}
			c.TTY = v
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
