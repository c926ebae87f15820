package verifier_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

func cachedVerifier(t testing.TB, f *fixture, size int, opts ...verifier.Option) *verifier.Verifier {
	t.Helper()
	return f.verifier(t, basePolicy(), append(opts, verifier.WithCache(size))...)
}

func mustVerify(t testing.TB, v *verifier.Verifier, tok string) *tokenkms.Claims {
	t.Helper()
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
	return c
}

func TestCacheHitReturnsEqualCopy(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			s := testSigner(t, alg)
			v := cachedVerifier(t, f, 16)
			c := baseClaims()
			c.Extra = map[string]any{"tenant": map[string]any{"id": "t-1", "tags": []any{"a", "b"}}}
			tok := f.issue(t, s, c)

			first := mustVerify(t, v, tok)
			if got := v.CacheStats(); got.Misses != 1 || got.Hits != 0 || got.Len != 1 {
				t.Fatalf("after first Verify: got %+v, want 1 miss, 0 hits, 1 entry", got)
			}
			want := cloneForTest(t, first)

			first.Audience[0] = "mutated"
			first.Scope[0] = "mutated"
			first.Extra["tenant"].(map[string]any)["id"] = "mutated"

			second := mustVerify(t, v, tok)
			if got := v.CacheStats(); got.Hits != 1 || got.Misses != 1 {
				t.Fatalf("after second Verify: got %+v, want 1 hit, 1 miss", got)
			}
			if diff := cmp.Diff(want, second); diff != "" {
				t.Fatalf("hit claims differ from the first verification (-want +got):\n%s", diff)
			}
			second.Extra["tenant"].(map[string]any)["tags"].([]any)[0] = "mutated"
			second.Scope = append(second.Scope[:0], "x")
			third := mustVerify(t, v, tok)
			if diff := cmp.Diff(want, third); diff != "" {
				t.Fatalf("a caller's change to returned claims reached the cache (-want +got):\n%s", diff)
			}
		})
	}
}

// cloneForTest is an independent deep copy, made by verifying nothing: the
// claims are rebuilt field by field.
func cloneForTest(t *testing.T, c *tokenkms.Claims) *tokenkms.Claims {
	t.Helper()
	d := *c
	d.Audience = append([]string(nil), c.Audience...)
	d.Scope = append([]string(nil), c.Scope...)
	tenant := c.Extra["tenant"].(map[string]any)
	d.Extra = map[string]any{"tenant": map[string]any{"id": tenant["id"], "tags": append([]any(nil), tenant["tags"].([]any)...)}}
	return &d
}

// TestCacheStaleRejected caches a token, proves it is served from the
// cache, then changes the world and expects the next hit to be refused with
// the specific sentinel and the entry dropped.
func TestCacheStaleRejected(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(t *testing.T, f *fixture, kid, jti string)
		want   error
	}{
		{"jti revoked", func(t *testing.T, f *fixture, _, jti string) {
			if err := f.revs.RevokeJTI(ctx, jti, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, verifier.ErrRevoked},
		{"kid revoked", func(t *testing.T, f *fixture, kid, _ string) {
			if err := f.revs.RevokeKID(ctx, kid, t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}, verifier.ErrRevoked},
		{"key compromised", func(_ *testing.T, f *fixture, kid, _ string) {
			f.src.errs[kid] = fmt.Errorf("test source: %w", verifier.ErrKeyCompromised)
		}, verifier.ErrKeyCompromised},
		{"key retired", func(_ *testing.T, f *fixture, kid, _ string) {
			f.src.errs[kid] = fmt.Errorf("test source: %w", verifier.ErrKeyRetired)
		}, verifier.ErrKeyRetired},
		{"key gone", func(_ *testing.T, f *fixture, kid, _ string) {
			delete(f.src.keys, kid)
		}, verifier.ErrUnknownKID},
		{"expired", func(_ *testing.T, f *fixture, _, _ string) {
			f.now = t0.Add(10*time.Minute + verifier.DefaultLeeway)
		}, verifier.ErrExpired},
		{"within leeway", nil, nil},
		{"another key under the kid", func(t *testing.T, f *fixture, kid, _ string) {
			other := testSigner(t, "EdDSA")
			f.src.keys[kid] = verifier.Key{KID: kid, Set: "access", Algorithm: other.Algorithm(), Public: other.Public()}
		}, verifier.ErrAlgorithm},
		{"another key of the same alg under the kid", func(t *testing.T, f *fixture, kid, _ string) {
			other := otherES256(t, kid)
			f.src.keys[kid] = verifier.Key{KID: kid, Set: "access", Algorithm: other.Algorithm(), Public: other.Public()}
		}, verifier.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "ES256")
			s := testSigner(t, "ES256")
			v := cachedVerifier(t, f, 8)
			tok := f.issue(t, s, baseClaims())
			c := mustVerify(t, v, tok)
			mustVerify(t, v, tok)
			if got := v.CacheStats().Hits; got != 1 {
				t.Fatalf("hits before the change: got %d, want 1", got)
			}
			if tt.change == nil {
				f.now = t0.Add(10*time.Minute + verifier.DefaultLeeway - time.Second)
				mustVerify(t, v, tok)
				return
			}
			tt.change(t, f, s.KID(), c.ID)
			_, err := v.Verify(ctx, tok)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify after change: got %v, want %v", err, tt.want)
			}
			st := v.CacheStats()
			if st.Hits != 2 {
				t.Fatalf("hits after the change: got %d, want 2 (the rejection must come from a hit)", st.Hits)
			}
			if st.Len != 0 {
				t.Fatalf("entries after a final rejection: got %d, want 0", st.Len)
			}
			if _, err := v.Verify(ctx, tok); !errors.Is(err, tt.want) {
				t.Fatalf("Verify again: got %v, want %v", err, tt.want)
			}
		})
	}
}

// otherES256 is a fresh ES256 signer, distinct from testSigner's.
func otherES256(t *testing.T, kid string) signer.Signer {
	t.Helper()
	p, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := p.Generate(context.Background(), kid, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// switchList is a RevocationList that can be taken down.
type switchList struct {
	*verifier.MemoryRevocationList
	down atomic.Bool
}

func (l *switchList) Revoked(ctx context.Context, kid, jti string, iat time.Time) (bool, error) {
	if l.down.Load() {
		return false, errListDown
	}
	return l.MemoryRevocationList.Revoked(ctx, kid, jti, iat)
}

func TestCacheTransientFailureKeepsEntry(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	l := &switchList{MemoryRevocationList: f.revs}
	v, err := verifier.New(f.src, basePolicy(), verifier.WithRevocationList(l), verifier.WithNow(f.clock), verifier.WithCache(4))
	if err != nil {
		t.Fatal(err)
	}
	tok := f.issue(t, s, baseClaims())
	mustVerify(t, v, tok)
	l.down.Store(true)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrRevocationCheck) {
		t.Fatalf("Verify with the list down: got %v, want %v", err, verifier.ErrRevocationCheck)
	}
	if got := v.CacheStats(); got.Len != 1 || got.Hits != 1 {
		t.Fatalf("after a transient failure: got %+v, want the entry kept and 1 hit", got)
	}
	l.down.Store(false)
	mustVerify(t, v, tok)
	if got := v.CacheStats().Hits; got != 2 {
		t.Fatalf("hits after recovery: got %d, want 2", got)
	}
}

func TestCachePolicyStillApplies(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	p := basePolicy()
	p.MaxTokenAge = 5 * time.Minute
	v := f.verifier(t, p, verifier.WithCache(4))
	tok := f.issue(t, s, baseClaims())
	mustVerify(t, v, tok)
	f.now = t0.Add(6 * time.Minute)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrTooOld) {
		t.Fatalf("Verify of a cached token past MaxTokenAge: got %v, want %v", err, verifier.ErrTooOld)
	}
}

func TestCacheRejectionsNotCached(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	v := cachedVerifier(t, f, 4)
	tok := f.issue(t, s, baseClaims())
	bad := tok[:len(tok)-2] + "AA"
	if bad == tok {
		bad = tok[:len(tok)-2] + "BA"
	}
	for range 2 {
		if _, err := v.Verify(context.Background(), bad); !errors.Is(err, verifier.ErrSignature) {
			t.Fatalf("Verify of a bad signature: got %v, want %v", err, verifier.ErrSignature)
		}
	}
	if got := v.CacheStats(); got.Len != 0 || got.Hits != 0 || got.Misses != 2 {
		t.Fatalf("after two rejections: got %+v, want nothing cached, 2 misses", got)
	}
}

func TestCacheBounded(t *testing.T) {
	for _, size := range []int{1, 5, 40} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFixture(t, "EdDSA")
			s := testSigner(t, "EdDSA")
			v := cachedVerifier(t, f, size)
			const n = 100
			toks := make([]string, n)
			for i := range toks {
				toks[i] = f.issue(t, s, baseClaims())
				mustVerify(t, v, toks[i])
				if got := v.CacheStats().Len; got > size {
					t.Fatalf("after %d tokens: %d entries, want at most %d", i+1, got, size)
				}
			}
			st := v.CacheStats()
			if st.Capacity != size || st.Len < 1 || st.Len > size || st.Evictions != uint64(n-st.Len) {
				t.Fatalf("stats: got %+v, want capacity %d, 1 to %d entries, every other token evicted", st, size, size)
			}
			for _, tok := range toks {
				mustVerify(t, v, tok)
			}
		})
	}
}

func TestCacheSizeRefused(t *testing.T) {
	f := newFixture(t, "ES256")
	for _, size := range []int{0, -1, verifier.MaxCacheSize + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			_, err := verifier.New(f.src, basePolicy(), verifier.WithRevocationList(f.revs), verifier.WithCache(size))
			if !errors.Is(err, verifier.ErrPolicy) {
				t.Fatalf("New with WithCache(%d): got %v, want %v", size, err, verifier.ErrPolicy)
			}
		})
	}
}

func TestCacheStatsWithoutCache(t *testing.T) {
	f := newFixture(t, "ES256")
	v := f.verifier(t, basePolicy())
	mustVerify(t, v, f.issue(t, testSigner(t, "ES256"), baseClaims()))
	if got := v.CacheStats(); got != (verifier.CacheStats{}) {
		t.Fatalf("CacheStats without WithCache: got %+v, want zero", got)
	}
}

// TestCacheConcurrent verifies a set of tokens from many goroutines through
// a cache smaller than the set while half of the jtis are revoked; once the
// revocations are done, every revoked token is refused and the others pass.
func TestCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	v := cachedVerifier(t, f, 6)
	const n = 16
	toks := make([]string, n)
	jtis := make([]string, n)
	for i := range toks {
		toks[i] = f.issue(t, s, baseClaims())
		jtis[i] = mustVerify(t, v, toks[i]).ID
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g*7 + i) % n
				c, err := v.Verify(ctx, toks[k])
				switch {
				case err == nil && c.ID != jtis[k]:
					errs <- fmt.Errorf("token %d: got jti %q, want %q", k, c.ID, jtis[k])
					return
				case err != nil && !errors.Is(err, verifier.ErrRevoked):
					errs <- fmt.Errorf("token %d: got %v, want nil or %v", k, err, verifier.ErrRevoked)
					return
				}
			}
		})
	}
	for i := 0; i < n; i += 2 {
		if err := f.revs.RevokeJTI(ctx, jtis[i], t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, tok := range toks {
		_, err := v.Verify(ctx, tok)
		if i%2 == 0 && !errors.Is(err, verifier.ErrRevoked) {
			t.Errorf("revoked token %d: got %v, want %v", i, err, verifier.ErrRevoked)
		}
		if i%2 == 1 && err != nil {
			t.Errorf("token %d: got %v, want nil", i, err)
		}
	}
	if got := v.CacheStats().Len; got > 6 {
		t.Errorf("entries: got %d, want at most 6", got)
	}
}

// TestCacheKeyCopyStillHits: a KeySource that hands out a fresh copy of the
// same public key on every call still gets hits.
func TestCacheKeyCopyStillHits(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			s := testSigner(t, alg)
			v := cachedVerifier(t, f, 4)
			tok := f.issue(t, s, baseClaims())
			mustVerify(t, v, tok)
			f.src.keys[s.KID()] = verifier.Key{KID: s.KID(), Set: "access", Algorithm: alg, Public: copyPublic(t, s.Public())}
			mustVerify(t, v, tok)
			if got := v.CacheStats(); got.Hits != 1 || got.Len != 1 {
				t.Fatalf("after a copy of the key: got %+v, want 1 hit and the entry kept", got)
			}
		})
	}
}

func copyPublic(t *testing.T, pub crypto.PublicKey) crypto.PublicKey {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}
