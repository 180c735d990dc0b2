package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/runlog"
)

// ErrValue is wrapped when a value has the wrong type or form.
var ErrValue = errors.New("bad value")

// setTOML stores a decoded TOML value into the field of o.
func setTOML(c *Config, o option, v any) error {
	switch p := o.field(c).(type) {
	case *string:
		if b, ok := v.(bool); ok && o.fromBool != nil {
			*p = o.fromBool[b]
			return nil
		}
		s, ok := v.(string)
		if !ok && o.fromBool != nil {
			return fmt.Errorf("%w: %s wants %s, true or false, not %s", ErrValue, o.key, strings.Join(o.choices, ", "), tomlType(v))
		}
		if !ok {
			return fmt.Errorf("%w: %s wants a string, not %s", ErrValue, o.key, tomlType(v))
		}
		*p = s
	case *runlog.Secret:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%w: %s wants a string, not %s", ErrValue, o.key, tomlType(v))
		}
		*p = runlog.Secret(s)
	case *int:
		n, ok := v.(int64)
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return fmt.Errorf("%w: %s wants an integer, not %s", ErrValue, o.key, tomlType(v))
		}
		*p = int(n)
	case *bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%w: %s wants true or false, not %s", ErrValue, o.key, tomlType(v))
		}
		*p = b
	case *time.Duration:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%w: %s wants a duration such as \"10m\", not %s", ErrValue, o.key, tomlType(v))
		}
		d, err := parseDuration(s)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrValue, o.key, err)
		}
		*p = d
	case *[]string:
		arr, ok := v.([]any)
		if !ok {
			// A single string is accepted as a one-element list: a common
			// slip that has one obvious meaning.
			if s, ok := v.(string); ok {
				*p = []string{s}
				return nil
			}
			return fmt.Errorf("%w: %s wants a list of strings, not %s", ErrValue, o.key, tomlType(v))
		}
		out := make([]string, 0, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("%w: %s[%d] wants a string, not %s", ErrValue, o.key, i, tomlType(e))
			}
			out = append(out, s)
		}
		*p = out
	default:
		return fmt.Errorf("BUG: option %s has an unhandled field type %T", o.key, p)
	}
	return nil
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("%T", v)
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 90s, 10m, 1h30m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// setString stores a command-line value into the field of o. Lists get
// the whole slice of repeated flag values.
func setString(c *Config, o option, vals []string) error {
	last := vals[len(vals)-1]
	switch p := o.field(c).(type) {
	case *string:
		*p = last
		if o.fromBool != nil {
			if b, err := strconv.ParseBool(last); err == nil {
				*p = o.fromBool[b]
			}
		}
	case *runlog.Secret:
		*p = runlog.Secret(last)
	case *int:
		n, err := strconv.Atoi(last)
		if err != nil {
			return fmt.Errorf("%w: --%s wants an integer, not %q", ErrValue, o.flagName(), last)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(last)
		if err != nil {
			return fmt.Errorf("%w: --%s wants true or false, not %q", ErrValue, o.flagName(), last)
		}
		*p = b
	case *time.Duration:
		d, err := parseDuration(last)
		if err != nil {
			return fmt.Errorf("%w: --%s: %w", ErrValue, o.flagName(), err)
		}
		*p = d
	case *[]string:
		*p = append([]string(nil), vals...)
	default:
		return fmt.Errorf("BUG: option %s has an unhandled field type %T", o.key, p)
	}
	return nil
}

// plain renders the field of o as a flag value; secrets and lists (whose
// defaults are empty) as "".
func plain(c *Config, o option) string {
	switch p := o.field(c).(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return p.String()
	}
	return ""
}

// format renders the field of o as a TOML value, secrets masked unless
// reveal is set (only the importer reveals, to write a file for the owner).
func format(c *Config, o option, reveal bool) string {
	switch p := o.field(c).(type) {
	case *string:
		return quote(*p)
	case *runlog.Secret:
		if reveal {
			return quote(p.Reveal())
		}
		return quote(p.String())
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return quote(p.String())
	case *[]string:
		q := make([]string, len(*p))
		for i, s := range *p {
			q[i] = quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprintf("%q", fmt.Sprint(o.field(c)))
}

// quote writes a TOML basic string. strconv.Quote is close but emits \x
// escapes that TOML lacks, so control bytes go out as \u.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
