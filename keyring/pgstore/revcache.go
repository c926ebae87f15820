package pgstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenkms/tokenkms/verifier"
)

// Defaults of CacheConfig.
const (
	DefaultMaxStaleness = 10 * time.Second
	defaultRetry        = time.Second
)

// CacheConfig configures a RevocationCache. The zero value is usable.
type CacheConfig struct {
	// MaxStaleness bounds how old the cache may be: Revoked fails with
	// ErrRevocationsStale when the last complete reload started longer
	// ago than this (or none has completed yet). Default
	// DefaultMaxStaleness.
	MaxStaleness time.Duration
	// ReloadEvery is the period of Run's full reload, the backstop for
	// notifications lost while the listening connection was down. It must
	// be shorter than MaxStaleness; default MaxStaleness/3.
	ReloadEvery time.Duration
	// Retry is how long Run waits before listening again after the
	// listening connection failed; default 1 s.
	Retry time.Duration
	// Clock measures staleness; default time.Now. It is not the clock
	// that decides whether a jti revocation has expired: that is the
	// Store's (WithClock).
	Clock func() time.Time
	// OnError, when set, receives the failures Run survives (a reload
	// that failed, a listening connection that broke). Errors never
	// include revoked jtis or kids.
	OnError func(error)
	// Log, when set, keeps the change log a revocation feed publishes
	// (jwks.NewRevocationHandler over the cache: Since, Wait, Cursor): a
	// verifier.NewLoggedRevocationList into which every reload and every
	// write of this cache is merged. It costs a second copy of the live
	// revocations in memory and a merge of every row at each reload (only
	// new revocations are logged). Each replica's log has an epoch of its
	// own: a feed client that moves to another replica takes a full
	// snapshot, so serve the feed from one replica, or keep clients on one.
	Log bool
}

func (c CacheConfig) withDefaults() (CacheConfig, error) {
	if c.MaxStaleness == 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	if c.ReloadEvery == 0 {
		c.ReloadEvery = c.MaxStaleness / 3
	}
	if c.Retry == 0 {
		c.Retry = defaultRetry
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.OnError == nil {
		c.OnError = func(error) {}
	}
	switch {
	case c.MaxStaleness < 0 || c.ReloadEvery < 0 || c.Retry < 0:
		return c, fmt.Errorf("%w: negative duration", ErrCacheConfig)
	case c.ReloadEvery >= c.MaxStaleness:
		return c, fmt.Errorf("%w: reload period %v is not shorter than the maximum staleness %v", ErrCacheConfig, c.ReloadEvery, c.MaxStaleness)
	}
	return c, nil
}

// RevocationCache is a verifier.RevocationList for the verification hot
// path: Revoked answers from an in-memory copy of the store's revocations
// and never queries the database. Run keeps the copy fresh: a full reload
// on every revocation change any replica commits (LISTEN/NOTIFY), and
// every ReloadEvery as a backstop.
//
// It fails closed: until a first reload has completed, and whenever the
// last completed reload started more than MaxStaleness ago (the database
// or the network is down), Revoked returns ErrRevocationsStale, which the
// verifier turns into verifier.ErrRevocationCheck: tokens are refused
// rather than accepted unchecked.
//
// RevokeJTI and RevokeKID write through: the database first (so every
// replica learns of it), then this cache, so a replica sees its own
// revocations at once, before the notification comes back.
type RevocationCache struct {
	store *Store
	cfg   CacheConfig

	cur      atomic.Pointer[revSnapshot]
	reloadMu sync.Mutex // one reload at a time
	mu       sync.Mutex // guards reloading, overlay and writes to cur's list
	// While a reload runs, local writes are also recorded here and
	// replayed on the reloaded list: its read may predate them.
	reloading bool
	overlay   []revWrite
	dirty     chan struct{}

	log *verifier.MemoryRevocationList // nil unless cfg.Log
}

type revSnapshot struct {
	list     *verifier.MemoryRevocationList
	loadedAt time.Time // when the reload that built list started (cfg.Clock)
}

// revWrite is one revocation: a jti until a time, or a kid before a cutoff.
type revWrite struct {
	kid, jti string
	t        time.Time
}

func (w revWrite) apply(ctx context.Context, l *verifier.MemoryRevocationList) error {
	if w.jti != "" {
		return l.RevokeJTI(ctx, w.jti, w.t)
	}
	return l.RevokeKID(ctx, w.kid, w.t)
}

// RevocationCache returns an empty cache over the store's revocations.
// It answers Revoked once Reload or Run has loaded it. It fails with
// ErrCacheConfig if cfg is contradictory.
func (s *Store) RevocationCache(cfg CacheConfig) (*RevocationCache, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &RevocationCache{store: s, cfg: cfg, dirty: make(chan struct{}, 1)}
	if cfg.Log {
		c.log = verifier.NewLoggedRevocationList(s.now)
	}
	return c, nil
}

// Stats returns the size of the cache's current copy (zero before the
// first load): verifier.RevocationSizer, for the Verifier's metrics.
func (c *RevocationCache) Stats() verifier.RevocationStats {
	if cur := c.cur.Load(); cur != nil {
		return cur.list.Stats()
	}
	return verifier.RevocationStats{}
}

// RevocationUpdatedAt is when the reload that built the current copy
// started, zero before the first one (verifier.RevocationFreshness: the
// Verifier exports the cache's staleness).
func (c *RevocationCache) RevocationUpdatedAt() time.Time {
	if cur := c.cur.Load(); cur != nil {
		return cur.loadedAt
	}
	return time.Time{}
}

// String describes the cache without its content.
func (c *RevocationCache) String() string {
	return fmt.Sprintf("pgstore.RevocationCache(max staleness %v)", c.cfg.MaxStaleness)
}

// Revoked reports whether the token (kid, jti, issuedAt) is revoked, from
// memory. It fails with ErrRevocationsStale if the cache has not been
// loaded or is older than MaxStaleness.
func (c *RevocationCache) Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	snap, err := c.fresh()
	if err != nil {
		return false, err
	}
	return snap.list.Revoked(ctx, kid, jti, issuedAt)
}

// fresh returns the current snapshot, or ErrRevocationsStale.
func (c *RevocationCache) fresh() (*revSnapshot, error) {
	snap := c.cur.Load()
	if snap == nil {
		return nil, fmt.Errorf("%w: not loaded yet", ErrRevocationsStale)
	}
	if age := c.cfg.Clock().Sub(snap.loadedAt); age > c.cfg.MaxStaleness {
		return nil, fmt.Errorf("%w: last reload %v ago, more than %v", ErrRevocationsStale, age.Round(time.Millisecond), c.cfg.MaxStaleness)
	}
	return snap, nil
}

// Since returns the changes of the cache's log after cursor (see
// verifier.MemoryRevocationList.Since), for a revocation feed. It fails
// with verifier.ErrNotLogged without CacheConfig.Log, and with
// ErrRevocationsStale when Revoked would: a feed never signs stale data
// as fresh.
func (c *RevocationCache) Since(epoch, cursor uint64) (verifier.RevocationChanges, error) {
	if c.log == nil {
		return verifier.RevocationChanges{}, verifier.ErrNotLogged
	}
	if _, err := c.fresh(); err != nil {
		return verifier.RevocationChanges{}, err
	}
	return c.log.Since(epoch, cursor)
}

// Wait blocks until the log has changes after cursor, or ctx is done (see
// verifier.MemoryRevocationList.Wait). It fails with verifier.ErrNotLogged
// without CacheConfig.Log.
func (c *RevocationCache) Wait(ctx context.Context, epoch, cursor uint64) error {
	if c.log == nil {
		return verifier.ErrNotLogged
	}
	return c.log.Wait(ctx, epoch, cursor)
}

// Cursor returns the log's epoch and head. It fails with
// verifier.ErrNotLogged without CacheConfig.Log.
func (c *RevocationCache) Cursor() (epoch, head uint64, err error) {
	if c.log == nil {
		return 0, 0, verifier.ErrNotLogged
	}
	return c.log.Cursor()
}

// RevokeJTI records the revocation in the database, then in this cache.
func (c *RevocationCache) RevokeJTI(ctx context.Context, jti string, until time.Time) error {
	if err := c.store.RevokeJTI(ctx, jti, until); err != nil {
		return err
	}
	return c.local(ctx, revWrite{jti: jti, t: until})
}

// RevokeJTIs records many jti revocations in the database in one commit,
// then in this cache (keyring.JTIBatchRevoker).
func (c *RevocationCache) RevokeJTIs(ctx context.Context, jtis map[string]time.Time) error {
	if err := c.store.RevokeJTIs(ctx, jtis); err != nil {
		return err
	}
	for jti, until := range jtis {
		if err := c.local(ctx, revWrite{jti: jti, t: until}); err != nil {
			return err
		}
	}
	return nil
}

// RevokeKID records the kid policy in the database, then in this cache.
func (c *RevocationCache) RevokeKID(ctx context.Context, kid string, issuedBefore time.Time) error {
	if err := c.store.RevokeKID(ctx, kid, issuedBefore); err != nil {
		return err
	}
	return c.local(ctx, revWrite{kid: kid, t: issuedBefore})
}

// local applies a committed write to the cache. Times are cut to the
// database's microsecond precision, so that the cache answers exactly as
// a reload would.
func (c *RevocationCache) local(ctx context.Context, w revWrite) error {
	w.t = w.t.Truncate(time.Microsecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reloading {
		c.overlay = append(c.overlay, w)
	}
	var list *verifier.MemoryRevocationList
	if snap := c.cur.Load(); snap != nil {
		list = snap.list
	}
	return c.merge(ctx, w, list)
}

// merge applies w to the log, when the cache keeps one, and to list, when
// not nil.
func (c *RevocationCache) merge(ctx context.Context, w revWrite, list *verifier.MemoryRevocationList) error {
	if c.log != nil {
		if err := w.apply(ctx, c.log); err != nil {
			return err
		}
	}
	if list == nil {
		return nil
	}
	return w.apply(ctx, list)
}

// Reload replaces the cache with the revocations in the database now
// (jtis not yet expired by the store's clock, every kid policy). On
// failure the cache keeps its previous content and age.
func (c *RevocationCache) Reload(ctx context.Context) error {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	c.mu.Lock()
	c.reloading, c.overlay = true, nil
	c.mu.Unlock()
	start := c.cfg.Clock()
	list, err := c.read(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	overlay := c.overlay
	c.reloading, c.overlay = false, nil
	if err != nil {
		return err
	}
	for _, w := range overlay {
		if err := w.apply(ctx, list); err != nil {
			return fmt.Errorf("pgstore: revocation cache: %w", err)
		}
	}
	c.cur.Store(&revSnapshot{list: list, loadedAt: start})
	return nil
}

// read loads the revocations in one consistent snapshot of the database.
func (c *RevocationCache) read(ctx context.Context) (*verifier.MemoryRevocationList, error) {
	list := verifier.NewMemoryRevocationList(c.store.now)
	tx, err := c.store.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("pgstore: revocation cache: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	load := func(query string, args []any, add func(id string, t time.Time) error) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("pgstore: revocation cache: %w", err)
		}
		defer rows.Close()
		var (
			id string
			t  time.Time
		)
		for rows.Next() {
			if err := rows.Scan(&id, &t); err != nil {
				return fmt.Errorf("pgstore: revocation cache: %w", err)
			}
			if err := add(id, t); err != nil {
				return fmt.Errorf("%w: revocation row refused: %v", ErrCorrupt, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("pgstore: revocation cache: %w", err)
		}
		return nil
	}
	// Rows are merged into the log as they are read: a row is a committed
	// revocation, so merging it is right even if the reload fails later.
	if err := load(`SELECT jti, until FROM tokenkms_revoked_jti WHERE until > $1`, []any{c.store.horizonStart()},
		func(jti string, until time.Time) error { return c.merge(ctx, revWrite{jti: jti, t: until}, list) }); err != nil {
		return nil, err
	}
	if err := load(`SELECT kid, issued_before FROM tokenkms_revoked_kid`, nil,
		func(kid string, cut time.Time) error { return c.merge(ctx, revWrite{kid: kid, t: cut}, list) }); err != nil {
		return nil, err
	}
	return list, nil
}

// Run keeps the cache fresh until ctx ends, and returns ctx's error. It
// loads the cache at once, listens for revocation changes on a dedicated
// connection (reloading after each, notifications that arrive during a
// reload coalesced into one more), reloads every ReloadEvery whatever
// happens, and after a failure of the listening connection listens again
// after Retry (and reloads, to cover what was missed). Failures go to
// OnError; Revoked fails closed once the cache is too old.
func (c *RevocationCache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.listenLoop(ctx)
	}()
	defer wg.Wait()
	tick := time.NewTicker(c.cfg.ReloadEvery)
	defer tick.Stop()
	for {
		if err := c.Reload(ctx); err != nil && ctx.Err() == nil {
			c.store.log.Warn("pgstore: revocation cache reload failed; Revoked fails closed once the cache is stale",
				"max_staleness", c.cfg.MaxStaleness, "err", err)
			c.cfg.OnError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.dirty:
		case <-tick.C:
		}
	}
}

func (c *RevocationCache) listenLoop(ctx context.Context) {
	for {
		err := c.store.listen(ctx, func(table string) {
			switch table {
			case "", "tokenkms_revoked_jti", "tokenkms_revoked_kid":
				select {
				case c.dirty <- struct{}{}:
				default:
				}
			}
		})
		if ctx.Err() != nil {
			return
		}
		c.cfg.OnError(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.Retry):
		}
	}
}
