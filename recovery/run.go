package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/pibackup/pibackup/internal/bootcmdline"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/netup"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/respawn"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// run does the recovery's work and says what to do at the end. restart
// says whether the supervisor started it again after a crash, and why.
func run(ctx context.Context, sys *system, restart respawn.Run) bootcmdline.After {
	ring := tui.NewRing(4000)
	log := slog.New(slog.NewMultiHandler(
		ring.Handler(slog.LevelDebug),
		tui.NewLineHandler(slog.LevelWarn, func(b []byte) { sys.kmsgWrite(append([]byte("recovery: "), b...)) }),
	))
	// Also routes the standard log package (u-root's dhclient logs with
	// it) into the ring: nothing may write onto the console the UI owns.
	slog.SetDefault(log)
	log.Info("recovery starting", "version", version, "pid", os.Getpid(), "restarts", restart.N)
	var restarted error
	if l := restart.Last; l != nil {
		restarted = fmt.Errorf("the recovery restarted after it ended (%s); crash report: %s", l.What(), l.Report)
		log.Warn("restarted", "n", restart.N, "reason", l.Reason, "message", l.Message, "report", l.Report)
	}

	cmdline := sys.cmdline()
	crash := testCrash(cmdline, restart.N, log)
	disks := source.NewSysfs()
	boot := findBoot(sys, disks, log)
	var conf io.Reader
	if boot.conf != nil {
		conf = strings.NewReader(string(boot.conf))
	}
	cfg, cfgErr := bootcmdline.Parse(cmdline, conf)
	if cfgErr != nil {
		log.Warn("settings", "err", cfgErr)
	}
	var identity []byte
	if cfg.Identity != "" && boot.dir != "" {
		var err error
		identity, err = os.ReadFile(filepath.Join(boot.dir, filepath.FromSlash(cfg.Identity)))
		if err != nil {
			log.Warn("identity", "file", cfg.Identity, "err", err)
		}
	}
	keys := ageKeys(cfg.AgeIdentity, boot.dir, log)

	var netStatus atomic.Pointer[string]
	none := "network: starting"
	netStatus.Store(&none)
	netDone := make(chan error, 1)
	go func() {
		st, err := bringUpNetwork(ctx, cfg, log)
		s := st.String()
		netStatus.Store(&s)
		netDone <- err
		close(netDone)
	}()

	opener := source.NewOpener(log)
	opener.MountDir = filepath.Join(sys.RunDir, "mnt")
	opener.Disks = disks

	unattendedAsked := cfg.Unattended() || (cfgErr != nil && strings.Contains(cmdline, bootcmdline.Prefix+"target="))
	if unattendedAsked && restarted != nil {
		// The unattended run crashed: do not overwrite the target again
		// and again in a crash loop; say so and let a person look.
		sys.announce(result{Target: cfg.Target, Error: "not repeated: " + restarted.Error()}.line())
	} else if unattendedAsked {
		res := result{Target: cfg.Target, Error: fmt.Sprint(cfgErr)}
		if cfgErr == nil {
			// The plan on the console stays English, like the rest of the
			// unattended run's lines, which scripts and logs read.
			res = unattended(ctx, cfg, identity, unattendedDeps{
				Opener: opener, Disks: disks, Engine: engine{log: log, board: restore.HostBoard(), keys: keys}, BootDisk: boot.disk, Log: log,
				Out: consoleWriter{sys},
				WaitNet: func(ctx context.Context) error {
					select {
					case err := <-netDone:
						return err
					case <-ctx.Done():
						return ctx.Err()
					}
				},
			})
		}
		sys.announce(res.line())
		return cfg.AfterOrDefault()
	}

	after := bootcmdline.AfterPowerOff
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	known := map[string]string{}
	if sp, err := source.ParseURL(cfg.Source); err == nil && cfg.KnownHost != "" {
		known[sp.Addr()] = cfg.KnownHost
	}
	// recovery.lang, else LANG=de on the kernel command line (the kernel
	// hands words it does not know to init's environment), else English:
	// the screens, the SSH UI and the plans they show.
	lang, _ := i18n.Pick(string(cfg.Lang), os.Getenv)
	m := model.New(model.Deps{
		Opener: confSecrets{o: opener, cfg: cfg, identity: identity}, Disks: disks, Engine: engine{log: log, board: restore.HostBoard(), lang: lang, keys: keys}, BootDisk: boot.disk, KnownHosts: known, Log: log,
		// "Get files back": the console's and the SSH UI's (they share m).
		Browser: newBrowser(sys.RunDir, log), MountDest: mountDest(sys.RunDir, log),
		Power: func(reboot bool) error {
			if reboot {
				after = bootcmdline.AfterReboot
			}
			cancel()
			return nil
		},
	})
	if cfgErr != nil {
		m.SetError(errors.Join(restarted, fmt.Errorf("%w: %w", i18n.Err(i18n.UISettingsIgnored), cfgErr)))
	} else if restarted != nil {
		m.SetError(restarted)
	}
	// Headless Pis: the same UI over SSH when recovery.conf asks for it.
	sshSrv := startSSH(ctx, sys, cfg, sshUI(m, disks, ring, func() string { return *netStatus.Load() }, lang), log)
	screen, ttyPath, err := openScreen(uiTTY(cfg.TTY, cmdline, sys.Dev), sys.Dev)
	if err != nil {
		log.Error("no console for the UI", "err", err)
		sys.announce("RECOVERY-ERROR no console: " + err.Error())
		return bootcmdline.AfterPowerOff
	}
	ui := tui.New(tui.Deps{
		Screen: screen, Model: m, Disks: disks, Log: ring, Version: version,
		Network: func() string { return *netStatus.Load() + sshSrv.header() },
		Shell:   shell(ttyPath),
		OnReady: func() { sys.announce(readyLine(version, sys.uptime())) },
		TestKey: crash,
		Lang:    lang,
	})
	if err := ui.Run(ctx); err != nil {
		log.Error("ui", "err", err)
	}
	return after
}

// readyLine says the UI is up. uptime (the guest's own clock, from
// /proc/uptime) lets make bench time the boot without counting the time a
// loaded host kept an emulated guest waiting before it started.
func readyLine(version, uptime string) string {
	if uptime == "" {
		return "RECOVERY-READY " + version
	}
	return "RECOVERY-READY " + version + " uptime=" + uptime
}

// bringUpNetwork runs netup as the settings say.
func bringUpNetwork(ctx context.Context, cfg bootcmdline.Config, log *slog.Logger) (netup.Status, error) {
	if cfg.Net == "off" {
		return netup.Status{}, errors.New("network off (recovery.net=off)")
	}
	nc := netup.Config{Static: cfg.IP, Gateway: cfg.Gateway, DNS: cfg.DNS}
	if cfg.Iface != "" {
		nc.Ifaces = regexp.MustCompile(cfg.Iface) // checked by bootcmdline
	}
	st, err := netup.Up(ctx, nc, log)
	if err != nil {
		log.Warn("network", "err", err, "status", st.String())
	} else {
		log.Info("network up", "status", st.String())
	}
	return st, err
}

// bootPart is what findBoot learned.
type bootPart struct {
	disk string // /dev/mmcblk0, "" unknown
	dir  string // where the boot partition is mounted read-only
	conf []byte // recovery.conf, nil when there is none
}

// findBoot mounts each FAT partition read-only until it finds the one the
// recovery booted from (see pickBoot), and keeps that one mounted.
func findBoot(sys *system, disks source.DiskLister, log *slog.Logger) bootPart {
	// A USB or MMC disk may show up a moment after the kernel starts us.
	var cands []candidate
	for try := 0; try < 10; try++ {
		ds, err := disks.Disks()
		if err != nil {
			log.Warn("list disks", "err", err)
		}
		cands = bootCandidates(ds)
		if len(cands) > 0 || !sys.disksMayComeLate() {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	dir := filepath.Join(sys.RunDir, "boot")
	for i := range cands {
		c := &cands[i]
		c.files = map[string]bool{}
		if err := mountRO(c.part.Path, dir, "vfat"); err != nil {
			log.Warn("mount boot candidate", "part", c.part.Path, "err", err)
			continue
		}
		for _, f := range append([]string{bootcmdline.ConfFile}, bootFiles...) {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				c.files[f] = true
			}
		}
		_ = unmount(dir)
	}
	c, ok := pickBoot(cands)
	if !ok {
		log.Warn("boot partition not found: no disk is protected as the recovery's own")
		return bootPart{}
	}
	bp := bootPart{disk: c.disk.Path}
	if err := mountRO(c.part.Path, dir, "vfat"); err != nil {
		log.Warn("mount boot partition", "part", c.part.Path, "err", err)
		return bp
	}
	bp.dir = dir
	if b, err := os.ReadFile(filepath.Join(dir, bootcmdline.ConfFile)); err == nil {
		bp.conf = b
	}
	log.Info("boot partition", "part", c.part.Path, "disk", c.disk.Path, "recovery.conf", bp.conf != nil)
	return bp
}

// openScreen opens the console tty for tcell, falling back to other
// consoles.
func openScreen(name, dev string) (tcell.Screen, string, error) {
	if os.Getenv("TERM") == "" || os.Getenv("TERM") == "dumb" {
		os.Setenv("TERM", "linux") // the kernel console and our serial lines speak it
	}
	var errs []error
	for _, n := range []string{name, "console", "tty1"} {
		p := filepath.Join(dev, n)
		fixWinsize(p)
		tty, err := newConsoleTty(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s, err := tcell.NewTerminfoScreenFromTty(tty)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		return s, p, nil
	}
	return nil, "", errors.Join(errs...)
}

// shell runs an interactive shell on the UI's tty.
func shell(ttyPath string) func() error {
	return func() error {
		sh := ""
		for _, p := range []string{"/bin/sh", "/bbin/gosh", "/bin/gosh", "/bin/bash"} {
			if _, err := os.Stat(p); err == nil {
				sh = p
				break
			}
		}
		if sh == "" {
			return errors.New("no shell in this image")
		}
		f, err := os.OpenFile(ttyPath, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintln(f, "\r\nRecovery shell. Type exit to return to the menu.\r")
		cmd := exec.Command(sh)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		return cmd.Run()
	}
}

// consoleWriter writes unattended progress to every console.
type consoleWriter struct{ sys *system }

func (w consoleWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.sys.announce(line)
	}
	return len(p), nil
}

// confSecrets gives the interactive UI the secrets of recovery.conf, but
// only for the server recovery.source names: a password is never sent to
// another host.
type confSecrets struct {
	o        model.Opener
	cfg      bootcmdline.Config
	identity []byte
}

func (c confSecrets) Open(ctx context.Context, sp source.Spec) (source.Source, error) {
	if want, err := source.ParseURL(c.cfg.Source); err == nil && want.Kind == sp.Kind && want.Host == sp.Host {
		if sp.Password == "" {
			sp.Password = c.cfg.Password
		}
		if len(sp.Identity) == 0 {
			sp.Identity = c.identity
		}
	}
	return c.o.Open(ctx, sp)
}

// ageKeys reads recovery.conf's age_identity=: the AGE-SECRET-KEY-1...
// line itself, or a file on the boot partition (bootDir). A key that
// cannot be read is logged and left out: an encrypted set then fails
// with the restore's own "give the identity" error.
func ageKeys(v, bootDir string, log *slog.Logger) *payload.Keys {
	if v == "" {
		return nil
	}
	if strings.HasPrefix(v, "AGE-SECRET-KEY-") {
		k, err := payload.KeysFrom([]byte(v), "age_identity in "+bootcmdline.ConfFile)
		if err != nil {
			log.Warn("age_identity", "err", err) // the error never holds the key
			return nil
		}
		return k
	}
	if bootDir == "" {
		log.Warn("age_identity", "file", v, "err", "no boot partition to read it from")
		return nil
	}
	b, err := os.ReadFile(filepath.Join(bootDir, filepath.FromSlash(v)))
	if err == nil {
		var k *payload.Keys
		if k, err = payload.KeysFrom(b, v); err == nil {
			return k
		}
	}
	log.Warn("age_identity", "file", v, "err", err)
	return nil
}
