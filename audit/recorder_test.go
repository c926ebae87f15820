package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms/audit"
)

func event(i int) audit.Event {
	return audit.Event{
		ID:      fmt.Sprintf("ev-%d", i),
		Time:    time.Date(2025, 3, 1, 12, 0, i, 0, time.UTC),
		Type:    audit.KeyCreated,
		Set:     "access-tokens",
		KID:     fmt.Sprintf("kid-%d", i),
		Actor:   "alice",
		Outcome: audit.Success,
		Details: map[string]string{"alg": "ES256", "backend": "local"},
	}
}

// invalidEvents are refused by every sink.
var invalidEvents = []struct {
	name string
	edit func(*audit.Event)
}{
	{"empty type", func(e *audit.Event) { e.Type = "" }},
	{"empty actor", func(e *audit.Event) { e.Actor = "" }},
	{"empty outcome", func(e *audit.Event) { e.Outcome = "" }},
	{"unknown outcome", func(e *audit.Event) { e.Outcome = "maybe" }},
}

func TestRecorderRefusesInvalidEvents(t *testing.T) {
	for _, tc := range invalidEvents {
		t.Run(tc.name, func(t *testing.T) {
			r := audit.NewRecorder()
			e := event(1)
			tc.edit(&e)
			if err := r.Emit(context.Background(), e); !errors.Is(err, audit.ErrInvalidEvent) {
				t.Fatalf("Emit: got %v, want ErrInvalidEvent", err)
			}
			if got := r.Len(); got != 0 {
				t.Errorf("Len after refused event: got %d, want 0", got)
			}
		})
	}
}

func TestRecorderRecordsInOrderAndCopies(t *testing.T) {
	r := audit.NewRecorder()
	ctx := context.Background()
	want := []audit.Event{event(1), event(2), event(3)}
	for _, e := range want {
		if err := r.Emit(ctx, e); err != nil {
			t.Fatalf("Emit: %v", err)
		}
	}
	want[0].Details["alg"] = "changed after Emit"
	got := r.Events()
	got[1].Details["alg"] = "changed in a copy"
	want = []audit.Event{event(1), event(2), event(3)}
	if diff := cmp.Diff(want, r.Events()); diff != "" {
		t.Errorf("Events (-want +got):\n%s", diff)
	}
}

func TestRecorderFailureInjection(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*audit.Recorder)
		emit     int
		wantOK   int // events accepted, the others refused
		wantKIDs []string
	}{
		{"FailAfter(0)", func(r *audit.Recorder) { r.FailAfter(0) }, 3, 0, nil},
		{"FailAfter(2)", func(r *audit.Recorder) { r.FailAfter(2) }, 4, 2, []string{"kid-0", "kid-1"}},
		{"FailAfter(-1) removes the limit", func(r *audit.Recorder) { r.FailAfter(0); r.FailAfter(-1) }, 2, 2, []string{"kid-0", "kid-1"}},
		{"FailOn kid-1", func(r *audit.Recorder) {
			r.FailOn(func(e audit.Event) bool { return e.KID == "kid-1" })
		}, 3, 2, []string{"kid-0", "kid-2"}},
		{"FailOn(nil) removes the predicate", func(r *audit.Recorder) {
			r.FailOn(func(audit.Event) bool { return true })
			r.FailOn(nil)
		}, 2, 2, []string{"kid-0", "kid-1"}},
		{"Reset clears failures", func(r *audit.Recorder) { r.FailAfter(0); r.Reset() }, 1, 1, []string{"kid-0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := audit.NewRecorder()
			tc.setup(r)
			ok := 0
			for i := range tc.emit {
				err := r.Emit(context.Background(), event(i))
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, audit.ErrInjectedFailure):
					t.Fatalf("Emit %d: got %v, want nil or ErrInjectedFailure", i, err)
				}
			}
			if ok != tc.wantOK {
				t.Errorf("accepted: got %d, want %d", ok, tc.wantOK)
			}
			var kids []string
			for _, e := range r.Events() {
				kids = append(kids, e.KID)
			}
			if diff := cmp.Diff(tc.wantKIDs, kids); diff != "" {
				t.Errorf("recorded kids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecorderRefusesDoneContext(t *testing.T) {
	r := audit.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Emit(ctx, event(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Emit: got %v, want context.Canceled", err)
	}
	if got := r.Len(); got != 0 {
		t.Errorf("Len: got %d, want 0", got)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := audit.NewRecorder()
	r.FailAfter(150)
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if err := r.Emit(context.Background(), event(g*100+i)); err != nil {
					mu.Lock()
					refused++
					mu.Unlock()
				}
				_ = r.Events()
			}
		})
	}
	wg.Wait()
	if got := r.Len(); got != 150 {
		t.Errorf("Len: got %d, want 150", got)
	}
	if refused != 50 {
		t.Errorf("refused: got %d, want 50", refused)
	}
}
