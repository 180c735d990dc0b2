package backup

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/size"
)

// Plan is what a run will write; --dry-run prints it and stops.
type Plan struct {
	SetName       string
	SetDir        string // final folder of the set
	Source        string // what is read
	Type          backupset.Type
	Compression   backupset.Compression
	PartitionMode bool
	Items         []PlanItem
	Previous      string   // set used for --link-dest and boot-file hardlinks, "" if none
	Excludes      []string // in effect on the root filesystem
	Needed        int64    // estimated bytes the set needs on the target
	Free          int64    // bytes free on the target; -1 on a server, which does not say
	Notes         []string
}

// PlanItem is one file or tree of the set.
type PlanItem struct {
	File     string // name in the set folder ("NAME/" for a tree)
	From     string // what it is made of
	Estimate int64  // bytes, 0 for small metadata

	meta bool // a layout file, never encrypted
	run  func(ctx context.Context) error
}

// Print writes the plan for humans.
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "set:      %s\n", p.SetName)
	fmt.Fprintf(w, "folder:   %s\n", p.SetDir)
	fmt.Fprintf(w, "source:   %s\n", p.Source)
	mode := "normal"
	if p.PartitionMode {
		mode = "partition-oriented"
	}
	fmt.Fprintf(w, "type:     %s (%s mode, compression %s)\n", p.Type, mode, p.Compression)
	if p.Previous != "" {
		fmt.Fprintf(w, "previous: %s\n", p.Previous)
	}
	if len(p.Excludes) > 0 {
		fmt.Fprintf(w, "excludes: %s\n", strings.Join(p.Excludes, " "))
	}
	fmt.Fprintln(w, "files:")
	for _, it := range p.Items {
		est := ""
		if it.Estimate > 0 {
			est = " (about " + size.Format(it.Estimate) + ")"
		}
		fmt.Fprintf(w, "  %-48s from %s%s\n", it.File, it.From, est)
	}
	if p.Free < 0 {
		fmt.Fprintf(w, "space:    needs about %s, free space of the server not known\n", size.Format(p.Needed))
	} else {
		fmt.Fprintf(w, "space:    needs about %s, %s free\n", size.Format(p.Needed), size.Format(p.Free))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note:     %s\n", n)
	}
}
