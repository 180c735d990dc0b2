// Package readback proves, while a set is being written, that what
// reached the disk is what backupctl hashed: the commit-time verify then
// need not read those files a second time (issue 17).
package readback

// Proof is what a file's writer proved about it before the set was
// committed: the file, read back from the disk (not the page cache),
// has Size bytes with SHA-256 SHA256, and its content check (the one
// verify runs for its kind: partition table, tar structure,
// decompression) passed on those bytes. The writer records a Proof only
// when every check passed; a failed check fails the write instead.
type Proof struct {
	Size   int64
	SHA256 string
	// Read is how many bytes were read back from the disk for it (the
	// data ranges of a sparse image, all of a stream).
	Read int64
	// How says how it was proven, for the verify report.
	How string
}
