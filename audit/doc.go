// Package audit defines the audit Event that every key administration
// action emits (R2.5, R6.2, T5), the Sink interface the keyring writes
// them to, and the sinks a host composes:
//
//   - Recorder: in memory, for tests and the embedded default; FailAfter
//     and FailOn make it refuse events so that fail-closed behaviour can be
//     tested.
//   - NewJSONLines: one JSON object per line on an io.Writer.
//   - NewSlog: through a log/slog handler.
//   - Fanout: several required sinks, in order.
//   - ChainLog: a hash-chained, tamper-evident file, checked by Verify and
//     VerifyHead (and by `tokenkms audit verify --audit FILE`).
//
// Sinks do not invent fields: the keyring sends complete events (ID, Time
// and the rest). A sink refuses an event without Type, Actor or Outcome
// with ErrInvalidEvent (see Event.Validate).
//
// Rule numbers (R2.4, T5, ...) are those of the key-management standard;
// docs/COMPLIANCE.md in the repository restates each rule and names the
// code that implements it and the tests that prove it.
//
// # The chained log
//
// Each line of a ChainLog file is the JSON object
//
//	{"seq":N,"prev":P,"event":{...},"hash":H}
//
// with its members in that order and no insignificant white space. seq
// counts from 1 with no gap; prev is the hash of the record before (Genesis,
// 64 zeros, for the first); hash is the lowercase hex SHA-256 of the
// canonical encoding of the link, the encoding/json output of
//
//	{"seq":N,"prev":P,"event":{...}}
//
// where the event is encoded as Event's JSON form (struct field order, the
// Details keys sorted, empty optional fields omitted, time in RFC 3339 with
// nanoseconds). Verify decodes each line strictly (unknown members refused),
// recomputes the hash and requires the line to be exactly the canonical
// record, so any change to a record, a deleted, reordered or inserted
// record, or a cut-off last line breaks the chain at a named line.
//
// # Security
//
// The chain is evidence against edits, not against someone who rewrites
// the file from the edit onwards: the hashes are unkeyed, so such a writer
// can recompute them. Two limits follow. A log truncated at a record
// boundary is a valid shorter chain; and a rewritten tail is a valid
// chain. A host that stores ChainLog.Head elsewhere (another system, a
// database, a periodic signed checkpoint) detects both with VerifyHead.
//
// Events hold identifiers and settings, never key material, secret values
// or tokens: the keyring puts only ids in Details, and no sink adds
// anything. Files are created with mode 0600; OpenChain refuses a file that
// others may read or write.
//
// # Concurrency
//
// Every sink of this package is safe for concurrent use. JSON lines and
// the chained log serialise their writes: records never interleave. A
// ChainLog file has one writer process.
//
// # Errors
//
// Sinks return ErrInvalidEvent for an incomplete event, ErrSinkClosed after
// Close, ErrInjectedFailure from a Recorder told to fail, ErrNoSink for a
// Fanout without sinks, ErrDropped from a slog sink whose handler would
// discard the event, and ErrChainFailed once a ChainLog write has failed; OpenChain returns
// ErrFilePermissions for a file others may read or write.
// Verify, VerifyHead and OpenChain report a broken chain as a *ChainError
// wrapping ErrChainBroken. A caller treats any error from Emit as a veto:
// the audited action does not happen.
package audit
