package source

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Kind is the kind of a source.
type Kind string

// The kinds of source.
const (
	KindDir  Kind = "dir"  // a folder already present on the recovery system
	KindUSB  Kind = "usb"  // a partition of a local disk, found by label or device
	KindNFS  Kind = "nfs"  // kernel NFS client (v3 or v4)
	KindSMB  Kind = "smb"  // SMB 2/3 in user space (the kernels have no CIFS)
	KindSFTP Kind = "sftp" // SFTP over SSH
	KindS3   Kind = "s3"   // an S3 bucket (AWS, MinIO, Garage, ...)
	// KindHTTPS and KindHTTP are one set folder on a web server (see Web).
	KindHTTPS Kind = "https"
	KindHTTP  Kind = "http"
)

// Kinds lists every kind in the order the UI offers them.
var Kinds = []Kind{KindUSB, KindNFS, KindSMB, KindSFTP, KindS3, KindHTTPS, KindHTTP, KindDir}

// Network reports whether the kind needs the network up.
func (k Kind) Network() bool {
	return k == KindNFS || k == KindSMB || k == KindSFTP || k == KindS3 || k == KindHTTPS || k == KindHTTP
}

// Spec says which source to open and how. The secret fields are never
// printed by String and never come from the kernel command line.
type Spec struct {
	Kind Kind
	Host string // nfs, smb, sftp: name or IP address; s3: the bucket
	Port int    // 0: the protocol's default
	User string // smb, sftp; s3: the access key id
	// Path is the backup folder: for dir an absolute local path; for usb
	// relative to the partition's root; for sftp as the server resolves
	// it; for smb relative to the share; for nfs relative to Export;
	// for s3 the key prefix in the bucket ("." for none).
	Path   string
	Label  string // usb: filesystem label of the partition
	Device string // usb: partition device (/dev/sda1), instead of Label
	Share  string // smb: share name
	Export string // nfs: the export to mount ("/srv/backup")

	NFSVersion string // nfs: "3", "4", "4.1", "4.2"; "" tries 4.2 then 3
	MountPort  int    // nfs v3: mountd port; 0 asks the portmapper

	Endpoint string // s3: the server, http(s)://host[:port]; "" is AWS
	Region   string // s3: "" is us-east-1

	Password  string // smb, sftp (also the passphrase of Identity); s3: the secret key
	Identity  []byte // sftp: a private key in OpenSSH or PEM format
	KnownHost string // sftp: the pinned host key, "SHA256:..."
}

// Default ports.
const (
	DefaultSSHPort = 22
	DefaultSMBPort = 445
	DefaultNFSPort = 2049
)

// Addr is host:port with the protocol's default port filled in.
func (s Spec) Addr() string {
	p := s.Port
	if p == 0 {
		switch s.Kind {
		case KindSFTP:
			p = DefaultSSHPort
		case KindSMB:
			p = DefaultSMBPort
		case KindNFS:
			p = DefaultNFSPort
		case KindHTTPS:
			p = 443
		case KindHTTP:
			p = 80
		}
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(p))
}

// String is the source as a URL without secrets, for the UI and logs.
func (s Spec) String() string {
	switch s.Kind {
	case KindDir:
		return "dir:" + s.Path
	case KindUSB:
		id := s.Label
		if s.Device != "" {
			id = s.Device
		}
		return "usb:" + id + "/" + strings.TrimPrefix(s.Path, "/")
	}
	u := url.URL{Scheme: string(s.Kind), Host: s.Host}
	if strings.Contains(s.Host, ":") {
		u.Host = "[" + s.Host + "]" // IPv6 literal
	}
	if s.Port != 0 {
		u.Host = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	}
	if s.User != "" {
		u.User = url.User(s.User)
	}
	switch s.Kind {
	case KindS3:
		u.Host = s.Host
		if s.Path != "." && s.Path != "" {
			u.Path = "/" + s.Path
		}
		q := url.Values{}
		if s.Endpoint != "" {
			q.Set("endpoint", s.Endpoint)
		}
		if s.Region != "" {
			q.Set("region", s.Region)
		}
		u.RawQuery = q.Encode()
	case KindSMB:
		u.Path = path.Join("/", s.Share, s.Path)
	case KindNFS:
		u.Path = path.Join("/", s.Export, s.Path)
		q := url.Values{}
		if s.NFSVersion != "" {
			q.Set("vers", s.NFSVersion)
		}
		if s.MountPort != 0 {
			q.Set("mountport", strconv.Itoa(s.MountPort))
		}
		if s.Path != "" && s.Path != "." {
			q.Set("export", s.Export)
		}
		u.RawQuery = q.Encode()
	default:
		if s.Path != "." {
			u.Path = s.Path
		}
	}
	return u.String()
}

// ParseURL parses a source location as the kernel command line, the
// recovery.conf file and the UI's address field take it:
//
//	sftp://user@host:port/path      (path as the server resolves it)
//	nfs://host[:port]/export[?vers=3&port=2049&mountport=2049&export=/srv/x]
//	smb://[user@]host[:port]/share/path
//	s3://[accesskey@]bucket[/prefix][?endpoint=https://host:port&region=r]
//	https://[user@]host[:port]/path/HOST/SET   (http:// too; a set folder)
//	usb:LABEL/path   usb:/dev/sda1/path
//	dir:/local/path
//
// An nfs URL mounts its whole path unless export= names the export, in
// which case the rest of the path is the folder inside it. An s3 URL
// names the bucket where others name the host; its secret key is the
// password. A password in the URL is refused: secrets belong in
// recovery.conf.
func ParseURL(s string) (Spec, error) {
	switch {
	case strings.HasPrefix(s, "usb:"):
		return parseUSB(strings.TrimPrefix(s, "usb:"))
	case strings.HasPrefix(s, "dir:"):
		p := strings.TrimPrefix(s, "dir:")
		if !path.IsAbs(p) {
			return Spec{}, errors.New("source dir: needs an absolute path (dir:/path)")
		}
		return Spec{Kind: KindDir, Path: path.Clean(p)}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's errors quote the input, which may hold a password:
		// say what is wrong without it.
		return Spec{}, errors.New("source: not a valid URL (want sftp://user@host/path, nfs://host/export, smb://host/share/path, usb:LABEL/path or dir:/path)")
	}
	safe := redacted(u) // for errors: never the input itself
	if _, has := u.User.Password(); has {
		return Spec{}, fmt.Errorf("source %s://%s: a password in the URL is not allowed; put password= in recovery.conf", u.Scheme, u.Hostname())
	}
	if u.Host == "" || u.Hostname() == "" {
		return Spec{}, fmt.Errorf("source %s: missing host (want %s://host/...)", safe, u.Scheme)
	}
	sp := Spec{Host: u.Hostname(), User: u.User.Username()}
	if strings.Contains(sp.Host, ":") {
		if a, err := netip.ParseAddr(sp.Host); err != nil || !a.Is6() || a.Zone() != "" {
			return Spec{}, fmt.Errorf("source %s://: bad host %q", u.Scheme, sp.Host)
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return Spec{}, fmt.Errorf("source %s: bad port %q", safe, p)
		}
		sp.Port = n
	}
	switch Kind(u.Scheme) {
	case KindSFTP:
		sp.Kind = KindSFTP
		sp.Path = u.Path
		if sp.Path == "" {
			sp.Path = "."
		}
		if sp.User == "" {
			return Spec{}, fmt.Errorf("source %s: sftp needs a user (sftp://user@host/path)", safe)
		}
		if len(u.Query()) > 0 {
			return Spec{}, fmt.Errorf("source %s: sftp takes no options", safe)
		}
	case KindSMB:
		sp.Kind = KindSMB
		parts := strings.SplitN(strings.Trim(u.Path, "/"), "/", 2)
		if parts[0] == "" || parts[0] == "." || parts[0] == ".." {
			return Spec{}, fmt.Errorf("source %s: missing share (want smb://host/share/path)", safe)
		}
		sp.Share = parts[0]
		sp.Path = "."
		if len(parts) == 2 {
			sp.Path = path.Clean(strings.TrimLeft(parts[1], "/"))
		}
		if leaves(sp.Path) {
			return Spec{}, fmt.Errorf("source %s: path leaves the share", safe)
		}
		if len(u.Query()) > 0 {
			return Spec{}, fmt.Errorf("source %s: smb takes no options", safe)
		}
	case KindS3:
		sp.Kind = KindS3
		if err := parseS3(&sp, u); err != nil {
			return Spec{}, fmt.Errorf("source %s: %w", safe, err)
		}
	case KindHTTPS, KindHTTP:
		sp.Kind = Kind(u.Scheme)
		sp.Path = path.Clean("/" + u.Path)
		if len(u.Query()) > 0 {
			return Spec{}, fmt.Errorf("source %s: %s takes no options", safe, u.Scheme)
		}
	case KindNFS:
		sp.Kind = KindNFS
		if sp.User != "" {
			return Spec{}, fmt.Errorf("source %s: nfs takes no user", safe)
		}
		if err := parseNFS(&sp, u); err != nil {
			return Spec{}, fmt.Errorf("source %s: %w", safe, err)
		}
	default:
		return Spec{}, fmt.Errorf("source %s: unknown scheme %q (want sftp, nfs, smb, s3, https, http, usb or dir)", safe, u.Scheme)
	}
	return sp, nil
}

func parseS3(sp *Spec, u *url.URL) error {
	if sp.Port != 0 {
		return errors.New("an s3 URL names a bucket, not a server: give the server as ?endpoint=http://host:port")
	}
	sp.Path = "."
	if p := strings.Trim(u.Path, "/"); p != "" {
		if !fs.ValidPath(p) {
			return errors.New("the prefix is not a clean path")
		}
		sp.Path = p
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.User != nil || (e.Path != "" && e.Path != "/") {
				return fmt.Errorf("endpoint=%q: want http://host[:port] or https://host[:port]", v)
			}
			sp.Endpoint = e.Scheme + "://" + e.Host
		case "region":
			sp.Region = v
		default:
			return fmt.Errorf("unknown option %q (want endpoint or region)", k)
		}
	}
	return nil
}

func parseNFS(sp *Spec, u *url.URL) error {
	full := path.Clean("/" + u.Path)
	sp.Export, sp.Path = full, "."
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "vers":
			switch v {
			case "3", "4", "4.0", "4.1", "4.2":
				sp.NFSVersion = v
			default:
				return fmt.Errorf("vers=%q: want 3, 4, 4.1 or 4.2", v)
			}
		case "port", "mountport":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				return fmt.Errorf("%s=%q: not a port", k, v)
			}
			if k == "port" {
				sp.Port = n
			} else {
				sp.MountPort = n
			}
		case "export":
			e := path.Clean("/" + v)
			rel, ok := within(full, e)
			if !ok {
				return fmt.Errorf("export=%q is not a prefix of the path %q", v, full)
			}
			sp.Export, sp.Path = e, rel
		default:
			return fmt.Errorf("unknown option %q (want vers, port, mountport or export)", k)
		}
	}
	return nil
}

// within reports whether p is dir or below it, and p relative to dir.
func within(p, dir string) (string, bool) {
	if p == dir {
		return ".", true
	}
	if dir == "/" {
		return strings.TrimPrefix(p, "/"), true
	}
	if strings.HasPrefix(p, dir+"/") {
		return p[len(dir)+1:], true
	}
	return "", false
}

func parseUSB(rest string) (Spec, error) {
	sp := Spec{Kind: KindUSB, Path: "."}
	if strings.HasPrefix(rest, "/dev/") {
		// /dev/sda1/backups: the device is the first two elements.
		parts := strings.SplitN(strings.TrimPrefix(rest, "/dev/"), "/", 2)
		if parts[0] == "" {
			return Spec{}, errors.New("source usb: missing device (usb:/dev/sda1/path)")
		}
		sp.Device = "/dev/" + parts[0]
		if len(parts) == 2 && parts[1] != "" {
			sp.Path = path.Clean(strings.TrimLeft(parts[1], "/"))
		}
		if leaves(sp.Path) {
			return Spec{}, errors.New("source usb: the path leaves the partition")
		}
		return sp, nil
	}
	label, p, _ := strings.Cut(rest, "/")
	if label == "" {
		return Spec{}, errors.New("source usb: missing label (want usb:LABEL/path)")
	}
	sp.Label = label
	if p != "" {
		sp.Path = path.Clean(strings.TrimLeft(p, "/"))
	}
	if leaves(sp.Path) {
		return Spec{}, errors.New("source usb: the path leaves the partition")
	}
	return sp, nil
}

// redacted is u for an error message: scheme and host only, as a
// mistyped URL may hold a password anywhere else.
func redacted(u *url.URL) string {
	if u.Opaque != "" || u.Host == "" {
		return u.Scheme + ":..."
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// leaves reports whether the relative path p climbs out of its folder.
func leaves(p string) bool {
	return p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p)
}
