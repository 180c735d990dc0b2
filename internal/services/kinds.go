package services

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Runner runs an argv and returns its combined output. ExecRunner is the
// real one; tests pass fakes.
type Runner interface {
	Run(ctx context.Context, argv []string) ([]byte, error)
}

// ExecRunner runs commands with os/exec. When ctx ends, the command's
// process group gets SIGTERM and, WaitDelay later, SIGKILL, so a wrapper
// script cannot leave its children running.
type ExecRunner struct {
	// WaitDelay between SIGTERM and SIGKILL; 0 means 10s.
	WaitDelay time.Duration
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = r.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 10 * time.Second
	}
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		if msg != "" {
			return out.Bytes(), fmt.Errorf("%s: %w: %s", argv[0], err, msg)
		}
		return out.Bytes(), fmt.Errorf("%s: %w", argv[0], err)
	}
	return out.Bytes(), nil
}

// Unit is a systemd unit stopped and started with systemctl, which waits
// for the stop/start job and reports its result in its exit status.
type Unit struct {
	Name   string // e.g. "nginx.service"; a name without a suffix means .service
	Runner Runner
	// Systemctl is the systemctl binary; "" means "systemctl".
	Systemctl string
}

// UnitArgv returns the argv for `systemctl verb unit`. Pure, for tests.
func UnitArgv(systemctl, verb, unit string) []string {
	if systemctl == "" {
		systemctl = "systemctl"
	}
	// "--" so a unit name can never be read as an option.
	return []string{systemctl, verb, "--", unit}
}

// Stop implements Stopper.
func (u Unit) Stop(ctx context.Context) error {
	_, err := u.Runner.Run(ctx, UnitArgv(u.Systemctl, "stop", u.Name))
	return err
}

// Start implements Stopper.
func (u Unit) Start(ctx context.Context) error {
	_, err := u.Runner.Run(ctx, UnitArgv(u.Systemctl, "start", u.Name))
	return err
}

func (u Unit) String() string { return "unit " + u.Name }

// Container is a docker (or podman) container stopped and started by name.
type Container struct {
	Name   string
	Runner Runner
	// Docker is the CLI; "" means "docker". "podman" works the same.
	Docker string
}

// ContainerArgv returns the argv for `docker verb name`. Pure, for tests.
func ContainerArgv(docker, verb, name string) []string {
	if docker == "" {
		docker = "docker"
	}
	return []string{docker, verb, "--", name}
}

// Stop implements Stopper.
func (c Container) Stop(ctx context.Context) error {
	_, err := c.Runner.Run(ctx, ContainerArgv(c.Docker, "stop", c.Name))
	return err
}

// Start implements Stopper.
func (c Container) Start(ctx context.Context) error {
	_, err := c.Runner.Run(ctx, ContainerArgv(c.Docker, "start", c.Name))
	return err
}

func (c Container) String() string { return "container " + c.Name }

// Commands is a service described by the user's own commands: StopCmds run
// in order to stop it, StartCmds in order to start it (raspiBackup's -o and
// -a, which are two ordered lists rather than pairs). Each is an argv.
type Commands struct {
	Label     string
	StopCmds  [][]string
	StartCmds [][]string
	Runner    Runner
}

// Stop implements Stopper; it stops at the first failing command.
func (c Commands) Stop(ctx context.Context) error {
	for _, argv := range c.StopCmds {
		if _, err := c.Runner.Run(ctx, argv); err != nil {
			return err
		}
	}
	return nil
}

// Start implements Stopper; it runs every command even after a failure,
// so one broken start command does not keep the others' services down.
func (c Commands) Start(ctx context.Context) error {
	var errs []error
	for _, argv := range c.StartCmds {
		if _, err := c.Runner.Run(ctx, argv); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Commands) String() string {
	if c.Label != "" {
		return c.Label
	}
	return "commands"
}

// ErrSpec is wrapped by Parse errors.
var ErrSpec = errors.New("invalid service")

// Parse turns a config entry into a Stopper:
//
//	unit:NAME        systemd unit (NAME without a suffix means NAME.service)
//	NAME.service     the same, for the common case
//	docker:NAME      docker container
//	podman:NAME      podman container
//
// Plain commands are not entries here; they come as stop/start lists (see
// Commands), because raspiBackup configures them that way.
func Parse(spec string, r Runner) (Stopper, error) {
	kind, name, ok := strings.Cut(spec, ":")
	if !ok {
		if strings.HasSuffix(spec, ".service") {
			kind, name = "unit", spec
		} else {
			return nil, fmt.Errorf("%w %q: want unit:NAME, docker:NAME, podman:NAME or NAME.service", ErrSpec, spec)
		}
	}
	if name == "" || strings.HasPrefix(name, "-") || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return nil, fmt.Errorf("%w %q: bad name %q", ErrSpec, spec, name)
	}
	switch kind {
	case "unit", "systemd":
		if !strings.Contains(name, ".") {
			name += ".service"
		}
		return Unit{Name: name, Runner: r}, nil
	case "docker", "podman":
		return Container{Name: name, Docker: kind, Runner: r}, nil
	}
	return nil, fmt.Errorf("%w %q: unknown kind %q (want unit, docker or podman)", ErrSpec, spec, kind)
}
