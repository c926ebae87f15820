package filestore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tokenkms/tokenkms/internal/safefile"
	"github.com/tokenkms/tokenkms/verifier"
)

// revocationSuffix names the revocation journal after the store file.
const revocationSuffix = ".revoked"

// maxJournalLine bounds one journal line (a jti or kid and a time).
const maxJournalLine = 64 << 10

// compactMin is the fewest journal lines before a compaction is
// considered; past it, the journal is compacted whenever it has doubled
// since the last compaction.
const compactMin = 1024

// journalEntry is one line of the revocation journal: a jti revoked until
// a time, or every token of a kid issued before a cutoff.
type journalEntry struct {
	JTI    string    `json:"jti,omitempty"`
	Until  time.Time `json:"until,omitzero"`
	KID    string    `json:"kid,omitempty"`
	Before time.Time `json:"before,omitzero"`
}

// Revocations is the store's durable revocation list
// (verifier.RevocationList): every revocation is appended to a journal
// file beside the store (path+".revoked", mode 0600, under the store's
// process lock) and synced before the call returns, then recorded in a
// verifier.MemoryRevocationList that answers every lookup from memory.
// Open replays the journal, so revocations survive a restart, SIGKILL
// included; a line torn by a crash mid-append (the call had not returned)
// is dropped. The journal is rewritten atomically, without the jtis whose
// until plus verifier.MaxLeeway has passed, when Open finds it has dead
// lines and whenever it doubles in size: kid policies are kept forever.
type Revocations struct {
	path  string
	clock func() time.Time
	mem   *verifier.MemoryRevocationList

	mu        sync.Mutex
	f         *os.File // the journal, open for appending; nil once closed
	lines     int      // lines in the journal
	compacted int      // lines right after the last compaction
}

// openRevocations replays the journal at path into a fresh memory list,
// compacts it if it holds entries no longer needed, and opens it for
// appending.
func openRevocations(path string, now func() time.Time) (*Revocations, error) {
	r := &Revocations{path: path, clock: now, mem: verifier.NewMemoryRevocationList(now)}
	f, created, err := openFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return nil, err
	}
	if created {
		// The journal's entry in its directory must outlive a crash as
		// its synced appends do.
		if err := safefile.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("filestore: revocation journal: sync directory: %w", err)
		}
	}
	r.f = f
	live, err := r.replay(now())
	if err != nil {
		f.Close()
		return nil, err
	}
	if live < r.lines {
		if err := r.compactLocked(now()); err != nil {
			r.f.Close()
			return nil, err
		}
	}
	return r, nil
}

// replay reads the journal into the memory list, truncates a torn last
// line, and returns how many lines are still needed at now.
func (r *Revocations) replay(now time.Time) (int, error) {
	ctx := context.Background()
	live, good := 0, int64(0)
	err := r.scan(func(e journalEntry, n int64) error {
		if err := r.record(ctx, e); err != nil {
			return err
		}
		if e.needed(now) {
			live++
		}
		r.lines++
		good += n
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := r.f.Truncate(good); err != nil {
		return 0, fmt.Errorf("filestore: revocation journal: truncate torn line: %w", err)
	}
	r.compacted = r.lines
	return live, nil
}

// scan calls fn for each complete line of the journal with its length.
// A last line without its newline is a torn append and is not passed; a
// complete line that does not parse is corruption.
func (r *Revocations) scan(fn func(e journalEntry, n int64) error) error {
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("filestore: revocation journal: %w", err)
	}
	br := bufio.NewReaderSize(r.f, 64<<10)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) {
			return nil // empty, or a torn last line
		}
		if errors.Is(err, bufio.ErrBufferFull) || len(b) > maxJournalLine {
			return fmt.Errorf("%w: revocation journal line %d too long", ErrCorrupt, line)
		}
		if err != nil {
			return fmt.Errorf("filestore: revocation journal: %w", err)
		}
		var e journalEntry
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || (e.JTI == "") == (e.KID == "") {
			return fmt.Errorf("%w: revocation journal line %d", ErrCorrupt, line)
		}
		if err := fn(e, int64(len(b))); err != nil {
			return err
		}
	}
}

// record applies an entry to the memory list.
func (r *Revocations) record(ctx context.Context, e journalEntry) error {
	var err error
	if e.JTI != "" {
		err = r.mem.RevokeJTI(ctx, e.JTI, e.Until)
	} else {
		err = r.mem.RevokeKID(ctx, e.KID, e.Before)
	}
	if err != nil {
		return fmt.Errorf("%w: revocation journal: %v", ErrCorrupt, err)
	}
	return nil
}

// needed reports whether the entry still revokes anything at now.
func (e journalEntry) needed(now time.Time) bool {
	return e.KID != "" || verifier.RevocationHorizon(e.Until).After(now)
}

// RevokeJTI revokes the token with this jti until the given time plus
// verifier.MaxLeeway. It returns once the revocation is on disk. An until
// whose horizon has passed changes nothing; one outside
// verifier.CheckRevocationTime's range is refused.
func (r *Revocations) RevokeJTI(ctx context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("%w: empty jti", verifier.ErrArgument)
	}
	if err := verifier.CheckRevocationTime("until", until); err != nil {
		return err
	}
	return r.append(ctx, journalEntry{JTI: jti, Until: until.UTC()})
}

// RevokeJTIs revokes many jtis, each until its time plus
// verifier.MaxLeeway, in one journal write and one sync
// (keyring.JTIBatchRevoker: an emergency rotation's recorded tokens). It
// refuses the whole batch if one entry is refused.
func (r *Revocations) RevokeJTIs(ctx context.Context, jtis map[string]time.Time) error {
	es := make([]journalEntry, 0, len(jtis))
	for jti, until := range jtis {
		if jti == "" {
			return fmt.Errorf("%w: empty jti", verifier.ErrArgument)
		}
		if err := verifier.CheckRevocationTime("until", until); err != nil {
			return err
		}
		es = append(es, journalEntry{JTI: jti, Until: until.UTC()})
	}
	return r.append(ctx, es...)
}

// RevokeKID revokes every token of kid issued before issuedBefore, for
// good. It returns once the revocation is on disk.
func (r *Revocations) RevokeKID(ctx context.Context, kid string, issuedBefore time.Time) error {
	if kid == "" {
		return fmt.Errorf("%w: empty kid", verifier.ErrArgument)
	}
	if err := verifier.CheckRevocationTime("issuedBefore", issuedBefore); err != nil {
		return err
	}
	return r.append(ctx, journalEntry{KID: kid, Before: issuedBefore.UTC()})
}

// append writes the entries still needed to the journal in one write,
// syncs it, then records them in memory, compacting the journal when it
// has doubled.
func (r *Revocations) append(ctx context.Context, es ...journalEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := r.clock()
	var buf []byte
	var kept []journalEntry
	for _, e := range es {
		if !e.needed(now) {
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("filestore: revocation journal: encode: %w", err)
		}
		buf, kept = append(append(buf, b...), '\n'), append(kept, e)
	}
	if len(kept) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return ErrClosed
	}
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("filestore: revocation journal: %w", err)
	}
	if err := r.writeSynced(buf); err != nil {
		// Cut what a failed write may have left, so that the next append
		// does not follow a partial line.
		return errors.Join(err, r.f.Truncate(fi.Size()))
	}
	r.lines += len(kept)
	for _, e := range kept {
		if err := r.record(ctx, e); err != nil {
			return err
		}
	}
	if r.lines >= compactMin && r.lines >= 2*r.compacted {
		return r.compactLocked(now)
	}
	return nil
}

// writeSynced appends b to the journal and syncs it; r.mu is held.
func (r *Revocations) writeSynced(b []byte) error {
	if _, err := r.f.Write(b); err != nil {
		return fmt.Errorf("filestore: revocation journal: write: %w", err)
	}
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("filestore: revocation journal: sync: %w", err)
	}
	return nil
}

// compactLocked rewrites the journal atomically with only the entries
// still needed at now, and reopens it for appending; r.mu is held (or r
// is not yet shared).
func (r *Revocations) compactLocked(now time.Time) error {
	var buf bytes.Buffer
	kept := 0
	err := r.scan(func(e journalEntry, _ int64) error {
		if !e.needed(now) {
			return nil
		}
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("filestore: revocation journal: encode: %w", err)
		}
		buf.Write(append(b, '\n'))
		kept++
		return nil
	})
	if err != nil {
		return err
	}
	if err := writeAtomic(r.path, buf.Bytes()); err != nil {
		return err
	}
	f, _, err := openFile(r.path, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return err
	}
	r.f.Close()
	r.f, r.lines, r.compacted = f, kept, kept
	return nil
}

// Revoked reports whether the token is revoked, from memory.
func (r *Revocations) Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	return r.mem.Revoked(ctx, kid, jti, issuedAt)
}

// Memory returns the in-memory list that answers lookups (for its Stats
// and whatever else it exposes). Revocations written to it directly are
// not durable: revoke through r.
func (r *Revocations) Memory() *verifier.MemoryRevocationList { return r.mem }

// close closes the journal; further revocations fail with ErrClosed.
func (r *Revocations) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// String names the journal without its content.
func (r *Revocations) String() string { return "filestore.Revocations(" + r.path + ")" }
