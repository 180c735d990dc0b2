//go:build !linux

package treelist

// oNoAtime: other systems have no O_NOATIME; reading there updates atimes.
const oNoAtime = 0
