package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The checks below are Raspberry Pi Imager's documented rules for an OS
// list, from the rpi-imager repository:
//
//   - doc/json-schema/os-list-schema.json (JSON Schema draft 07): the top
//     level is an object with the required "os_list" array and nothing
//     but "imager" and "os_list" (additionalProperties: false). An OS
//     entry requires name, description, icon, url, extract_size,
//     extract_sha256, image_download_size and release_date; the sizes are
//     integers, the rest strings. url "can be .zip, .gz, .xz (since
//     Imager 1.7 also .zstd ...)". extract_sha256 "must be correct or
//     Imager will for security purposes abort and will not write the
//     first MB of image".
//   - doc/schema-notes.md: "devices" is required too and must not be
//     empty; release_date is YYYY-MM-DD; sizes are bytes; init_format is
//     one of "systemd", "cloudinit", "cloudinit-rpi", "none" or "".
//   - The device tags are those of the device list in Imager's own
//     os_list_imagingutility_v4.json: piN-64bit / piN-32bit.
var (
	requiredFields = []string{"name", "description", "icon", "url", "extract_size",
		"extract_sha256", "image_download_size", "release_date", "devices"}
	intFields    = map[string]bool{"extract_size": true, "image_download_size": true}
	initFormats  = map[string]bool{"systemd": true, "cloudinit": true, "cloudinit-rpi": true, "none": true, "": true}
	knownDevices = map[string]bool{
		"pi5-64bit": true, "pi5-32bit": true, "pi4-64bit": true, "pi4-32bit": true,
		"pi3-64bit": true, "pi3-32bit": true, "pi2-32bit": true, "pi1-32bit": true,
	}
	sha256Hex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	urlSchemes = []string{"https://", "http://", "file://"}
	urlSuffix  = []string{".xz", ".gz", ".zip", ".zst", ".zstd", ".img"}
)

// Validate checks list as Imager would read it: marshalled, field by field.
func Validate(list *List) []error {
	data, err := json.Marshal(list)
	if err != nil {
		return []error{err}
	}
	return ValidateJSON(data)
}

// ValidateJSON checks an os_list file against the rules above.
func ValidateJSON(data []byte) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		return []error{fmt.Errorf("not a JSON object: %w", err)}
	}
	for k := range top {
		if k != "os_list" && k != "imager" {
			bad("top level: unknown key %q (the schema allows only imager and os_list)", k)
		}
	}
	list, ok := top["os_list"].([]any)
	if !ok {
		bad("os_list: missing or not an array")
		return errs
	}
	if len(list) == 0 {
		bad("os_list: empty")
	}
	names := map[string]bool{}
	for i, item := range list {
		e, ok := item.(map[string]any)
		if !ok {
			bad("os_list[%d]: not an object", i)
			continue
		}
		at := fmt.Sprintf("os_list[%d]", i)
		if n, ok := e["name"].(string); ok {
			at += " (" + n + ")"
			if names[n] {
				bad("%s: the name is used twice", at)
			}
			names[n] = true
		}
		for _, f := range requiredFields {
			v, ok := e[f]
			switch {
			case !ok:
				bad("%s: missing %s", at, f)
			case intFields[f]:
				n, isNum := v.(float64)
				if !isNum || n != float64(int64(n)) || n <= 0 {
					bad("%s: %s = %v, want a positive integer number of bytes", at, f, v)
				}
			case f == "devices":
				ds, isArr := v.([]any)
				if !isArr || len(ds) == 0 {
					bad("%s: devices must be a non-empty array", at)
				}
				for _, d := range ds {
					if s, _ := d.(string); !knownDevices[s] {
						bad("%s: device %v is not an Imager device tag", at, d)
					}
				}
			default:
				if s, isStr := v.(string); !isStr || strings.TrimSpace(s) == "" {
					bad("%s: %s must be a non-empty string", at, f)
				}
			}
		}
		for _, f := range []string{"extract_sha256", "image_download_sha256"} {
			if v, ok := e[f]; ok {
				if s, _ := v.(string); !sha256Hex.MatchString(s) {
					bad("%s: %s = %v, want 64 lowercase hex digits", at, f, v)
				}
			}
		}
		if s, ok := e["release_date"].(string); ok {
			if _, err := time.Parse("2006-01-02", s); err != nil {
				bad("%s: release_date %q, want YYYY-MM-DD", at, s)
			}
		}
		if v, ok := e["init_format"]; ok {
			if s, isStr := v.(string); !isStr || !initFormats[s] {
				bad("%s: init_format %v, want systemd, cloudinit, cloudinit-rpi, none or empty", at, v)
			}
		}
		if s, ok := e["url"].(string); ok {
			if !hasAny(s, urlSchemes, strings.HasPrefix) {
				bad("%s: url %q is not http(s) or file", at, s)
			}
			if !hasAny(s, urlSuffix, strings.HasSuffix) {
				bad("%s: url %q is not an image Imager can unpack (.xz, .gz, .zip, .zst)", at, s)
			}
		}
		if s, ok := e["icon"].(string); ok && !hasAny(s, urlSchemes, strings.HasPrefix) && !strings.HasPrefix(s, "icons/") {
			bad("%s: icon %q is not a URL", at, s)
		}
	}
	return errs
}

func hasAny(s string, affixes []string, has func(s, affix string) bool) bool {
	for _, a := range affixes {
		if has(s, a) {
			return true
		}
	}
	return false
}
