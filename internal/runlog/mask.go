package runlog

import (
	"context"
	"fmt"
	"log/slog"
)

// MaskHandler rewrites every record's message and string-ish attribute
// values through a Masker before passing it on. It catches secrets that
// reached a log call as plain strings or inside error messages; Secret
// values are already masked by their LogValue.
type MaskHandler struct {
	inner slog.Handler
	m     *Masker
}

// NewMaskHandler wraps h.
func NewMaskHandler(h slog.Handler, m *Masker) *MaskHandler {
	return &MaskHandler{inner: h, m: m}
}

// Enabled implements slog.Handler.
func (h *MaskHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *MaskHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, h.m.Mask(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(h.maskAttr(a))
		return true
	})
	return h.inner.Handle(ctx, nr)
}

// WithAttrs implements slog.Handler.
func (h *MaskHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = h.maskAttr(a)
	}
	return &MaskHandler{inner: h.inner.WithAttrs(masked), m: h.m}
}

// WithGroup implements slog.Handler.
func (h *MaskHandler) WithGroup(name string) slog.Handler {
	return &MaskHandler{inner: h.inner.WithGroup(name), m: h.m}
}

func (h *MaskHandler) maskAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.m.Mask(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = h.maskAttr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.m.Mask(x.Error()))
		case []string:
			out := make([]string, len(x))
			for i, s := range x {
				out[i] = h.m.Mask(s)
			}
			return slog.Any(a.Key, out)
		case fmt.Stringer:
			return slog.String(a.Key, h.m.Mask(x.String()))
		default:
			// Anything else is formatted and masked; the handler would
			// format it anyway, and an unknown struct may hold a secret.
			return slog.String(a.Key, h.m.Mask(fmt.Sprintf("%+v", x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
