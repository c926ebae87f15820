package audit

import (
	"context"
	"fmt"
	"sync"
)

// Recorder is an in-memory Sink for tests and for the embedded default. It
// keeps every accepted event in order. It is safe for concurrent use.
//
// FailAfter and FailOn make it refuse events, so that tests can check that
// an action whose audit event cannot be written does not happen (fail
// closed). A refused event is not recorded.
type Recorder struct {
	mu        sync.Mutex
	events    []Event
	failAfter int // -1: never; otherwise the number of events still accepted
	failOn    func(Event) bool
}

// NewRecorder returns an empty Recorder that accepts every valid event.
func NewRecorder() *Recorder {
	return &Recorder{failAfter: -1}
}

// Emit records a copy of e. It refuses an invalid event (ErrInvalidEvent),
// a done context, and the events that FailAfter or FailOn select
// (ErrInjectedFailure).
func (r *Recorder) Emit(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: recorder: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failOn != nil && r.failOn(e.clone()) {
		return fmt.Errorf("%w: event %s selected by FailOn", ErrInjectedFailure, e.Type)
	}
	if r.failAfter == 0 {
		return fmt.Errorf("%w: FailAfter limit reached", ErrInjectedFailure)
	}
	if r.failAfter > 0 {
		r.failAfter--
	}
	r.events = append(r.events, e.clone())
	return nil
}

// Events returns a copy of the recorded events, oldest first.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, len(r.events))
	for i, e := range r.events {
		out[i] = e.clone()
	}
	return out
}

// Len returns the number of recorded events.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Reset forgets the recorded events and the failure settings.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
	r.failAfter = -1
	r.failOn = nil
}

// FailAfter makes the Recorder accept n more events and refuse every one
// after them with ErrInjectedFailure. FailAfter(0) refuses the next event;
// a negative n removes the limit.
func (r *Recorder) FailAfter(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 0 {
		n = -1
	}
	r.failAfter = n
}

// FailOn makes the Recorder refuse, with ErrInjectedFailure, every event
// for which f returns true; f receives a copy. FailOn(nil) removes the
// predicate. f is called with the Recorder's lock held: it must not call
// the Recorder.
func (r *Recorder) FailOn(f func(Event) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failOn = f
}
