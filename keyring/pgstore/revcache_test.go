package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	tokenkms "github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/verifier"
	"github.com/tokenkms/tokenkms/verifier/verifiertest"
)

// runCache starts c.Run until the test ends and waits for a first load.
func runCache(t *testing.T, c *pgstore.RevocationCache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	waitFor(t, func() bool {
		_, err := c.Revoked(testCtx(t), "k", "j", time.Now())
		return err == nil
	}, "the revocation cache to load")
}

func newCache(t *testing.T, s *pgstore.Store, cfg pgstore.CacheConfig) *pgstore.RevocationCache {
	t.Helper()
	c, err := s.RevocationCache(cfg)
	if err != nil {
		t.Fatalf("RevocationCache: %v", err)
	}
	return c
}

// TestRevocationCacheConformance runs the RevocationList suite on a cache
// that is loaded once and on one that Run keeps reloading while the suite
// writes (every write notifies, so reloads race with the writes).
func TestRevocationCacheConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  bool
	}{{"Loaded", false}, {"Running", true}} {
		t.Run(tc.name, func(t *testing.T) {
			verifiertest.TestRevocationList(t, func(t *testing.T, now func() time.Time) verifier.RevocationList {
				s, _ := newStore(t, pgstore.WithClock(now))
				c := newCache(t, s, pgstore.CacheConfig{MaxStaleness: time.Hour})
				if tc.run {
					runCache(t, c)
				} else if err := c.Reload(testCtx(t)); err != nil {
					t.Fatalf("Reload: %v", err)
				}
				return c
			})
		})
	}
}

func TestRevocationCacheConfig(t *testing.T) {
	s, _ := newStore(t)
	for _, tc := range []struct {
		name string
		cfg  pgstore.CacheConfig
	}{
		{"reload not shorter than staleness", pgstore.CacheConfig{MaxStaleness: time.Second, ReloadEvery: time.Second}},
		{"default staleness, long reload", pgstore.CacheConfig{ReloadEvery: time.Minute}},
		{"negative staleness", pgstore.CacheConfig{MaxStaleness: -time.Second, ReloadEvery: -2 * time.Second}},
		{"negative retry", pgstore.CacheConfig{Retry: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.RevocationCache(tc.cfg); !errors.Is(err, pgstore.ErrCacheConfig) {
				t.Errorf("RevocationCache error = %v, want ErrCacheConfig", err)
			}
		})
	}
}

// TestRevocationCacheFailsClosed: a cache that was never loaded, or whose
// last reload is older than the maximum staleness, refuses to answer, and
// a verifier using it rejects tokens with ErrRevocationCheck.
func TestRevocationCacheFailsClosed(t *testing.T) {
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	token, err := f.Token("user-1")
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	s, pool := newStore(t, pgstore.WithClock(f.Clock.Now))
	staleness := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newCache(t, s, pgstore.CacheConfig{MaxStaleness: time.Minute, Clock: staleness.Now})
	v, err := verifier.New(f.Ring, verifier.Policy{Issuer: "https://core.test", Audience: f.Audience},
		verifier.WithNow(f.Clock.Now), verifier.WithRevocationList(c))
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	verify := func(t *testing.T, want error) {
		t.Helper()
		_, err := v.Verify(testCtx(t), token)
		if !errors.Is(err, want) {
			t.Errorf("Verify error = %v, want %v", err, want)
		}
	}
	stale := func(t *testing.T) {
		t.Helper()
		if _, err := c.Revoked(testCtx(t), "k", "j", time.Now()); !errors.Is(err, pgstore.ErrRevocationsStale) {
			t.Errorf("Revoked error = %v, want ErrRevocationsStale", err)
		}
		verify(t, verifier.ErrRevocationCheck)
	}
	t.Run("not loaded", stale)
	if err := c.Reload(testCtx(t)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	t.Run("loaded", func(t *testing.T) { verify(t, nil) })
	staleness.Advance(time.Minute)
	t.Run("at the staleness limit", func(t *testing.T) { verify(t, nil) })
	staleness.Advance(time.Millisecond)
	t.Run("older than the limit", stale)
	if err := c.Reload(testCtx(t)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	t.Run("reloaded", func(t *testing.T) { verify(t, nil) })
	pool.Close()
	if err := c.Reload(testCtx(t)); err == nil {
		t.Fatalf("Reload on a closed pool succeeded")
	}
	t.Run("failed reload keeps the age", func(t *testing.T) { verify(t, nil) })
	staleness.Advance(time.Minute + time.Millisecond)
	t.Run("database gone too long", stale)
}

// replicaCaches opens n stores on one schema, each with its own pool and a
// running cache.
func replicaCaches(t *testing.T, n int, cfg pgstore.CacheConfig) ([]*pgstore.Store, []*pgxpool.Pool, []*pgstore.RevocationCache) {
	t.Helper()
	schema := newSchema(t)
	var (
		stores []*pgstore.Store
		pools  []*pgxpool.Pool
		caches []*pgstore.RevocationCache
	)
	for range n {
		pool := newPool(t, schema)
		if err := pgstore.Migrate(testCtx(t), pool); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		s := pgstore.New(pool)
		c := newCache(t, s, cfg)
		runCache(t, c)
		stores, pools, caches = append(stores, s), append(pools, pool), append(caches, c)
	}
	return stores, pools, caches
}

// TestRevocationCachePropagation: a revocation written by replica A is
// seen by the caches of replicas B and C. The delay, from A's write
// returning to both other caches answering true, is measured over 100
// trials for jti and for kid revocations and logged.
func TestRevocationCachePropagation(t *testing.T) {
	_, _, caches := replicaCaches(t, 3, pgstore.CacheConfig{})
	a := caches[0]
	const trials = 100
	for _, kind := range []string{"jti", "kid"} {
		t.Run(kind, func(t *testing.T) {
			var delays []time.Duration
			for trial := range trials {
				id := fmt.Sprintf("%s-%d", kind, trial)
				kid, jti := "other-kid", "other-jti"
				iat := time.Now().Add(-time.Minute)
				var write func() error
				if kind == "jti" {
					jti = id
					write = func() error { return a.RevokeJTI(testCtx(t), id, time.Now().Add(time.Hour)) }
				} else {
					kid = id
					write = func() error { return a.RevokeKID(testCtx(t), id, time.Now()) }
				}
				for i, c := range caches {
					if got, err := c.Revoked(testCtx(t), kid, jti, iat); err != nil || got {
						t.Fatalf("trial %d: replica %d: Revoked before the write = %v, %v; want false, nil", trial, i, got, err)
					}
				}
				start := time.Now()
				if err := write(); err != nil {
					t.Fatalf("trial %d: revoke: %v", trial, err)
				}
				if got, err := a.Revoked(testCtx(t), kid, jti, iat); err != nil || !got {
					t.Fatalf("trial %d: writer's own cache: Revoked = %v, %v; want true, nil", trial, got, err)
				}
				for i, c := range caches[1:] {
					waitFor(t, func() bool {
						got, err := c.Revoked(testCtx(t), kid, jti, iat)
						return err == nil && got
					}, fmt.Sprintf("replica %d to see %s", i+1, id))
				}
				delays = append(delays, time.Since(start))
			}
			slices.Sort(delays)
			t.Logf("%s revocation seen by both other replicas' caches: p50 %v, p99 %v, max %v over %d trials",
				kind, delays[trials/2], delays[trials*99/100-1], delays[trials-1], trials)
		})
	}
}

// TestRevokeJTIsBatch: a batch of jti revocations (keyring.JTIBatchRevoker)
// reaches the writer's cache at once and another replica's cache, a past
// until changes nothing, and an empty jti refuses the whole batch.
func TestRevokeJTIsBatch(t *testing.T) {
	_, _, caches := replicaCaches(t, 2, pgstore.CacheConfig{})
	var _ keyring.JTIBatchRevoker = caches[0]
	iat := time.Now().Add(-time.Minute)
	jtis := make(map[string]time.Time)
	for i := range 1000 {
		jtis[fmt.Sprintf("batch-%d", i)] = time.Now().Add(time.Hour)
	}
	jtis["expired"] = time.Now().Add(-time.Hour)
	if err := caches[0].RevokeJTIs(testCtx(t), jtis); err != nil {
		t.Fatalf("RevokeJTIs: %v", err)
	}
	for _, jti := range []string{"batch-0", "batch-999"} {
		if got, err := caches[0].Revoked(testCtx(t), "k", jti, iat); err != nil || !got {
			t.Errorf("writer's cache: Revoked(%s) = %v, %v; want true", jti, got, err)
		}
		waitFor(t, func() bool {
			got, err := caches[1].Revoked(testCtx(t), "k", jti, iat)
			return err == nil && got
		}, "the other replica to see "+jti)
	}
	if got, err := caches[1].Revoked(testCtx(t), "k", "expired", iat); err != nil || got {
		t.Errorf("past until revoked: %v, %v", got, err)
	}
	if err := caches[0].RevokeJTIs(testCtx(t), map[string]time.Time{"": time.Now().Add(time.Hour), "x": time.Now().Add(time.Hour)}); !errors.Is(err, verifier.ErrArgument) {
		t.Errorf("RevokeJTIs with an empty jti = %v, want verifier.ErrArgument", err)
	}
	if got, _ := caches[0].Revoked(testCtx(t), "k", "x", iat); got {
		t.Errorf("a refused batch revoked part of it")
	}
}

// TestRevocationCacheBackstop: a revocation whose notification never
// comes (the trigger is disabled) still reaches the other replica's cache
// through the periodic full reload.
func TestRevocationCacheBackstop(t *testing.T) {
	stores, pools, caches := replicaCaches(t, 2, pgstore.CacheConfig{MaxStaleness: 3 * time.Second, ReloadEvery: 100 * time.Millisecond})
	if _, err := pools[0].Exec(testCtx(t), `ALTER TABLE tokenkms_revoked_kid DISABLE TRIGGER tokenkms_revoked_kid_notify`); err != nil {
		t.Fatalf("disable trigger: %v", err)
	}
	b := caches[1]
	iat := time.Now().Add(-time.Minute)
	if got, err := b.Revoked(testCtx(t), "kid-silent", "j", iat); err != nil || got {
		t.Fatalf("Revoked before = %v, %v; want false, nil", got, err)
	}
	if err := stores[0].RevokeKID(testCtx(t), "kid-silent", time.Now()); err != nil {
		t.Fatalf("RevokeKID: %v", err)
	}
	waitFor(t, func() bool {
		got, err := b.Revoked(testCtx(t), "kid-silent", "j", iat)
		return err == nil && got
	}, "the periodic reload to bring the revocation")
}

// TestRevocationCacheVerifierAcrossReplicas: a token verified on replica
// B is rejected with ErrRevoked once replica A revokes its jti.
func TestRevocationCacheVerifierAcrossReplicas(t *testing.T) {
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	_, _, caches := replicaCaches(t, 2, pgstore.CacheConfig{})
	vb, err := verifier.New(f.Ring, verifier.Policy{Issuer: "https://core.test", Audience: f.Audience},
		verifier.WithNow(f.Clock.Now), verifier.WithRevocationList(caches[1]))
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	token, err := f.Issuer.Issue(testCtx(t), tokenkms.Claims{Subject: "user-1", ClientID: "test-client", PrincipalType: "user"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	claims, err := vb.Verify(testCtx(t), token)
	if err != nil {
		t.Fatalf("Verify before revocation: %v", err)
	}
	if err := caches[0].RevokeJTI(testCtx(t), claims.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("RevokeJTI: %v", err)
	}
	waitFor(t, func() bool {
		_, err := vb.Verify(testCtx(t), token)
		return errors.Is(err, verifier.ErrRevoked)
	}, "replica B's verifier to reject the revoked jti")
}

func TestRevocationCacheStringHidesContent(t *testing.T) {
	s, _ := newStore(t)
	c := newCache(t, s, pgstore.CacheConfig{})
	if err := c.Reload(testCtx(t)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := c.RevokeJTI(testCtx(t), "secret-jti-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("RevokeJTI: %v", err)
	}
	if err := c.RevokeKID(testCtx(t), "secret-kid-1", time.Now()); err != nil {
		t.Fatalf("RevokeKID: %v", err)
	}
	for _, got := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c)} {
		if strings.Contains(got, "secret-") {
			t.Errorf("cache formats as %q, which names a revoked id", got)
		}
	}
}

// TestRevocationCacheFeed: with CacheConfig.Log, a replica's cache is the
// log of a revocation feed: a revocation written on replica A reaches a
// RevocationFeed that follows replica B's handler.
func TestRevocationCacheFeed(t *testing.T) {
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	_, _, caches := replicaCaches(t, 2, pgstore.CacheConfig{Log: true})
	h, err := jwks.NewRevocationHandler(jwks.RevocationHandlerConfig{Log: caches[1], Keys: f.Ring, Set: f.Set})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/jwks.json", jwks.NewHandler(f.Ring))
	mux.Handle("/revocations", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rs, err := jwks.NewRemoteSet(testCtx(t), srv.URL+"/jwks.json", jwks.AllowInsecureLoopback())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	feed, err := jwks.NewRevocationFeed(testCtx(t), jwks.RevocationFeedConfig{URL: srv.URL + "/revocations", Keys: rs, AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { feed.Close() })
	if err := feed.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	iat := time.Now().Add(-time.Minute)
	if err := caches[0].RevokeJTI(testCtx(t), "jti-a", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := caches[0].RevokeKID(testCtx(t), "kid-a", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kid, jti string }{{"other", "jti-a"}, {"kid-a", "other"}} {
		waitFor(t, func() bool {
			got, err := feed.Revoked(testCtx(t), tc.kid, tc.jti, iat)
			return err == nil && got
		}, fmt.Sprintf("the feed of replica B to see (%s, %s)", tc.kid, tc.jti))
	}
}

// TestRevocationCacheLogRefusals: Since answers only with CacheConfig.Log
// and only from a fresh cache: a feed never signs stale data as fresh.
func TestRevocationCacheLogRefusals(t *testing.T) {
	s, _ := newStore(t)
	if _, err := newCache(t, s, pgstore.CacheConfig{}).Since(1, 0); !errors.Is(err, verifier.ErrNotLogged) {
		t.Errorf("without Log: got %v, want ErrNotLogged", err)
	}
	if err := newCache(t, s, pgstore.CacheConfig{}).Wait(testCtx(t), 1, 0); !errors.Is(err, verifier.ErrNotLogged) {
		t.Errorf("Wait without Log: got %v, want ErrNotLogged", err)
	}
	now := time.Now()
	c := newCache(t, s, pgstore.CacheConfig{Log: true, MaxStaleness: time.Minute, Clock: func() time.Time { return now }})
	if _, err := c.Since(1, 0); !errors.Is(err, pgstore.ErrRevocationsStale) {
		t.Errorf("never loaded: got %v, want ErrRevocationsStale", err)
	}
	if err := c.Reload(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Since(1, 0); err != nil {
		t.Errorf("loaded: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := c.Since(1, 0); !errors.Is(err, pgstore.ErrRevocationsStale) {
		t.Errorf("stale: got %v, want ErrRevocationsStale", err)
	}
}
