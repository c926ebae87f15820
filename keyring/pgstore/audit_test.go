package pgstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
)

func auditEvent(i int) audit.Event {
	return audit.Event{
		ID:      fmt.Sprintf("ev-%d", i),
		Time:    time.Date(2030, 1, 1, 0, 0, i, 0, time.UTC),
		Type:    audit.KeyRotated,
		Set:     "access-tokens",
		KID:     fmt.Sprintf("kid-%d", i),
		Actor:   "alice",
		Outcome: audit.Success,
		Details: map[string]string{"successor": fmt.Sprintf("kid-%d", i+1)},
	}
}

// emitN appends n events to a fresh chain and returns the store and pool.
func emitN(t *testing.T, n int) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	s, pool := newStore(t)
	for i := range n {
		if err := s.Emit(testCtx(t), auditEvent(i+1)); err != nil {
			t.Fatalf("Emit #%d: %v", i+1, err)
		}
	}
	return s, pool
}

// TestAuditChainMatchesFileChain: the same events give the same head in
// the database and in an audit.ChainLog file: one chaining rule.
func TestAuditChainMatchesFileChain(t *testing.T) {
	const n = 5
	s, _ := emitN(t, n)
	log, err := audit.OpenChain(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatalf("OpenChain: %v", err)
	}
	defer log.Close()
	for i := range n {
		if err := log.Emit(testCtx(t), auditEvent(i+1)); err != nil {
			t.Fatalf("file Emit: %v", err)
		}
	}
	wantSeq, wantHash := log.Head()
	gotSeq, gotHash, err := s.AuditHead(testCtx(t))
	if err != nil {
		t.Fatalf("AuditHead: %v", err)
	}
	if gotSeq != wantSeq || gotHash != wantHash {
		t.Errorf("database head = %d %s, want the file chain's %d %s", gotSeq, gotHash, wantSeq, wantHash)
	}
	got, err := s.VerifyAudit(testCtx(t))
	if err != nil || got != n {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", got, err, n)
	}
}

func TestAuditEmptyChainVerifies(t *testing.T) {
	s, _ := newStore(t)
	n, err := s.VerifyAudit(testCtx(t))
	if err != nil || n != 0 {
		t.Errorf("VerifyAudit(empty) = %d, %v; want 0, nil", n, err)
	}
	seq, hash, err := s.AuditHead(testCtx(t))
	if err != nil || seq != 0 || hash != audit.Genesis {
		t.Errorf("AuditHead(empty) = %d, %s, %v; want 0, Genesis, nil", seq, hash, err)
	}
}

func TestAuditEmitRefusesInvalidEvent(t *testing.T) {
	s, _ := newStore(t)
	for _, tc := range []struct {
		name   string
		mutate func(*audit.Event)
	}{
		{"no type", func(e *audit.Event) { e.Type = "" }},
		{"no actor", func(e *audit.Event) { e.Actor = "" }},
		{"unknown outcome", func(e *audit.Event) { e.Outcome = "maybe" }},
		{"oversized", func(e *audit.Event) { e.Reason = strings.Repeat("x", audit.MaxRecordSize) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := auditEvent(1)
			tc.mutate(&e)
			if err := s.Emit(testCtx(t), e); !errors.Is(err, audit.ErrInvalidEvent) {
				t.Errorf("Emit error = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if n, err := s.VerifyAudit(testCtx(t)); err != nil || n != 0 {
		t.Errorf("after refused events VerifyAudit = %d, %v; want 0, nil", n, err)
	}
}

// TestAuditTamperDetected changes the audit table behind the store's back
// and checks that VerifyAudit names the first broken row.
func TestAuditTamperDetected(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name     string
		sql      string
		rehash   int64 // instead of sql: forge this row, chained correctly to the one before
		wantLine int
		wantSeq  uint64
		wantGood int
		reason   string
	}{
		{
			name:     "event modified",
			sql:      `UPDATE tokenkms_audit SET event = replace(event, '"alice"', '"mallory"') WHERE seq = 5`,
			wantLine: 5, wantSeq: 5, wantGood: 4, reason: "hash does not match",
		},
		{
			name:     "hash replaced",
			sql:      `UPDATE tokenkms_audit SET hash = encode(sha256(convert_to('forged', 'UTF8')), 'hex') WHERE seq = 5`,
			wantLine: 5, wantSeq: 5, wantGood: 4, reason: "hash does not match",
		},
		{
			name:     "event modified and its hash recomputed",
			rehash:   5,
			wantLine: 6, wantSeq: 6, wantGood: 5, reason: "prev does not match",
		},
		{
			name:     "non-canonical event",
			sql:      `UPDATE tokenkms_audit SET event = ' ' || event WHERE seq = 3`,
			wantLine: 3, wantSeq: 3, wantGood: 2, reason: "canonical",
		},
		{
			name:     "malformed event",
			sql:      `UPDATE tokenkms_audit SET event = '{"id":' WHERE seq = 2`,
			wantLine: 2, wantSeq: 2, wantGood: 1, reason: "malformed",
		},
		{
			name:     "unknown field in event",
			sql:      `UPDATE tokenkms_audit SET event = rtrim(event, '}') || ',"extra":1}' WHERE seq = 2`,
			wantLine: 2, wantSeq: 2, wantGood: 1, reason: "malformed",
		},
		{
			name:     "row deleted in the middle",
			sql:      `DELETE FROM tokenkms_audit WHERE seq = 4`,
			wantLine: 4, wantSeq: 4, wantGood: 3, reason: "sequence number 5, want 4",
		},
		{
			name:     "first row deleted",
			sql:      `DELETE FROM tokenkms_audit WHERE seq = 1`,
			wantLine: 1, wantSeq: 1, wantGood: 0, reason: "sequence number 2, want 1",
		},
		{
			name:     "last row deleted",
			sql:      `DELETE FROM tokenkms_audit WHERE seq = 8`,
			wantLine: 8, wantSeq: 8, wantGood: 7, reason: "records were lost",
		},
		{
			name: "rows reordered",
			sql: `UPDATE tokenkms_audit SET seq = 1000 WHERE seq = 3;
				UPDATE tokenkms_audit SET seq = 3 WHERE seq = 6;
				UPDATE tokenkms_audit SET seq = 6 WHERE seq = 1000`,
			wantLine: 3, wantSeq: 3, wantGood: 2, reason: "prev does not match",
		},
		{
			name: "contents of two rows swapped",
			sql: `UPDATE tokenkms_audit a SET prev = b.prev, event = b.event, hash = b.hash
				FROM tokenkms_audit b WHERE (a.seq, b.seq) IN ((3, 4), (4, 3))`,
			wantLine: 3, wantSeq: 3, wantGood: 2, reason: "prev does not match",
		},
		{
			name:     "row appended outside Emit",
			rehash:   9,
			wantLine: 9, wantSeq: 9, wantGood: 9, reason: "past the tip",
		},
		{
			name:     "row with a bad link appended",
			sql:      `INSERT INTO tokenkms_audit (seq, prev, event, hash) SELECT 9, hash, event, hash FROM tokenkms_audit WHERE seq = 8`,
			wantLine: 9, wantSeq: 9, wantGood: 8, reason: "hash does not match",
		},
		{
			name:     "tip rewritten",
			sql:      `UPDATE tokenkms_audit_head SET hash = (SELECT hash FROM tokenkms_audit WHERE seq = 7)`,
			wantLine: 8, wantSeq: 8, wantGood: 8, reason: "differs from the tip",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pool := emitN(t, n)
			if tc.rehash != 0 {
				forge(t, pool, tc.rehash)
			} else if _, err := pool.Exec(testCtx(t), tc.sql); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			good, err := s.VerifyAudit(testCtx(t))
			if !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("VerifyAudit error = %v, want ErrChainBroken", err)
			}
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("VerifyAudit error %T is not a *audit.ChainError", err)
			}
			if ce.Line != tc.wantLine || ce.Seq != tc.wantSeq {
				t.Errorf("broken link at line %d seq %d, want line %d seq %d (%s)", ce.Line, ce.Seq, tc.wantLine, tc.wantSeq, ce.Reason)
			}
			if good != tc.wantGood {
				t.Errorf("good records = %d, want %d", good, tc.wantGood)
			}
			if !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", ce.Reason, tc.reason)
			}
			if strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "mallory") {
				t.Errorf("error %q quotes the record's content", err)
			}
		})
	}
}

// forge writes row seq with actor "mallory" as an attacker who knows the
// chaining rule would: prev is the previous row's hash and the hash is
// right for the content. An existing row is replaced, else one is added.
func forge(t *testing.T, pool *pgxpool.Pool, seq int64) {
	t.Helper()
	var prev, body string
	if err := pool.QueryRow(testCtx(t), `SELECT (SELECT hash FROM tokenkms_audit WHERE seq = $1 - 1),
		(SELECT event FROM tokenkms_audit WHERE seq <= $1 ORDER BY seq DESC LIMIT 1)`, seq).Scan(&prev, &body); err != nil {
		t.Fatalf("read rows before %d: %v", seq, err)
	}
	var e audit.Event
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("decode row %d: %v", seq, err)
	}
	e.Actor = "mallory"
	h, err := audit.RecordHash(uint64(seq), prev, e)
	if err != nil {
		t.Fatalf("RecordHash: %v", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(testCtx(t), `INSERT INTO tokenkms_audit (seq, prev, event, hash) VALUES ($3, $4, $1, $2)
		ON CONFLICT (seq) DO UPDATE SET event = $1, hash = $2`, string(b), h, seq, prev); err != nil {
		t.Fatalf("rewrite row %d: %v", seq, err)
	}
}

// TestAuditConcurrentReplicas: three stores on three pools append at the
// same time; the result is one valid chain holding every event.
func TestAuditConcurrentReplicas(t *testing.T) {
	const replicas, workers, each = 3, 4, 15
	schema := newSchema(t)
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		pool := newPool(t, schema)
		if err := pgstore.Migrate(testCtx(t), pool); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		stores[i] = pgstore.New(pool)
	}
	var wg sync.WaitGroup
	for r, s := range stores {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					e := auditEvent(i + 1)
					e.ID = fmt.Sprintf("r%d-w%d-%d", r, w, i)
					if err := s.Emit(testCtx(t), e); err != nil {
						t.Errorf("replica %d Emit: %v", r, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	const want = replicas * workers * each
	for r, s := range stores {
		n, err := s.VerifyAudit(testCtx(t))
		if err != nil || n != want {
			t.Errorf("replica %d: VerifyAudit = %d, %v; want %d, nil", r, n, err, want)
		}
	}
}
