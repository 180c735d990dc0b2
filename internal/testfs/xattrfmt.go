package testfs

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// fmtXattr renders an xattr value for a Diff message: ACLs and file
// capabilities decoded (as getfacl and getcap would show them) plus their
// raw bytes, printable text quoted, anything else in hex.
func fmtXattr(name string, v []byte) string {
	switch name {
	case "system.posix_acl_access", "system.posix_acl_default":
		if s, ok := aclText(v); ok {
			return fmt.Sprintf("%s (%s)", s, hexShort(v))
		}
	case "security.capability":
		if s, ok := capText(v); ok {
			return fmt.Sprintf("%s (%s)", s, hexShort(v))
		}
	}
	if utf8.Valid(v) && len(v) <= 80 && !strings.ContainsFunc(string(v), func(r rune) bool { return r < ' ' }) {
		return fmt.Sprintf("%q", v)
	}
	return hexShort(v)
}

func hexShort(v []byte) string {
	const max = 32
	if len(v) <= max {
		return "0x" + hex.EncodeToString(v)
	}
	return fmt.Sprintf("0x%s... (%d bytes)", hex.EncodeToString(v[:max]), len(v))
}

// aclText decodes a posix_acl xattr into getfacl's short text form, e.g.
// "user::rw-,user:4242:r--,group::r--,mask::r--,other::---".
func aclText(v []byte) (string, bool) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != aclXattrVersion {
		return "", false
	}
	var parts []string
	for e := v[4:]; len(e) > 0; e = e[8:] {
		tag := binary.LittleEndian.Uint16(e)
		perm := binary.LittleEndian.Uint16(e[2:])
		id := binary.LittleEndian.Uint32(e[4:])
		rwx := []byte("---")
		for i, c := range "rwx" {
			if perm&(4>>i) != 0 {
				rwx[i] = byte(c)
			}
		}
		var q string
		switch tag {
		case aclUserObj:
			q = "user:"
		case aclUser:
			q = fmt.Sprintf("user:%d", id)
		case aclGroupObj:
			q = "group:"
		case aclGroup:
			q = fmt.Sprintf("group:%d", id)
		case aclMask:
			q = "mask:"
		case aclOther:
			q = "other:"
		default:
			return "", false
		}
		parts = append(parts, q+":"+string(rwx))
	}
	return strings.Join(parts, ","), true
}

// capText decodes a vfs_cap_data value (revision 2 or 3) into its
// permitted and inheritable masks and effective flag; revision 3 adds the
// root uid of the user namespace it belongs to.
func capText(v []byte) (string, bool) {
	if len(v) < 20 {
		return "", false
	}
	magic := binary.LittleEndian.Uint32(v)
	rev := magic & 0xff000000
	if !(rev == 0x02000000 && len(v) == 20) && !(rev == 0x03000000 && len(v) == 24) {
		return "", false
	}
	perm := uint64(binary.LittleEndian.Uint32(v[4:])) | uint64(binary.LittleEndian.Uint32(v[12:]))<<32
	inh := uint64(binary.LittleEndian.Uint32(v[8:])) | uint64(binary.LittleEndian.Uint32(v[16:]))<<32
	s := fmt.Sprintf("caps v%d permitted=%#x inheritable=%#x effective=%t", rev>>24, perm, inh, magic&1 != 0)
	if rev == 0x03000000 {
		s += fmt.Sprintf(" rootid=%d", binary.LittleEndian.Uint32(v[20:]))
	}
	return s, true
}
