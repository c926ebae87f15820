package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/verifier"
	"github.com/tokenkms/tokenkms/verifier/verifiertest"
)

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// newSchema creates an empty schema for one test and drops it afterwards.
func newSchema(t *testing.T) string {
	t.Helper()
	dsn := testenv.Require(t, testenv.PostgresDSN)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	ctx := testCtx(t)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("connect for cleanup: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return schema
}

// newPool opens a pool whose connections use schema.
func newPool(t *testing.T, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.Require(t, testenv.PostgresDSN))
	if err != nil {
		t.Fatalf("parse dsn: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newStore(t *testing.T, opts ...pgstore.Option) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := newPool(t, newSchema(t))
	if err := pgstore.Migrate(testCtx(t), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pgstore.New(pool, opts...), pool
}

func TestKeyStoreConformance(t *testing.T) {
	keyringtest.TestKeyStore(t, func(t *testing.T) keyring.KeyStore {
		s, _ := newStore(t)
		return s
	})
}

func TestRevocationListConformance(t *testing.T) {
	verifiertest.TestRevocationList(t, func(t *testing.T, now func() time.Time) verifier.RevocationList {
		s, _ := newStore(t, pgstore.WithClock(now))
		return s
	})
}

func TestMigrate(t *testing.T) {
	pool := newPool(t, newSchema(t))
	ctx := testCtx(t)
	for i := range 3 {
		if err := pgstore.Migrate(ctx, pool); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM tokenkms_schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := len(migrationFiles(t)); n != want {
		t.Errorf("recorded migrations = %d, want %d", n, want)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO tokenkms_schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	if err := pgstore.Migrate(ctx, pool); !errors.Is(err, pgstore.ErrSchema) {
		t.Errorf("Migrate on a newer schema error = %v, want ErrSchema", err)
	}
}

// migrationFiles lists the migrations shipped in the package.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	return names
}

func TestMigrateConcurrent(t *testing.T) {
	pool := newPool(t, newSchema(t))
	ctx := testCtx(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- pgstore.Migrate(ctx, pool) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
}

func TestOneActivePerSetEnforced(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	base := time.Unix(1_700_000_000, 0)
	if err := s.Put(ctx, keyringtest.SampleKey("a", "set-a", keyring.Active, base)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	b := keyringtest.SampleKey("b", "set-a", keyring.Pending, base.Add(time.Second))
	if err := s.Put(ctx, b); err != nil {
		t.Fatalf("Put: %v", err)
	}
	b.State = keyring.Active
	if err := s.Update(ctx, b, 1); !errors.Is(err, keyring.ErrConflict) {
		t.Errorf("second Active key in a set: error = %v, want ErrConflict", err)
	}
	if err := s.Put(ctx, keyringtest.SampleKey("c", "set-a", keyring.Active, base)); !errors.Is(err, keyring.ErrConflict) {
		t.Errorf("Put of a second Active key: error = %v, want ErrConflict", err)
	}
	if err := s.Put(ctx, keyringtest.SampleKey("d", "set-b", keyring.Active, base)); err != nil {
		t.Errorf("Active key in another set: %v", err)
	}
}

func TestInvalidKeyRefused(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	k := keyringtest.SampleKey("k", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
	for _, tc := range []struct {
		name   string
		mutate func(*keyring.Key)
	}{
		{"empty kid", func(k *keyring.Key) { k.KID = "" }},
		{"no creation time", func(k *keyring.Key) { k.CreatedAt = time.Time{} }},
		{"public key of unknown type", func(k *keyring.Key) { k.Public = struct{}{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := k
			tc.mutate(&bad)
			if err := s.Put(ctx, bad); !errors.Is(err, pgstore.ErrInvalidKey) {
				t.Errorf("Put error = %v, want ErrInvalidKey", err)
			}
		})
	}
}

// TestUnknownStateReadAsCorrupt: a row whose state or purpose this build
// does not know (written by hand, or by a newer build) is refused as
// corrupt by Get and List instead of being handed to the keyring.
func TestUnknownStateReadAsCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name, set string
	}{
		{name: "state 0", set: "state = 0"},
		{name: "state 7", set: "state = 7"},
		{name: "state 99", set: "state = 99"},
		{name: "state -3", set: "state = -3"},
		{name: "purpose 9", set: "purpose = 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pool := newStore(t)
			ctx := testCtx(t)
			if err := s.Put(ctx, keyringtest.SampleKey("k", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if _, err := pool.Exec(ctx, `UPDATE tokenkms_keys SET `+tc.set+` WHERE kid = 'k'`); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "k"); !errors.Is(err, pgstore.ErrCorrupt) || !errors.Is(err, keyring.ErrCorruptRecord) {
				t.Errorf("Get = %v, want ErrCorrupt and keyring.ErrCorruptRecord", err)
			}
			if _, err := s.List(ctx, keyring.Filter{}); !errors.Is(err, pgstore.ErrCorrupt) {
				t.Errorf("List = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s, pool := newStore(t, pgstore.WithClock(clock.Now))
	ctx := testCtx(t)
	for i, d := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour} {
		if err := s.RevokeJTI(ctx, string(rune('a'+i)), clock.Now().Add(d)); err != nil {
			t.Fatalf("RevokeJTI: %v", err)
		}
	}
	if err := s.RevokeKID(ctx, "kid-1", clock.Now()); err != nil {
		t.Fatalf("RevokeKID: %v", err)
	}
	clock.Advance(90 * time.Minute)
	n, err := s.Purge(ctx)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if n != 2 {
		t.Errorf("Purge removed %d rows, want 2", n)
	}
	var left, kids int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tokenkms_revoked_jti), (SELECT count(*) FROM tokenkms_revoked_kid)`).Scan(&left, &kids); err != nil {
		t.Fatal(err)
	}
	if left != 1 || kids != 1 {
		t.Errorf("after Purge: %d jti rows, %d kid rows; want 1, 1", left, kids)
	}
	if got, err := s.Revoked(ctx, "x", "c", clock.Now()); err != nil || !got {
		t.Errorf("Revoked(unexpired jti) after Purge = %v, %v; want true", got, err)
	}
}

func TestListenNotifies(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	changes := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, func() { changes <- struct{}{} }) }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification for %s", what)
		}
	}
	wait("start")
	if err := s.Put(ctx, keyringtest.SampleKey("k", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))); err != nil {
		t.Fatal(err)
	}
	wait("Put")
	if err := s.RevokeKID(ctx, "k", time.Now()); err != nil {
		t.Fatal(err)
	}
	wait("RevokeKID")
	if err := s.RevokeJTI(ctx, "j", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wait("RevokeJTI")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Listen returned %v, want context.Canceled", err)
	}
}

func TestTryLead(t *testing.T) {
	s, pool := newStore(t)
	other := pgstore.New(pool)
	ctx := testCtx(t)
	release, ok, err := s.TryLead(ctx)
	if err != nil || !ok {
		t.Fatalf("first TryLead = %v, %v; want true, nil", ok, err)
	}
	if _, ok, err := other.TryLead(ctx); err != nil || ok {
		t.Errorf("second TryLead while led = %v, %v; want false, nil", ok, err)
	}
	release()
	release2, ok, err := other.TryLead(ctx)
	if err != nil || !ok {
		t.Fatalf("TryLead after release = %v, %v; want true, nil", ok, err)
	}
	release2()
}
