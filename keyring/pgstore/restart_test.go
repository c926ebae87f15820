package pgstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/verifier"
)

// envRevokeSchema names the schema of a lifecycletest.RevokeThenKill
// child.
const envRevokeSchema = "TOKENKMS_PGSTORE_REVOKE_SCHEMA"

// pgOpener connects to schema as a new replica process would: the store
// is the KeyStore and the revocation list.
func pgOpener(dsn, schema string) lifecycletest.Opener {
	return func(now func() time.Time) (keyring.KeyStore, verifier.RevocationList, func() error, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pool, err := crashPool(ctx, dsn, schema)
		if err != nil {
			return nil, nil, nil, err
		}
		st := pgstore.New(pool, pgstore.WithClock(now))
		return st, st, func() error { pool.Close(); return nil }, nil
	}
}

// revokeChildMain is the TestMain side of TestRevocationSurvivesSIGKILL.
func revokeChildMain() {
	if schema := os.Getenv(envRevokeSchema); schema != "" {
		lifecycletest.RevokeChild(pgOpener(os.Getenv(testenv.PostgresDSN), schema))
	}
}

func migratedSchema(t *testing.T) (dsn, schema string) {
	t.Helper()
	dsn = testenv.Require(t, testenv.PostgresDSN)
	schema = newSchema(t)
	if err := pgstore.Migrate(testCtx(t), newPool(t, schema)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return dsn, schema
}

// TestRestartTwoYears: two simulated years of scheduled rotation over 20
// restarts on one database (lifecycletest.Restarts).
func TestRestartTwoYears(t *testing.T) {
	lifecycletest.Restarts(t, pgOpener(migratedSchema(t)))
}

// TestRevocationSurvivesSIGKILL: a revocation whose call returned holds
// after the process is killed at once (lifecycletest.RevokeThenKill).
func TestRevocationSurvivesSIGKILL(t *testing.T) {
	dsn, schema := migratedSchema(t)
	lifecycletest.RevokeThenKill(t, pgOpener(dsn, schema), envRevokeSchema+"="+schema, testenv.PostgresDSN+"="+dsn)
}
