package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	sql     string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("%w: migration %s has no version number", ErrMigration, base)
		}
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate brings the schema of the pool's current schema up to date. It is
// idempotent and may run concurrently from several replicas: an advisory
// transaction lock serialises them and applied versions are recorded.
// It fails with ErrSchema if the database was migrated by a newer build.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%w: begin: %v", ErrMigration, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':tokenkms-migrate'))`); err != nil {
		return fmt.Errorf("%w: lock: %v", ErrMigration, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS tokenkms_schema_migrations (
		version integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("%w: version table: %v", ErrMigration, err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM tokenkms_schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("%w: read version: %v", ErrMigration, err)
	}
	if latest := ms[len(ms)-1].version; current > latest {
		return fmt.Errorf("%w: database at version %d, this build knows up to %d", ErrSchema, current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("%w: version %d: %v", ErrMigration, m.version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tokenkms_schema_migrations (version) VALUES ($1)`, m.version); err != nil {
			return fmt.Errorf("%w: record version %d: %v", ErrMigration, m.version, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%w: commit: %v", ErrMigration, err)
	}
	return nil
}
