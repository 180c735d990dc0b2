package backuprun

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pibackup/pibackup/internal/services"
)

// Marker records the services a running backup has stopped, as the
// commands that start them, so `backupctl recover-services` can start
// them after backupctl itself was killed (SIGKILL, OOM, power loss of
// the USB disk hanging the process until systemd kills it). A killed
// process can restart nothing; the systemd unit's ExecStopPost can.
type Marker struct {
	PID     int        `json:"pid"`
	Started time.Time  `json:"started"`
	Start   [][]string `json:"start"` // in stop order; started in reverse
}

// MarkerName is the marker's file name in the run folder.
const MarkerName = "services-stopped.json"

// startArgv returns the commands that start s.
func startArgv(s services.Stopper) ([][]string, bool) {
	switch v := s.(type) {
	case services.Unit:
		return [][]string{services.UnitArgv(v.Systemctl, "start", v.Name)}, true
	case services.Container:
		return [][]string{services.ContainerArgv(v.Docker, "start", v.Name)}, true
	case services.Commands:
		return v.StartCmds, true
	}
	return nil, false
}

// WriteMarker writes the marker into dir before any service stops; with
// no services it writes nothing and returns "".
func WriteMarker(dir string, stoppers []services.Stopper) (string, error) {
	if len(stoppers) == 0 {
		return "", nil
	}
	m := Marker{PID: os.Getpid(), Started: time.Now()}
	for _, s := range stoppers {
		argvs, ok := startArgv(s)
		if !ok {
			return "", fmt.Errorf("BUG: no start command known for %s", s)
		}
		m.Start = append(m.Start, argvs...)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("services marker: %w", err)
	}
	p := filepath.Join(dir, MarkerName)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	if err := WriteFileAtomic(p, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("services marker: %w", err)
	}
	return p, nil
}

// WriteFileAtomic writes data to a temporary file next to p and renames
// it over p, so a reader never sees half a file (recover-services reads
// the marker after a crash at any moment).
func WriteFileAtomic(p string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
