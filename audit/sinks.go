package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
)

type jsonLines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSONLines returns a Sink that writes each event to w as one JSON
// object on one line (the Event's JSON form, Details keys sorted). Writes
// are serialised: concurrent Emits never interleave. An event is written
// with a single Write call; a short or failed write is an error. The sink
// does not sync w: wrap a file in a ChainLog where durability matters.
func NewJSONLines(w io.Writer) Sink {
	return &jsonLines{w: w}
}

func (s *jsonLines) Emit(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if s.w == nil {
		return fmt.Errorf("%w: JSON lines sink without a writer", ErrNoSink)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: json lines: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: json lines: encode: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.w.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("audit: json lines: write: %w", err)
	}
	return nil
}

type slogSink struct{ l *slog.Logger }

// NewSlog returns a Sink that logs each event through l's handler: message
// "audit", level Info for Success and Warn for Denied and Failure, record
// time the event's Time, and the attributes id, type, set, kid, actor,
// outcome, reason, incident (empty ones omitted) and a group "details"
// (keys sorted). The handler's error is returned, and an event the handler
// would discard (its level disabled) is refused with ErrDropped, so the
// sink never loses an event silently.
func NewSlog(l *slog.Logger) Sink {
	return &slogSink{l: l}
}

func (s *slogSink) Emit(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if s.l == nil {
		return fmt.Errorf("%w: slog sink without a logger", ErrNoSink)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: slog: %w", err)
	}
	level := slog.LevelInfo
	if e.Outcome != Success {
		level = slog.LevelWarn
	}
	h := s.l.Handler()
	if !h.Enabled(ctx, level) {
		return fmt.Errorf("%w: slog handler disabled at level %s", ErrDropped, level)
	}
	r := slog.NewRecord(e.Time, level, "audit", 0)
	r.AddAttrs(slog.String("id", e.ID), slog.String("type", string(e.Type)))
	for _, a := range []struct{ k, v string }{{"set", e.Set}, {"kid", e.KID}} {
		if a.v != "" {
			r.AddAttrs(slog.String(a.k, a.v))
		}
	}
	r.AddAttrs(slog.String("actor", e.Actor), slog.String("outcome", string(e.Outcome)))
	for _, a := range []struct{ k, v string }{{"reason", e.Reason}, {"incident", e.Incident}} {
		if a.v != "" {
			r.AddAttrs(slog.String(a.k, a.v))
		}
	}
	if len(e.Details) > 0 {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		attrs := make([]any, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, slog.String(k, e.Details[k]))
		}
		r.AddAttrs(slog.Group("details", attrs...))
	}
	if err := h.Handle(ctx, r); err != nil {
		return fmt.Errorf("audit: slog: %w", err)
	}
	return nil
}

type fanout struct{ sinks []Sink }

// Fanout returns a Sink that emits each event to every one of required, in
// order, and fails as soon as one fails: the sinks after it do not receive
// the event, and the error names the failing sink's index and wraps its
// error. Since every sink is required, the caller's action is vetoed
// (fail closed); the sinks before the failing one have recorded an
// attempt that did not take effect, which an auditor reads as such.
//
// A Fanout of no sinks, or with a nil sink, refuses every event with
// ErrNoSink rather than record nothing.
func Fanout(required ...Sink) Sink {
	return &fanout{sinks: slices.Clone(required)}
}

func (f *fanout) Emit(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if len(f.sinks) == 0 {
		return fmt.Errorf("%w: fan-out without sinks", ErrNoSink)
	}
	for i, s := range f.sinks {
		if s == nil {
			return fmt.Errorf("%w: fan-out sink %d is nil", ErrNoSink, i)
		}
	}
	for i, s := range f.sinks {
		if err := s.Emit(ctx, e); err != nil {
			return fmt.Errorf("audit: fan-out sink %d: %w", i, err)
		}
	}
	return nil
}
