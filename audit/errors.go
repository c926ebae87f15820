package audit

import (
	"errors"
	"fmt"
)

// Errors of this package. Match them with errors.Is.
var (
	// ErrSinkClosed: Emit on a sink that was closed.
	ErrSinkClosed = errors.New("audit: sink closed")
	// ErrInvalidEvent: an event without Type, Actor or Outcome, or with an
	// Outcome that is not one of Success, Denied, Failure. Sinks refuse it
	// rather than invent the missing fields.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrInjectedFailure: a Recorder told by FailAfter or FailOn to refuse
	// this event.
	ErrInjectedFailure = errors.New("audit: injected failure")
	// ErrNoSink: a Fanout built without sinks, or with a nil one.
	ErrNoSink = errors.New("audit: missing sink")
	// ErrDropped: the slog handler would discard the event (its level is
	// disabled), so the event would not be recorded.
	ErrDropped = errors.New("audit: event would be dropped")
	// ErrChainBroken: a hash-chained log failed verification. The error is
	// a *ChainError that names the first broken link.
	ErrChainBroken = errors.New("audit: hash chain broken")
	// ErrFilePermissions: OpenChain found a symbolic link at the path, a
	// file not owned by this process's user (or root) or that others than
	// its owner may read or write, or a directory group or others may write.
	ErrFilePermissions = errors.New("audit: chain file or directory unsafe")
	// ErrChainFailed: an earlier write to a ChainLog failed part way, so
	// the file may hold a partial record; the log refuses further events
	// until it is reopened (which verifies the file).
	ErrChainFailed = errors.New("audit: chain log failed")
)

// ChainError names the first broken link of a hash-chained log. It wraps
// ErrChainBroken.
type ChainError struct {
	Line   int    // 1-based line of the file where the chain breaks
	Seq    uint64 // the sequence number expected at that line
	Reason string // what is wrong, without the record's content
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: hash chain broken at line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
}

// Unwrap returns ErrChainBroken.
func (e *ChainError) Unwrap() error { return ErrChainBroken }
