package main

import (
	"cmp"
	"errors"
	"strings"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/restoretest"
)

// flagHints name the flag that fixes an engine's error. The engines say
// what is wrong and nothing about flags: the recovery UI shows the same
// errors and names its screen or recovery.conf setting instead. The first
// hint whose sentinel the error wraps is added to the error line.
var flagHints = []struct {
	err  error
	hint string
}{
	{payload.ErrNoKey, "give the identity that opens it with --age-identity FILE (an age identity file or SSH private key) or, for a passphrase, --encrypt-passphrase-file FILE"},
	{payload.ErrWrongKey, "give the identity the set was encrypted to (--age-identity) or the passphrase file (--encrypt-passphrase-file)"},
	{compress.ErrEncrypted, "restore it with --age-identity FILE, or verify it"},
	{backup.ErrNoHostName, "give --hostname"},
	{backup.ErrBadHostName, "give --hostname"},
	{backup.ErrBootNotMounted, "mount it, or give --source-disk"},
	{backup.ErrSourceMounted, "unmount it, or back up the running system without --source-disk"},
	{restore.ErrNoSize, "give the size of the image file with --size"},
	{restore.ErrSizeOfDisk, "leave out --size"},
	{restore.ErrPartitionChoice, "leave out --partitions"},
	{restore.ErrRootElsewhere, "give the disk for the root's copy with --root-to (the boot partition goes to --to)"},
	{restore.ErrNoRootDisk, "leave out --root-to"},
	{restore.ErrRootTargetIsTarget, "give --root-to another disk than --to"},
	{restoretest.ErrOverLimit, "raise --max-space"},
	{restoretest.ErrNoSpace, "give another --work-dir"},
}

// optionFlags are the flags of backup.Options fields, for the hint of
// a backup.OptionError.
var optionFlags = map[string]string{
	"Type":               "-t",
	"Partitions":         "-P",
	"BootTar":            "--boot-tar",
	"UsedPartitionsOnly": "--used-partitions-only",
	"FullRead":           "--full-read",
	"Excludes":           "--exclude",
	"Encrypt":            "--encrypt-to/--encrypt-passphrase-file",
}

// flagHint is the hint for err, or "".
func flagHint(err error) string {
	if oe := (*backup.OptionError)(nil); errors.As(err, &oe) {
		var flags []string
		for _, o := range oe.Options {
			flags = append(flags, cmp.Or(optionFlags[o], o))
		}
		return "these options do not go together: " + strings.Join(flags, ", ")
	}
	for _, h := range flagHints {
		if errors.Is(err, h.err) {
			return h.hint
		}
	}
	return ""
}
