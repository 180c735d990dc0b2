package runlog

import (
	"fmt"
	"log/slog"
	"strings"
)

// Mask is what a secret prints as.
const Mask = "********"

// Secret is a string that never prints itself: fmt verbs, slog, JSON and
// text marshalling all see Mask. Reveal is the one way to the value, so a
// grep for Reveal finds every place a password leaves the program.
type Secret string

// Reveal returns the secret value; call it only where the value is sent to
// its one intended receiver (the SMTP server, the webhook).
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return Mask
}

// String returns Mask (or "" for an empty secret).
func (s Secret) String() string { return s.masked() }

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("runlog.Secret(%q)", s.masked()) }

// Format makes every fmt verb (%s, %v, %q, %x…) print the mask.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.masked())
	default:
		fmt.Fprint(f, s.masked())
	}
}

// LogValue keeps slog from logging the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

// MarshalText keeps encoding/json and TOML encoders from writing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// Masker replaces known secret values in text. It is the second line of
// defence behind Secret: it catches a password that reached a string by
// another route, such as an SMTP server echoing it in an error.
type Masker struct {
	r *strings.Replacer
}

// NewMasker returns a Masker for the given secrets; empty and very short
// values (under 4 bytes) are ignored, because masking "a" would mangle
// every log line while protecting nothing.
func NewMasker(secrets ...string) *Masker {
	var pairs []string
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		pairs = append(pairs, s, Mask)
	}
	if len(pairs) == 0 {
		return &Masker{}
	}
	return &Masker{r: strings.NewReplacer(pairs...)}
}

// Mask returns s with every secret replaced by Mask.
func (m *Masker) Mask(s string) string {
	if m == nil || m.r == nil {
		return s
	}
	return m.r.Replace(s)
}

// MaskError returns an error whose message is masked and that still
// unwraps to err, so errors.Is keeps working.
func (m *Masker) MaskError(err error) error {
	if err == nil || m == nil || m.r == nil {
		return err
	}
	msg := err.Error()
	if masked := m.Mask(msg); masked != msg {
		return &maskedError{msg: masked, err: err}
	}
	return err
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
