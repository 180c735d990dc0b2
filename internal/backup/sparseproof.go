package backup

import (
	"fmt"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/readback"
)

// A raw image written sparse to a local folder (a dd set's image, the
// boot partition image of a tar or rsync set) is proven from the disk by
// its data ranges (readback.Ranges): what was written is recorded as it
// is written, and once the file is complete only those ranges are read
// back (its pages dropped first) and compared, and the filesystem is
// asked where else it holds data, which must be zeros. The holes, most
// of a card that is mostly free, are neither read nor hashed a second
// time; the verify before the commit takes the proof (Staged.Proofs).

// rangesHow is such a proof's How, in the verify report.
const rangesHow = "data ranges read back from the disk, holes checked"

// sparseProof records the writes of one sparse image.
type sparseProof struct {
	ranges  *readback.Ranges
	setName string
	check   func(setName, file string, size int64) (func(head []byte) error, error)
	before  func(path string) error
}

// newSparseProof returns the record for a sparse image, or nil where
// none is proven (no verify before the commit to hand it to).
func (r *runner) newSparseProof() *sparseProof {
	if r.deps.ContentCheck == nil || r.deps.ImageCheck == nil {
		return nil
	}
	return &sparseProof{ranges: readback.NewRanges(), setName: r.name.String(), check: r.deps.ImageCheck, before: r.deps.beforeRangesRead}
}

// wroteAt records that b was written at off of a sparse file.
func (o *outFile) wroteAt(b []byte, off int64) {
	if o.sp != nil {
		o.sp.ranges.Wrote(b, off)
	}
}

// provenRanges proves the complete sparse file o (manifest entry f) from
// the disk and keeps the proof.
func (o *outFile) provenRanges(f backupset.File) error {
	if o.sp == nil {
		return nil
	}
	head, err := o.sp.check(o.sp.setName, f.Path, f.Size)
	if err != nil {
		return err
	}
	path := o.f.Name()
	po := readback.ProveOptions{How: rangesHow, Head: head}
	if o.sp.before != nil {
		po.BeforeRead = func() error { return o.sp.before(path) }
	}
	p, err := o.sp.ranges.Prove(path, f.Size, f.SHA256, po)
	if err != nil {
		return fmt.Errorf("read back from the disk: %w", err)
	}
	o.proof = &p
	return nil
}
