package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Listen calls onChange once it listens, then after every committed change
// to keys or revocations of this schema (by any replica), until ctx ends
// or the connection fails; it returns the reason. Notifications that
// arrive together may be coalesced into one call. A host calls it in a loop
// (the first call after a reconnect covers what was missed) with
// keyring.Keyring.Refresh in onChange, and refreshes on a timer as well.
func (s *Store) Listen(ctx context.Context, onChange func()) error {
	return s.listen(ctx, func(string) { onChange() })
}

// listen is Listen with the name of the changed table passed to
// onChange; the call made once listening starts passes "".
func (s *Store) listen(ctx context.Context, onChange func(table string)) error {
	err := s.listenOnce(ctx, onChange)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("pgstore: listening for changes failed; changes by other replicas are seen on the next reload", "err", err)
	}
	return err
}

func (s *Store) listenOnce(ctx context.Context, onChange func(table string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: listen: %w", err)
	}
	// The connection leaves the pool: it carries a LISTEN registration.
	c := conn.Hijack()
	defer c.Close(context.WithoutCancel(ctx))
	var schema string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("pgstore: listen: %w", err)
	}
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{"tokenkms_changes:" + schema}.Sanitize()); err != nil {
		return fmt.Errorf("pgstore: listen: %w", err)
	}
	onChange("")
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("pgstore: listen: %w", err)
		}
		onChange(n.Payload)
	}
}

// TryLead tries to become the one replica that runs scheduled transitions
// (keyring.Keyring.Tick). It holds a session advisory lock on a dedicated
// connection: ok is true if this caller got it, and release gives it up.
// If the process dies, the connection closes and the lock goes with it.
// When ok is false, release is a no-op.
func (s *Store) TryLead(ctx context.Context) (release func(), ok bool, err error) {
	release, ok, err = s.tryLead(ctx)
	switch {
	case err != nil:
		s.log.Warn("pgstore: cannot take the scheduler lease", "err", err)
	case ok && s.lead.Swap(leading) != leading:
		s.log.Info("pgstore: this replica now leads the scheduler")
	case !ok && s.lead.Swap(following) != following:
		s.log.Info("pgstore: another replica leads the scheduler")
	}
	return release, ok, err
}

// The answers of TryLead remembered in Store.lead, to log changes only.
const (
	leading   = 1
	following = 2
)

func (s *Store) tryLead(ctx context.Context) (release func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return func() {}, false, fmt.Errorf("pgstore: lead: %w", err)
	}
	c := conn.Hijack()
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext(current_schema() || ':tokenkms-lead'))`).Scan(&ok); err != nil {
		c.Close(context.WithoutCancel(ctx))
		return func() {}, false, fmt.Errorf("pgstore: lead: %w", err)
	}
	if !ok {
		c.Close(context.WithoutCancel(ctx))
		return func() {}, false, nil
	}
	return func() { c.Close(context.Background()) }, true, nil
}
