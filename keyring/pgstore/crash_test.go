package pgstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/signer"
)

// The crash test re-executes the test binary as a replica process that
// rotates keys in a loop; this variable names the schema it works on.
const (
	envCrashSchema = "TOKENKMS_PGSTORE_CRASH_SCHEMA"
	crashKills     = 20
	crashWindow    = 400 * time.Millisecond // kill at a random point this long after the child is ready
)

func TestMain(m *testing.M) {
	revokeChildMain()
	if schema := os.Getenv(envCrashSchema); schema != "" {
		if err := crashChild(schema); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashRing builds a replica's keyring over the store: local keys under a
// fixed key-encryption key (so every process can open every key), the
// store as audit sink and revocation list.
func crashRing(ctx context.Context, st *pgstore.Store) (*keyring.Keyring, *keyringtest.Clock, error) {
	keys, err := st.List(ctx, keyring.Filter{})
	if err != nil {
		return nil, nil, err
	}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, k := range keys {
		for _, t := range []time.Time{k.CreatedAt, k.ActivatedAt, k.ApprovedAt, k.ActivateAt, k.RetiringAt} {
			if t.After(start) {
				start = t
			}
		}
	}
	clock := keyringtest.NewClock(start.Add(time.Hour))
	kek := sha256.Sum256([]byte("pgstore crash test kek"))
	w, err := signer.NewAESWrapper(kek[:])
	if err != nil {
		return nil, nil, err
	}
	lp, err := signer.NewLocalProvider(w)
	if err != nil {
		return nil, nil, err
	}
	ring, err := keyring.New(ctx, keyring.Config{
		Store:       st,
		Providers:   map[string]signer.Provider{keyring.DefaultBackend: lp},
		Audit:       st,
		Revocations: st,
		Now:         clock.Now,
		Sets:        []keyring.SetPolicy{{Name: replicaSet, Owner: "team-identity"}},
	})
	if err != nil {
		return nil, nil, err
	}
	return ring, clock, nil
}

func crashPool(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = childApp(schema)
	return pgxpool.NewWithConfig(ctx, cfg)
}

// childApp is the application_name of the connections a process opens on
// schema with crashPool.
func childApp(schema string) string { return "tokenkms-" + schema }

// waitChildGone waits until the server has no backend left for a killed
// child on schema: a COMMIT the child sent just before SIGKILL may still
// land after the process is gone, and a check must see the state after it.
func waitChildGone(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	ctx := testCtx(t)
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, childApp(schema)).Scan(&n); err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d backends of a killed child still on the server", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// crashChild rotates the set until it is killed: it finishes what a
// killed predecessor left (a pending successor is approved and activated)
// and starts the next rotation.
func crashChild(schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := crashPool(ctx, os.Getenv(testenv.PostgresDSN), schema)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := pgstore.New(pool)
	ring, clock, err := crashRing(ctx, st)
	if err != nil {
		return err
	}
	pol, err := ring.Policy(replicaSet)
	if err != nil {
		return err
	}
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	fmt.Println("ready")
	for {
		pending, err := st.List(ctx, keyring.Filter{Set: replicaSet, States: []keyring.State{keyring.Pending}})
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			if _, err := ring.Rotate(as(keyringtest.Issuer), replicaSet); err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			continue
		}
		k := pending[0]
		if k.ApprovedBy == "" {
			if err := ring.Approve(as(keyringtest.Approver), k.KID); err != nil {
				return fmt.Errorf("approve: %w", err)
			}
		}
		clock.Advance(pol.PrePublication)
		if err := ring.Activate(as(keyringtest.Deployer), k.KID); err != nil {
			return fmt.Errorf("activate: %w", err)
		}
	}
}

// TestReplicaKilledMidRotation kills a replica process (SIGKILL) at random
// points of a rotation loop on PostgreSQL, crashKills times. After each
// kill the shared state must be whole: exactly one Active key, every key
// readable and its version never lower than before, no key lost, every
// Retiring key with its grace, the Active key able to sign, and the audit
// chain intact.
func TestReplicaKilledMidRotation(t *testing.T) {
	dsn := testenv.Require(t, testenv.PostgresDSN)
	schema := newSchema(t)
	pool := newPool(t, schema)
	ctx := testCtx(t)
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	st := pgstore.New(pool)
	ring, _, err := crashRing(ctx, st)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	if _, err := keyringtest.ActivateFirst(ctx, ring, replicaSet); err != nil {
		t.Fatalf("ActivateFirst: %v", err)
	}
	seen := map[string]int64{}
	checkReplicaState(t, st, seen)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	kills := 0
	for round := 1; kills < crashKills; round++ {
		if round > 3*crashKills {
			t.Fatalf("only %d kills in %d rounds: the children end before they are killed", kills, round)
		}
		child := testenv.StartChild(t, envCrashSchema+"="+schema, testenv.PostgresDSN+"="+dsn)
		time.Sleep(time.Duration(rng.Int64N(int64(crashWindow))))
		if !child.Kill(t) {
			t.Fatal("child ended before it was killed")
		}
		kills++
		waitChildGone(t, pool, schema)
		checkReplicaState(t, st, seen)
	}
	n, err := st.VerifyAudit(ctx)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	t.Logf("%d SIGKILLs; %d keys (%d rotations started), %d audit records, chain intact", kills, len(seen), len(seen)-1, n)
}

// checkReplicaState checks the invariants of the shared state as a fresh
// replica sees it, and records each key's version in seen.
func checkReplicaState(t *testing.T, st *pgstore.Store, seen map[string]int64) {
	t.Helper()
	ctx := testCtx(t)
	keys, err := st.List(ctx, keyring.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	present := map[string]bool{}
	active := 0
	for _, k := range keys {
		present[k.KID] = true
		got, err := st.Get(ctx, k.KID)
		if err != nil {
			t.Fatalf("Get(%s): %v", k.KID, err)
		}
		if got.Version != k.Version || got.State != k.State {
			t.Errorf("Get(%s) = version %d %v, List said %d %v", k.KID, got.Version, got.State, k.Version, k.State)
		}
		if v, ok := seen[k.KID]; ok && k.Version < v {
			t.Errorf("key %s went back from version %d to %d", k.KID, v, k.Version)
		}
		seen[k.KID] = k.Version
		switch k.State {
		case keyring.Active:
			active++
			if k.ActivatedAt.IsZero() {
				t.Errorf("active key %s has no activation time", k.KID)
			}
		case keyring.Retiring:
			if k.GraceUntil.IsZero() || k.RetiringAt.IsZero() {
				t.Errorf("retiring key %s has no grace", k.KID)
			}
		}
		if k.State.Published() && k.Public == nil {
			t.Errorf("published key %s has no public key", k.KID)
		}
	}
	for kid := range seen {
		if !present[kid] {
			t.Errorf("key %s disappeared", kid)
		}
	}
	if active != 1 {
		t.Fatalf("%d active keys in set %s, want exactly 1", active, replicaSet)
	}
	ring, _, err := crashRing(ctx, st)
	if err != nil {
		t.Fatalf("keyring over the state left: %v", err)
	}
	s, err := ring.Signer(ctx, replicaSet)
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	if _, err := s.Sign(ctx, []byte("header.payload")); err != nil {
		t.Fatalf("Sign with the active key %s: %v", s.KID(), err)
	}
	if _, err := st.VerifyAudit(ctx); err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
}
