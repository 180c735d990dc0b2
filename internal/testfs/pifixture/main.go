// Command pifixture builds the sample Pi disk image for `make demo` and
// `make bench`, and judges a restored copy against it.
//
//	pifixture build DIR [SIZE_MIB]     writes DIR/pi.img, prints its layout
//	pifixture compare SOURCE.img COPY.img
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/pibackup/pibackup/internal/testfs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pifixture:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: pifixture build DIR [SIZE_MIB] | compare SOURCE.img COPY.img")
	}
	switch args[0] {
	case "build":
		opts := testfs.DiskOptions{}
		if len(args) > 2 {
			mib, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil {
				return fmt.Errorf("size %q: %w", args[2], err)
			}
			opts.Size = mib << 20
		}
		d, err := testfs.BuildPiDisk(args[1], opts)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case "compare":
		if len(args) != 3 {
			return fmt.Errorf("usage: pifixture compare SOURCE.img COPY.img")
		}
		r, err := testfs.CompareDisks(args[1], args[2])
		if err != nil {
			return err
		}
		fmt.Println(r)
		if !r.OK() {
			return fmt.Errorf("%s differs from %s", args[2], args[1])
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}
