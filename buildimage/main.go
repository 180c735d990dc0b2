// Command buildimage writes the pibackup recovery card image for one board:
// an MBR disk image with a FAT32 boot partition (Pi firmware, kernel, DTBs,
// overlays, config.txt, cmdline.txt, the initramfs with the recovery program,
// recovery.conf) and optionally an ext4 PIBACKUPS partition.
//
// Examples:
//
//	go run ./buildimage -board pi3 -o out/recovery-pi3.img
//	go run ./buildimage -board rpi-arm64 -o out/recovery-rpi-arm64.img -compress xz
//	go run ./buildimage -board pi4 -o out/pi4.img -data-size 1G
//
// Exit status: 0 on success, 1 on any error, 2 on bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildimage:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("buildimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "buildimage: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	spec, err := o.spec(ctx, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "buildimage:", err)
		return errUsage
	}
	return build(ctx, spec, stdout)
}
