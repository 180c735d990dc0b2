package main

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// v1.2.3, v1.2.3-rc1, v1.2.3-4-gabc1234, each maybe with -dirty.
	describeTag = regexp.MustCompile(`^v?([0-9]+(?:\.[0-9]+)*)(?:-([0-9A-Za-z.]+?))??(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
	// abc1234 or abc1234-dirty: git describe --always without any tag.
	describeHash = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)
	// What dpkg accepts as an upstream version without a revision.
	debianUpstream = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// debVersion turns the Makefile's VERSION (git describe --tags --always
// --dirty) into a Debian version that sorts the way releases do:
//
//	v1.2.3              1.2.3
//	v1.2.3-rc1          1.2.3~rc1          (before 1.2.3)
//	v1.2.3-4-gabc1234   1.2.3+4.gabc1234   (after 1.2.3)
//	abc1234-dirty       0.0.0+gabc1234.dirty
//	dev                 0.0.0+dev
//
// A Debian version must start with a digit; "-" would start a Debian
// revision, so it never appears.
func debVersion(v string) (string, error) {
	v = strings.TrimSpace(v)
	// A bare hash can be all digits ("5939886"); a tag has a dot or a "v".
	if m := describeHash.FindStringSubmatch(v); m != nil && len(m[1]) >= 7 && !strings.Contains(v, ".") {
		out := "0.0.0+g" + m[1]
		if m[2] != "" {
			out += ".dirty"
		}
		return out, nil
	}
	if m := describeTag.FindStringSubmatch(v); m != nil {
		out := m[1]
		if m[2] != "" {
			out += "~" + m[2]
		}
		var meta []string
		if m[3] != "" {
			meta = append(meta, m[3], "g"+m[4])
		}
		if m[5] != "" {
			meta = append(meta, "dirty")
		}
		if len(meta) > 0 {
			out += "+" + strings.Join(meta, ".")
		}
		return out, nil
	}
	if v == "" || v == "dev" {
		return "0.0.0+dev", nil
	}
	if s := strings.TrimPrefix(v, "v"); debianUpstream.MatchString(s) {
		return s, nil
	}
	return "", fmt.Errorf("version %q: not a git describe output or a Debian version", v)
}
