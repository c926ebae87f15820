package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tokenkms/tokenkms/audit"
)

// Emit appends e to the audit chain in the database (audit.Sink). The
// record is chained exactly like audit.ChainLog's: sequence number, the
// previous record's hash and audit.RecordHash over both and the event.
// The chain's tip row is locked for the transaction, so appends from every
// replica sharing the schema form one chain. Emit returns nil only once
// the record is committed; on any error nothing was appended.
func (s *Store) Emit(ctx context.Context, e audit.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("%w: encode: %v", audit.ErrInvalidEvent, err)
	}
	if len(body) > audit.MaxRecordSize {
		return fmt.Errorf("%w: event of %d bytes exceeds %d", audit.ErrInvalidEvent, len(body), audit.MaxRecordSize)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: audit: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	var (
		seq  uint64
		prev string
	)
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM tokenkms_audit_head WHERE id FOR UPDATE`).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("pgstore: audit: lock tip: %w", err)
	}
	seq++
	h, err := audit.RecordHash(seq, prev, e)
	if err != nil {
		return fmt.Errorf("%w: hash: %v", audit.ErrInvalidEvent, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tokenkms_audit (seq, prev, event, hash) VALUES ($1, $2, $3, $4)`,
		int64(seq), prev, string(body), h); err != nil {
		return fmt.Errorf("pgstore: audit: append: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE tokenkms_audit_head SET seq = $1, hash = $2 WHERE id`, int64(seq), h); err != nil {
		return fmt.Errorf("pgstore: audit: move tip: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: audit: commit: %w", err)
	}
	return nil
}

// AuditHead returns the sequence number and hash of the chain's last
// record (0 and audit.Genesis for an empty chain), as recorded in the tip
// row. A host may copy it elsewhere to detect a rewrite of the whole
// table, tip included.
func (s *Store) AuditHead(ctx context.Context) (seq uint64, hash string, err error) {
	if err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM tokenkms_audit_head WHERE id`).Scan(&seq, &hash); err != nil {
		return 0, "", fmt.Errorf("pgstore: audit head: %w", err)
	}
	return seq, hash, nil
}

// VerifyAudit reads the audit chain in sequence order and checks every
// link with the rules of audit.Verify: consecutive sequence numbers from
// 1, each prev equal to the previous record's hash, each hash equal to
// audit.RecordHash of the record, each event in canonical encoding; and
// the chain must end at the tip row (a chain that ends early lost records,
// one that goes past it gained records that Emit did not write).
//
// It returns the number of good records before the first broken one and,
// if the chain breaks, a *audit.ChainError (wrapping audit.ErrChainBroken)
// whose Line is the 1-based position of the offending row in sequence
// order and whose Seq is the sequence number expected there. A database
// failure is returned wrapped, not as a ChainError.
func (s *Store) VerifyAudit(ctx context.Context) (n int, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("pgstore: verify audit: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	var (
		tipSeq  uint64
		tipHash string
	)
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM tokenkms_audit_head WHERE id`).Scan(&tipSeq, &tipHash); err != nil {
		return 0, fmt.Errorf("pgstore: verify audit: read tip: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT seq, prev, event, hash FROM tokenkms_audit ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("pgstore: verify audit: %w", err)
	}
	defer rows.Close()
	var (
		seq  uint64
		head = audit.Genesis
	)
	broken := func(reason string) (int, error) {
		return n, &audit.ChainError{Line: n + 1, Seq: seq + 1, Reason: reason}
	}
	for rows.Next() {
		var (
			rowSeq     int64
			prev, hash string
			body       string
		)
		if err := rows.Scan(&rowSeq, &prev, &body, &hash); err != nil {
			return n, fmt.Errorf("pgstore: verify audit: %w", err)
		}
		if reason := checkLink(uint64(rowSeq), prev, body, hash, seq+1, head); reason != "" {
			return broken(reason)
		}
		n, seq, head = n+1, uint64(rowSeq), hash
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("pgstore: verify audit: %w", err)
	}
	switch {
	case seq < tipSeq:
		return broken(fmt.Sprintf("chain ends at seq %d but the tip is seq %d: records were lost", seq, tipSeq))
	case seq > tipSeq:
		return n, &audit.ChainError{Line: int(tipSeq) + 1, Seq: tipSeq + 1,
			Reason: fmt.Sprintf("chain goes on to seq %d past the tip at seq %d: records were added outside Emit", seq, tipSeq)}
	case head != tipHash:
		return n, &audit.ChainError{Line: n, Seq: seq, Reason: "hash differs from the tip's"}
	}
	return n, nil
}

// checkLink returns why the row (seq, prev, body, hash) cannot follow the
// record wantSeq-1 whose hash is head, or "" if it can. The reasons never
// quote the row's content.
func checkLink(seq uint64, prev, body, hash string, wantSeq uint64, head string) string {
	if seq != wantSeq {
		return fmt.Sprintf("sequence number %d, want %d", seq, wantSeq)
	}
	if prev != head {
		return "prev does not match the previous record's hash"
	}
	var e audit.Event
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() {
		return "malformed event"
	}
	h, err := audit.RecordHash(seq, prev, e)
	if err != nil {
		return "record cannot be re-encoded"
	}
	if h != hash {
		return "hash does not match the record's content"
	}
	canon, err := json.Marshal(e)
	if err != nil || !bytes.Equal(canon, []byte(body)) {
		return "event is not in canonical encoding"
	}
	return ""
}
