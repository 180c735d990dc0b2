package blockdev

// LiveExcludes returns what a copy of the running system leaves out, in
// rsync's exclude syntax: kernel filesystems and scratch space, which the
// copy gets empty (a pattern ending in "/*" keeps the folder itself).
// These are raspiBackup's default excludes (reference §1.4); a backup and
// a live clone start from the same list. A fresh slice each call, so a
// caller may append to it.
func LiveExcludes() []string {
	return []string{
		"/proc/*", "/sys/*", "/dev/*", "/tmp/*", "/run/*", "/media/*",
		"/lost+found/*", "/var/swap", "/swapfile", ".gvfs",
	}
}
