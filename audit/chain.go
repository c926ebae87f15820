package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/tokenkms/tokenkms/internal/safefile"
)

// Genesis is the prev value of the first record of a chain: 64 zeros, the
// width of a hex SHA-256.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxRecordSize is the longest record line, newline included, that Verify
// and OpenChain accept; Emit refuses an event whose record would be longer.
const MaxRecordSize = 1 << 20

// record is one line of a chained log.
type record struct {
	Seq   uint64 `json:"seq"`
	Prev  string `json:"prev"`
	Event Event  `json:"event"`
	Hash  string `json:"hash"`
}

// link is what a record's hash covers: the canonical encoding.
type link struct {
	Seq   uint64 `json:"seq"`
	Prev  string `json:"prev"`
	Event Event  `json:"event"`
}

// RecordHash returns the hash that chains record seq, which follows the
// record whose hash is prev (Genesis for the first), and carries e: the
// hex SHA-256 of the canonical encoding {"seq":…,"prev":…,"event":…}
// (encoding/json, Event's fields in declaration order). ChainLog and every
// other chained sink (the PostgreSQL one in keyring/pgstore) compute it
// the same way, so their chains verify with one rule.
func RecordHash(seq uint64, prev string, e Event) (string, error) {
	_, h, err := hashLink(seq, prev, e)
	return h, err
}

// hashLink returns the canonical encoding of the link and its hash.
func hashLink(seq uint64, prev string, e Event) ([]byte, string, error) {
	b, err := json.Marshal(link{Seq: seq, Prev: prev, Event: e})
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

// encodeRecord returns the line (newline included) and the hash of the
// record seq that follows the record whose hash is prev: the link's
// encoding with the hash added as its last member, which is what
// json.Marshal gives for a record (a hex hash needs no escaping).
func encodeRecord(seq uint64, prev string, e Event) ([]byte, string, error) {
	b, h, err := hashLink(seq, prev, e)
	if err != nil {
		return nil, "", err
	}
	line := append(b[:len(b)-1:len(b)-1], `,"hash":"`...)
	line = append(line, h...)
	return append(line, "\"}\n"...), h, nil
}

// chainState is where a verified chain ends.
type chainState struct {
	seq  uint64 // the last good record's seq, 0 for none (= good records)
	head string // the last good record's hash, Genesis for none
}

// verify reads a chained log from r, calling visit (if not nil) with the
// seq and hash of each good record. It stops at the first broken link.
func verify(r io.Reader, visit func(seq uint64, hash string)) (chainState, error) {
	st := chainState{head: Genesis}
	br := bufio.NewReaderSize(r, MaxRecordSize)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return st, nil
		}
		want := st.seq + 1
		broken := func(reason string) (chainState, error) {
			return st, &ChainError{Line: int(want), Seq: want, Reason: reason}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return broken(fmt.Sprintf("record longer than %d bytes", MaxRecordSize))
		case errors.Is(err, io.EOF):
			return broken("incomplete last record (no newline): a write was cut short")
		case err != nil:
			return st, fmt.Errorf("audit: read chain: %w", err)
		}
		body := line[:len(line)-1]
		var rec record
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil || dec.More() {
			return broken("malformed record")
		}
		if rec.Seq != want {
			return broken(fmt.Sprintf("sequence number %d, want %d", rec.Seq, want))
		}
		if rec.Prev != st.head {
			return broken("prev does not match the previous record's hash")
		}
		canon, h, err := encodeRecord(rec.Seq, rec.Prev, rec.Event)
		if err != nil {
			return broken("record cannot be re-encoded")
		}
		if rec.Hash != h {
			return broken("hash does not match the record's content")
		}
		if !bytes.Equal(canon, line) {
			return broken("record is not in canonical encoding")
		}
		st = chainState{seq: rec.Seq, head: h}
		if visit != nil {
			visit(st.seq, st.head)
		}
	}
}

// Verify reads a hash-chained log written by ChainLog and checks every
// link. It returns the number of good records before the first broken one
// and, if the chain breaks, a *ChainError (wrapping ErrChainBroken) that
// names the line and the sequence number expected there. An I/O error of r
// is returned as is.
//
// A log that lost its last records (truncated at a record boundary) is a
// valid, shorter chain: nothing in the file itself can tell. A host that
// must detect truncation keeps the head (ChainLog.Head) elsewhere and calls
// VerifyHead.
func Verify(r io.Reader) (n int, err error) {
	st, err := verify(r, nil)
	return int(st.seq), err
}

// VerifyHead is Verify plus a check against a head stored outside the
// file: the record numbered wantSeq must exist and have the hash wantHash.
// Records after it are allowed (they were appended after the head was
// taken) and are verified like the others. A log that ends before wantSeq
// lost records: VerifyHead reports a *ChainError at the first missing
// line. wantSeq 0 names the empty chain, whose hash is Genesis.
func VerifyHead(r io.Reader, wantSeq uint64, wantHash string) (n int, err error) {
	var got string
	if wantSeq == 0 {
		got = Genesis
	}
	st, err := verify(r, func(seq uint64, hash string) {
		if seq == wantSeq {
			got = hash
		}
	})
	if err != nil {
		return int(st.seq), err
	}
	if st.seq < wantSeq {
		return int(st.seq), &ChainError{Line: int(st.seq) + 1, Seq: st.seq + 1,
			Reason: fmt.Sprintf("log ends at seq %d but the stored head is seq %d: records were lost", st.seq, wantSeq)}
	}
	if got != wantHash {
		return int(st.seq), &ChainError{Line: int(wantSeq), Seq: wantSeq, Reason: "hash differs from the stored head"}
	}
	return int(st.seq), nil
}

// ChainLog is a tamper-evident audit Sink: a file of JSON lines where each
// record carries the hash of the one before it. It is safe for concurrent
// use by one process; two processes must not append to the same file (the
// chain would fork, and Verify would report it).
type ChainLog struct {
	mu     sync.Mutex
	f      *os.File
	seq    uint64
	head   string
	batch  bool
	failed bool
	closed bool
}

// ChainOption configures OpenChain.
type ChainOption func(*ChainLog)

// WithBatchSync makes Emit write without syncing the file; the caller
// syncs a batch with Flush (and Close syncs). Events written since the
// last Flush may be lost in a crash: use it only where the caller flushes
// before it acts on the batch.
func WithBatchSync() ChainOption {
	return func(l *ChainLog) { l.batch = true }
}

// OpenChain opens or creates the chained log at path: mode 0600, opened
// with O_APPEND. An existing file is verified in full and the chain
// continues after its last record; a file that fails verification is
// refused (the *ChainError names the broken link), and so (with
// ErrFilePermissions) is a symbolic link at path, a file not owned by this
// process's user (or root) or that others than its owner may read or
// write, and a directory that group or others may write. By default each
// Emit syncs the file before it returns.
func OpenChain(path string, opts ...ChainOption) (*ChainLog, error) {
	f, created, err := safefile.Open(path, os.O_RDWR|os.O_CREATE|os.O_APPEND)
	switch {
	case errors.Is(err, safefile.ErrUnsafe):
		return nil, fmt.Errorf("%w: %w", ErrFilePermissions, err)
	case err != nil:
		return nil, fmt.Errorf("audit: open chain: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open chain: %w", err)
	}
	st, err := verify(io.NewSectionReader(f, 0, fi.Size()), nil)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open chain %s: %w", filepath.Base(path), err)
	}
	if created {
		if err := safefile.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: sync directory: %w", err)
		}
	}
	l := &ChainLog{f: f, seq: st.seq, head: st.head}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Emit appends e as the next record, in one write, and (unless
// WithBatchSync) syncs the file. If the write or the sync fails, the log
// is marked failed: the file may end in a partial record, so every later
// Emit returns ErrChainFailed until the file is repaired and reopened.
func (l *ChainLog) Emit(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: chain: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrSinkClosed
	case l.failed:
		return ErrChainFailed
	}
	line, h, err := encodeRecord(l.seq+1, l.head, e)
	if err != nil {
		return fmt.Errorf("audit: chain: encode: %w", err)
	}
	if len(line) > MaxRecordSize {
		return fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalidEvent, len(line), MaxRecordSize)
	}
	n, err := l.f.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err == nil && !l.batch {
		err = l.f.Sync()
	}
	if err != nil {
		l.failed = true
		return fmt.Errorf("%w: %w", ErrChainFailed, err)
	}
	l.seq++
	l.head = h
	return nil
}

// Flush syncs the records written so far to stable storage.
func (l *ChainLog) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrSinkClosed
	}
	if err := l.f.Sync(); err != nil {
		l.failed = true
		return fmt.Errorf("%w: %w", ErrChainFailed, err)
	}
	return nil
}

// Head returns the sequence number and hash of the last record (0 and
// Genesis for an empty log). A host that stores them elsewhere after each
// Emit can detect a truncated log with VerifyHead.
func (l *ChainLog) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.head
}

// Close syncs and closes the file. Emit after Close returns ErrSinkClosed.
func (l *ChainLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrSinkClosed
	}
	l.closed = true
	syncErr := l.f.Sync()
	closeErr := l.f.Close()
	if err := errors.Join(syncErr, closeErr); err != nil {
		return fmt.Errorf("audit: close chain: %w", err)
	}
	return nil
}
