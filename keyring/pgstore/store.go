package pgstore

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/verifier"
)

// Store is a keyring.KeyStore, keyring.BatchUpdater,
// verifier.RevocationList and audit.Sink over PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
	log  *slog.Logger
	lead atomic.Int32 // last TryLead answer: 0 none yet, leading, following
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock the revocation list reads (default time.Now):
// a jti is revoked while now is before its until.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithLogger logs the store's operational events: changes of scheduler
// leadership (TryLead), failures of the listening connection (Listen,
// RevocationCache.Run) and of the revocation cache's reloads. Nil, or
// without it: nothing is logged. Never a revoked jti, a key's reference
// or connection details.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// New returns a store over pool. The schema must have been migrated.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.log = telemetry.Logger(s.log)
	return s
}

// String names the store without connection details.
func (s *Store) String() string { return "pgstore.Store" }

const keyColumns = `kid, set_name, purpose, alg, state, owner, created_by, created_at, rotate_by,
	approved_by, approved_at, activate_at, activated_at, retiring_at, grace_until, retired_at,
	compromised_at, destroyed_at, incident, backend, backend_ref, public_der, standby, version`

// ts converts a time to a nullable timestamptz: the zero time is NULL.
func ts(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func unts(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// args returns the column values of k in keyColumns order, version last.
func args(k keyring.Key, version int64) ([]any, error) {
	if k.KID == "" {
		return nil, fmt.Errorf("%w: empty kid", ErrInvalidKey)
	}
	if k.CreatedAt.IsZero() {
		return nil, fmt.Errorf("%w: %s has no creation time", ErrInvalidKey, k.KID)
	}
	if err := keyring.CheckRecord(k); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	var der []byte
	if k.Public != nil {
		b, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: public key: %v", ErrInvalidKey, k.KID, err)
		}
		der = b
	}
	return []any{k.KID, k.Set, int(k.Purpose), k.Algorithm, int(k.State), k.Owner, k.CreatedBy,
		k.CreatedAt.UTC(), ts(k.RotateBy), k.ApprovedBy, ts(k.ApprovedAt), ts(k.ActivateAt),
		ts(k.ActivatedAt), ts(k.RetiringAt), ts(k.GraceUntil), ts(k.RetiredAt), ts(k.CompromisedAt),
		ts(k.DestroyedAt), k.Incident, k.Backend, k.BackendRef.Reveal(), der, k.Standby, version}, nil
}

func scanKey(row pgx.Row) (keyring.Key, error) {
	var (
		k                                   keyring.Key
		purpose, state                      int
		created                             time.Time
		rotateBy, approvedAt, activateAt    *time.Time
		activatedAt, retiringAt, graceUntil *time.Time
		retiredAt, compromisedAt, destroyed *time.Time
		ref                                 string
		der                                 []byte
	)
	if err := row.Scan(&k.KID, &k.Set, &purpose, &k.Algorithm, &state, &k.Owner, &k.CreatedBy, &created,
		&rotateBy, &k.ApprovedBy, &approvedAt, &activateAt, &activatedAt, &retiringAt, &graceUntil,
		&retiredAt, &compromisedAt, &destroyed, &k.Incident, &k.Backend, &ref, &der, &k.Standby, &k.Version); err != nil {
		return keyring.Key{}, err
	}
	k.Purpose, k.State, k.BackendRef = keyring.Purpose(purpose), keyring.State(state), keyring.Hide(ref)
	if err := keyring.CheckRecord(k); err != nil {
		return keyring.Key{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	k.CreatedAt, k.RotateBy, k.ApprovedAt, k.ActivateAt = created.UTC(), unts(rotateBy), unts(approvedAt), unts(activateAt)
	k.ActivatedAt, k.RetiringAt, k.GraceUntil = unts(activatedAt), unts(retiringAt), unts(graceUntil)
	k.RetiredAt, k.CompromisedAt, k.DestroyedAt = unts(retiredAt), unts(compromisedAt), unts(destroyed)
	if der != nil {
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return keyring.Key{}, fmt.Errorf("%w: %s: public key does not parse", ErrCorrupt, k.KID)
		}
		k.Public = pub
	}
	return k, nil
}

// Get returns the key named kid.
func (s *Store) Get(ctx context.Context, kid string) (keyring.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM tokenkms_keys WHERE kid = $1`, kid))
	if errors.Is(err, pgx.ErrNoRows) {
		return keyring.Key{}, fmt.Errorf("%w: %s", keyring.ErrNotFound, kid)
	}
	if err != nil {
		return keyring.Key{}, fmt.Errorf("pgstore: get %s: %w", kid, err)
	}
	return k, nil
}

// List returns the keys that match f, ordered by CreatedAt then KID.
func (s *Store) List(ctx context.Context, f keyring.Filter) ([]keyring.Key, error) {
	states := make([]int32, len(f.States))
	for i, st := range f.States {
		states[i] = int32(st)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM tokenkms_keys
		WHERE ($1 = '' OR set_name = $1) AND (cardinality($2::integer[]) = 0 OR state = ANY($2))
		ORDER BY created_at, kid COLLATE "C"`, f.Set, states)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	defer rows.Close()
	var out []keyring.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("pgstore: list: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	return out, nil // ORDER BY is SortKeys' order: created_at, then kid bytewise
}

// Put stores a new key with Version 1.
func (s *Store) Put(ctx context.Context, k keyring.Key) error {
	a, err := args(k, 1)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO tokenkms_keys (`+keyColumns+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)
		ON CONFLICT (kid) DO NOTHING`, a...)
	if err != nil {
		return writeError("put", k.KID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", keyring.ErrExists, k.KID)
	}
	return nil
}

// Update replaces a key whose stored version is expectVersion.
func (s *Store) Update(ctx context.Context, k keyring.Key, expectVersion int64) error {
	return s.UpdateBatch(ctx, []keyring.KeyUpdate{{Key: k, ExpectVersion: expectVersion}})
}

// UpdateBatch applies every update or none, in one transaction.
func (s *Store) UpdateBatch(ctx context.Context, updates []keyring.KeyUpdate) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	for _, u := range updates {
		a, err := args(u.Key, u.ExpectVersion+1)
		if err != nil {
			return err
		}
		a = append(a, u.ExpectVersion)
		tag, err := tx.Exec(ctx, `UPDATE tokenkms_keys SET
			set_name=$2, purpose=$3, alg=$4, state=$5, owner=$6, created_by=$7, created_at=$8, rotate_by=$9,
			approved_by=$10, approved_at=$11, activate_at=$12, activated_at=$13, retiring_at=$14,
			grace_until=$15, retired_at=$16, compromised_at=$17, destroyed_at=$18, incident=$19,
			backend=$20, backend_ref=$21, public_der=$22, standby=$23, version=$24
			WHERE kid = $1 AND version = $25`, a...)
		if err != nil {
			return writeError("update", u.Key.KID, err)
		}
		if tag.RowsAffected() == 1 {
			continue
		}
		var v int64
		err = tx.QueryRow(ctx, `SELECT version FROM tokenkms_keys WHERE kid = $1`, u.Key.KID).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", keyring.ErrNotFound, u.Key.KID)
		}
		if err != nil {
			return fmt.Errorf("pgstore: update %s: %w", u.Key.KID, err)
		}
		return fmt.Errorf("%w: %s at version %d, expected %d", keyring.ErrConflict, u.Key.KID, v, u.ExpectVersion)
	}
	if err := tx.Commit(ctx); err != nil {
		return writeError("commit", "", err)
	}
	return nil
}

// writeError maps a second Active key in a set (the partial unique index)
// and serialisation failures to keyring.ErrConflict.
func writeError(op, kid string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505" && strings.Contains(pe.ConstraintName, "one_active"):
			return fmt.Errorf("%w: %s %s: the set already has an active key", keyring.ErrConflict, op, kid)
		case pe.Code == "23505" && strings.Contains(pe.ConstraintName, "one_standby"):
			return fmt.Errorf("%w: %s %s: the set already has a standby key", keyring.ErrConflict, op, kid)
		case pe.Code == "23505" && strings.Contains(pe.ConstraintName, "one_successor"):
			return fmt.Errorf("%w: %s %s: a rotation of the set is already in progress", keyring.ErrConflict, op, kid)
		case pe.Code == "40001" || pe.Code == "40P01":
			return fmt.Errorf("%w: %s %s: %s", keyring.ErrConflict, op, kid, pe.Code)
		}
	}
	return fmt.Errorf("pgstore: %s %s: %w", op, kid, err)
}

// RevokeJTI revokes the token with this jti until the given time, plus
// MaxLeeway (verifier.RevocationHorizon); a second call keeps the later
// until, an until whose horizon has passed changes nothing, one out of
// range is refused (verifier.CheckRevocationTime).
func (s *Store) RevokeJTI(ctx context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("%w: empty jti", verifier.ErrArgument)
	}
	if err := verifier.CheckRevocationTime("until", until); err != nil {
		return err
	}
	if !verifier.RevocationHorizon(until).After(s.now()) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO tokenkms_revoked_jti (jti, until) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET until = greatest(tokenkms_revoked_jti.until, excluded.until)`,
		jti, until.UTC()); err != nil {
		return fmt.Errorf("pgstore: revoke jti: %w", err)
	}
	return nil
}

// RevokeJTIs revokes many jtis, each until its time, in one statement and
// one commit (keyring.JTIBatchRevoker: an emergency rotation revokes the
// recorded tokens of a key without one fsync per token). As for RevokeJTI,
// a later until wins and a past one changes nothing.
func (s *Store) RevokeJTIs(ctx context.Context, jtis map[string]time.Time) error {
	now := s.now()
	ids := make([]string, 0, len(jtis))
	untils := make([]time.Time, 0, len(jtis))
	for jti, until := range jtis {
		if jti == "" {
			return fmt.Errorf("%w: empty jti", verifier.ErrArgument)
		}
		if err := verifier.CheckRevocationTime("until", until); err != nil {
			return err
		}
		if verifier.RevocationHorizon(until).After(now) {
			ids, untils = append(ids, jti), append(untils, until.UTC())
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO tokenkms_revoked_jti (jti, until)
		SELECT * FROM unnest($1::text[], $2::timestamptz[])
		ON CONFLICT (jti) DO UPDATE SET until = greatest(tokenkms_revoked_jti.until, excluded.until)`,
		ids, untils); err != nil {
		return fmt.Errorf("pgstore: revoke %d jtis: %w", len(ids), err)
	}
	return nil
}

// RevokeKID revokes every token of kid issued before issuedBefore; a
// later cutoff extends the policy, an earlier one changes nothing.
func (s *Store) RevokeKID(ctx context.Context, kid string, issuedBefore time.Time) error {
	if kid == "" {
		return fmt.Errorf("%w: empty kid", verifier.ErrArgument)
	}
	if err := verifier.CheckRevocationTime("issuedBefore", issuedBefore); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO tokenkms_revoked_kid (kid, issued_before) VALUES ($1, $2)
		ON CONFLICT (kid) DO UPDATE SET issued_before = greatest(tokenkms_revoked_kid.issued_before, excluded.issued_before)`,
		kid, issuedBefore.UTC()); err != nil {
		return fmt.Errorf("pgstore: revoke kid %s: %w", kid, err)
	}
	return nil
}

// Revoked reports whether the token (kid, jti, issuedAt) is revoked. It
// queries the database on every call: the verification hot path uses a
// RevocationCache instead (Store.RevocationCache).
func (s *Store) Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM tokenkms_revoked_kid WHERE kid = $1 AND $3 < issued_before)
		OR EXISTS (SELECT 1 FROM tokenkms_revoked_jti WHERE jti = $2 AND until > $4)`,
		kid, jti, issuedAt.UTC(), s.horizonStart()).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("pgstore: revocation check: %w", err)
	}
	return revoked, nil
}

// horizonStart is the earliest until of a jti still revoked now: a jti
// stays revoked until its RevocationHorizon.
func (s *Store) horizonStart() time.Time {
	return s.now().UTC().Add(-verifier.MaxLeeway)
}

// Purge deletes the jti revocations whose horizon (until + MaxLeeway) has
// passed and returns how many went. Kid policies are never purged.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tokenkms_revoked_jti WHERE until <= $1`, s.horizonStart())
	if err != nil {
		return 0, fmt.Errorf("pgstore: purge: %w", err)
	}
	return tag.RowsAffected(), nil
}
