package testfs

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// QEMUMajor is the QEMU major version the VM tests are written for:
// bookworm-backports' QEMU 10 has the raspi4b machine that bookworm's 7.2
// lacks, and `make deps` installs it.
const QEMUMajor = 10

var qemuVersionRE = regexp.MustCompile(`QEMU emulator version (\d+)\.(\d+)`)

// parseQEMUVersion reads the first line of `qemu-system-* --version`.
func parseQEMUVersion(out string) (major, minor int, err error) {
	m := qemuVersionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no %q in %q", "QEMU emulator version", out)
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, nil
}

// CheckQEMU returns an error that says what to do unless bin runs and is
// at least QEMU QEMUMajor, so a CI machine that still has 7.2 fails loudly
// instead of testing the wrong emulator (or skipping the raspi4b cases).
func CheckQEMU(bin string) error {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w\n%s", bin, err, out)
	}
	major, minor, err := parseQEMUVersion(string(out))
	if err != nil {
		return fmt.Errorf("%s --version: %w", bin, err)
	}
	if major < QEMUMajor {
		return fmt.Errorf("%s is QEMU %d.%d, the VM tests need QEMU %d or newer (raspi4b machine): "+
			"run `make deps` as root, which installs qemu-system-arm, qemu-system-x86, qemu-system-common, "+
			"qemu-system-data and qemu-utils from bookworm-backports", bin, major, minor, QEMUMajor)
	}
	return nil
}
