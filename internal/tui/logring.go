package tui

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Ring keeps the last lines of the log for the log pane. The recovery UI
// owns the console, so slog must never write to it; it writes here.
type Ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

// NewRing keeps the last n lines.
func NewRing(n int) *Ring { return &Ring{lines: make([]string, n)} }

// Write implements io.Writer; each call is one or more lines.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		r.lines[r.next] = l
		r.next = (r.next + 1) % len(r.lines)
		r.full = r.full || r.next == 0
	}
	return len(p), nil
}

// Lines returns the kept lines, oldest first.
func (r *Ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.lines[:r.next]...)
	}
	return append(append([]string(nil), r.lines[r.next:]...), r.lines[:r.next]...)
}

// String is all kept lines.
func (r *Ring) String() string { return strings.Join(r.Lines(), "\n") }

// Handler returns a slog text handler writing into r.
func (r *Ring) Handler(level slog.Leveler) slog.Handler {
	return slog.NewTextHandler(r, &slog.HandlerOptions{Level: level})
}

// LineHandler writes each record as one line to w (for /dev/kmsg, which
// wants one write per message).
type LineHandler struct {
	slog.Handler
	mu  *sync.Mutex
	buf *bytes.Buffer
	out func([]byte)
}

// NewLineHandler formats records at or above level as text and passes
// each line to out.
func NewLineHandler(level slog.Leveler, out func([]byte)) *LineHandler {
	buf := &bytes.Buffer{}
	return &LineHandler{
		Handler: slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level}),
		mu:      &sync.Mutex{}, buf: buf, out: out,
	}
}

// Handle implements slog.Handler.
func (h *LineHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.Handler.Handle(ctx, r); err != nil {
		return err
	}
	h.out(bytes.Clone(h.buf.Bytes()))
	return nil
}

// WithAttrs implements slog.Handler.
func (h *LineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &LineHandler{Handler: h.Handler.WithAttrs(as), mu: h.mu, buf: h.buf, out: h.out}
}

// WithGroup implements slog.Handler.
func (h *LineHandler) WithGroup(name string) slog.Handler {
	return &LineHandler{Handler: h.Handler.WithGroup(name), mu: h.mu, buf: h.buf, out: h.out}
}
