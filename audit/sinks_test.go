package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms/audit"
)

type failWriter struct{ short bool }

var errDisk = errors.New("disk on fire")

func (w failWriter) Write(p []byte) (int, error) {
	if w.short {
		return len(p) / 2, nil
	}
	return 0, errDisk
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func TestEventJSONHoldsOnlyItsFields(t *testing.T) {
	e := event(1)
	e.Reason = "scheduled"
	e.Incident = "inc-7"
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"actor", "details", "id", "incident", "kid", "outcome", "reason", "set", "time", "type"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("JSON members (-want +got):\n%s", diff)
	}
	details, ok := m["details"].(map[string]any)
	if !ok {
		t.Fatalf("details: got %T, want an object", m["details"])
	}
	if diff := cmp.Diff(map[string]any{"alg": "ES256", "backend": "local"}, details); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}

	minimal := audit.Event{Type: audit.KeyRetired, Actor: "bob", Outcome: audit.Denied}
	b, err = json.Marshal(minimal)
	if err != nil {
		t.Fatal(err)
	}
	const wantMinimal = `{"id":"","time":"0001-01-01T00:00:00Z","type":"key.retired","actor":"bob","outcome":"denied"}`
	if string(b) != wantMinimal {
		t.Errorf("minimal event JSON:\ngot  %s\nwant %s", b, wantMinimal)
	}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	s := audit.NewJSONLines(&buf)
	want := []audit.Event{event(1), event(2)}
	for _, e := range want {
		if err := s.Emit(context.Background(), e); err != nil {
			t.Fatalf("Emit: %v", err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("lines: got %d, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, l := range lines {
		var got audit.Event
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("line %d (-want +got):\n%s", i+1, diff)
		}
	}
}

func TestJSONLinesConcurrentWritesDoNotInterleave(t *testing.T) {
	var buf lockedBuffer
	s := audit.NewJSONLines(&buf)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := s.Emit(context.Background(), event(g*100+i)); err != nil {
					t.Errorf("Emit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf.buf)
	n := 0
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
	}
	if n != 200 {
		t.Errorf("lines: got %d, want 200", n)
	}
}

func TestJSONLinesErrors(t *testing.T) {
	tests := []struct {
		name string
		w    io.Writer
		e    audit.Event
		want error
	}{
		{"write error", failWriter{}, event(1), errDisk},
		{"short write", failWriter{short: true}, event(1), io.ErrShortWrite},
		{"nil writer", nil, event(1), audit.ErrNoSink},
		{"invalid event", io.Discard, audit.Event{Type: audit.KeyCreated, Outcome: audit.Success}, audit.ErrInvalidEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := audit.NewJSONLines(tc.w).Emit(context.Background(), tc.e)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Emit: got %v, want %v", err, tc.want)
			}
		})
	}
}

type failHandler struct{ slog.Handler }

func (failHandler) Handle(context.Context, slog.Record) error { return errDisk }

func TestSlog(t *testing.T) {
	var buf bytes.Buffer
	s := audit.NewSlog(slog.New(slog.NewJSONHandler(&buf, nil)))
	e := event(3)
	e.Outcome = audit.Denied
	e.Reason = "two-person rule"
	if err := s.Emit(context.Background(), e); err != nil {
		t.Fatalf("Emit: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", buf.String(), err)
	}
	want := map[string]any{
		"time": "2025-03-01T12:00:03Z", "level": "WARN", "msg": "audit",
		"id": "ev-3", "type": "key.created", "set": "access-tokens", "kid": "kid-3",
		"actor": "alice", "outcome": "denied", "reason": "two-person rule",
		"details": map[string]any{"alg": "ES256", "backend": "local"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slog record (-want +got):\n%s", diff)
	}
}

func TestSlogErrors(t *testing.T) {
	tests := []struct {
		name string
		l    *slog.Logger
		e    audit.Event
		want error
	}{
		{"level disabled", slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})), event(1), audit.ErrDropped},
		{"handler error", slog.New(failHandler{slog.NewJSONHandler(io.Discard, nil)}), event(1), errDisk},
		{"nil logger", nil, event(1), audit.ErrNoSink},
		{"invalid event", slog.New(slog.NewJSONHandler(io.Discard, nil)), audit.Event{Type: audit.KeyCreated, Actor: "a"}, audit.ErrInvalidEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := audit.NewSlog(tc.l).Emit(context.Background(), tc.e); !errors.Is(err, tc.want) {
				t.Fatalf("Emit: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFanout(t *testing.T) {
	tests := []struct {
		name      string
		failAt    int // index of the sink told to fail, -1 for none
		sinks     int
		want      error
		wantCount []int // events each recorder holds afterwards
	}{
		{"all succeed", -1, 3, nil, []int{1, 1, 1}},
		{"first fails, later sinks do not see it", 0, 3, audit.ErrInjectedFailure, []int{0, 0, 0}},
		{"middle fails", 1, 3, audit.ErrInjectedFailure, []int{1, 0, 0}},
		{"no sinks", -1, 0, audit.ErrNoSink, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var recs []*audit.Recorder
			var sinks []audit.Sink
			for i := range tc.sinks {
				r := audit.NewRecorder()
				if i == tc.failAt {
					r.FailAfter(0)
				}
				recs = append(recs, r)
				sinks = append(sinks, r)
			}
			err := audit.Fanout(sinks...).Emit(context.Background(), event(1))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Emit: got %v, want %v", err, tc.want)
			}
			var counts []int
			for _, r := range recs {
				counts = append(counts, r.Len())
			}
			if diff := cmp.Diff(tc.wantCount, counts); diff != "" {
				t.Errorf("events per sink (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFanoutRefusesNilSinkAndInvalidEvent(t *testing.T) {
	r := audit.NewRecorder()
	if err := audit.Fanout(r, nil).Emit(context.Background(), event(1)); !errors.Is(err, audit.ErrNoSink) {
		t.Errorf("nil sink: got %v, want ErrNoSink", err)
	}
	if err := audit.Fanout(r).Emit(context.Background(), audit.Event{}); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Errorf("invalid event: got %v, want ErrInvalidEvent", err)
	}
	if got := r.Len(); got != 0 {
		t.Errorf("recorder after refused emits: got %d events, want 0", got)
	}
}
