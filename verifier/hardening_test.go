package verifier_test

import (
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/verifier"
)

// TestLoneSurrogateRefused: a claim holding a lone UTF-16 surrogate escape,
// anywhere in the claims set, is malformed (it used to decode as U+FFFD).
func TestLoneSurrogateRefused(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	v := f.verifier(t, basePolicy())
	tests := []struct {
		name  string
		extra string
	}{
		{name: "high", extra: `"note":"\ud800"`},
		{name: "low", extra: `"note":"a\udc00b"`},
		{name: "high then letter", extra: `"note":"\ud83dA"`},
		{name: "in an array", extra: `"roles":["admin","\ud800"]`},
		{name: "in a nested name", extra: `"ctx":{"\udfff":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := craft(t, s, hdr(s), claimsJSON(nil, tt.extra))
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrMalformed) {
				t.Errorf("Verify with %s: error = %v, want ErrMalformed", tt.extra, err)
			}
		})
	}
	t.Run("pair accepted", func(t *testing.T) {
		tok := craft(t, s, hdr(s), claimsJSON(nil, `"note":"\ud83d\ude00"`))
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify with a surrogate pair: %v", err)
		}
		if got, want := c.Extra["note"], "\U0001F600"; got != want {
			t.Errorf("note = %q, want %q", got, want)
		}
	})
}

// TestRealmRefused: a realm that could break out of the WWW-Authenticate
// header or its quoted string is refused when the middleware is built, and
// the middleware built anyway refuses every request instead of serving
// without it.
func TestRealmRefused(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	v := f.verifier(t, basePolicy())
	good := f.issue(t, s, baseClaims())
	tests := []struct {
		name  string
		realm string
	}{
		{name: "CRLF", realm: "orders\r\nSet-Cookie: a=b"},
		{name: "LF", realm: "orders\nX: y"},
		{name: "CR", realm: "orders\r"},
		{name: "quote", realm: `orders", error="none`},
		{name: "backslash", realm: `orders\`},
		{name: "NUL", realm: "orders\x00"},
		{name: "DEL", realm: "orders\x7f"},
		{name: "non-ASCII", realm: "ordérs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verifier.NewMiddleware(v, verifier.WithRealm(tt.realm)); !errors.Is(err, verifier.ErrPolicy) {
				t.Errorf("NewMiddleware(WithRealm(%q)) error = %v, want ErrPolicy", tt.realm, err)
			}
			var reason error
			h := verifier.Middleware(v, verifier.WithRealm(tt.realm), verifier.WithErrorHook(func(_ *http.Request, err error) { reason = err }))(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Errorf("handler reached with realm %q", tt.realm) }))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer "+good)
			h.ServeHTTP(rec, req)
			if ch := rec.Header().Get("WWW-Authenticate"); rec.Code != http.StatusUnauthorized || strings.Contains(ch, "realm") {
				t.Errorf("status %d, challenge %q; want 401 without the realm", rec.Code, ch)
			}
			if !errors.Is(reason, verifier.ErrPolicy) {
				t.Errorf("hook reason = %v, want ErrPolicy", reason)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		mw, err := verifier.NewMiddleware(v, verifier.WithRealm("orders api"))
		if err != nil {
			t.Fatalf("NewMiddleware: %v", err)
		}
		rec := httptest.NewRecorder()
		mw(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer realm="orders api"`; got != want {
			t.Errorf("challenge = %q, want %q", got, want)
		}
	})
	t.Run("nil verifier", func(t *testing.T) {
		if _, err := verifier.NewMiddleware(nil); !errors.Is(err, verifier.ErrPolicy) {
			t.Errorf("NewMiddleware(nil) error = %v, want ErrPolicy", err)
		}
	})
}

// setSource is a KeySource whose keys belong to named sets (a SetLister,
// as the keyring is).
type setSource struct {
	*keySource
	sets []string
}

func (s setSource) SigningSets() []string { return s.sets }

// TestKeySetsRequired: with a KeySource naming more than one signing set,
// New requires the Policy to name the trusted ones; names must be sets of
// the source; a source naming no sets takes none (issue 14, item 2).
func TestKeySetsRequired(t *testing.T) {
	f := newFixture(t, "ES256")
	tests := []struct {
		name     string
		src      verifier.KeySource
		keySets  []string
		wantErr  error
		wantSets []string
	}{
		{name: "two sets, none named", src: setSource{f.src, []string{"access", "partner"}}, wantErr: verifier.ErrPolicy},
		{name: "two sets, one named", src: setSource{f.src, []string{"access", "partner"}}, keySets: []string{"access"}, wantSets: []string{"access"}},
		{name: "unknown set", src: setSource{f.src, []string{"access", "partner"}}, keySets: []string{"acess"}, wantErr: verifier.ErrPolicy},
		{name: "empty entry", src: setSource{f.src, []string{"access"}}, keySets: []string{""}, wantErr: verifier.ErrPolicy},
		{name: "one set is the default", src: setSource{f.src, []string{"access"}}, wantSets: []string{"access"}},
		{name: "no signing set", src: setSource{f.src, nil}, wantErr: verifier.ErrPolicy},
		{name: "source without sets, none named", src: f.src, wantSets: nil},
		{name: "source without sets, one named", src: f.src, keySets: []string{"access"}, wantErr: verifier.ErrPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			p.KeySets = tt.keySets
			v, err := verifier.New(tt.src, p, verifier.WithRevocationList(f.revs))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "KeySets") {
					t.Errorf("New error = %q, want it to name KeySets", err)
				}
				return
			}
			if got := v.Policy().KeySets; !slices.Equal(got, tt.wantSets) {
				t.Errorf("Policy().KeySets = %q, want %q", got, tt.wantSets)
			}
		})
	}
}

// TestKeySetNotTrusted: a token signed by a key of a set the Policy does
// not name is refused with ErrKeySet, also when it was cached while its
// kid belonged to a trusted set.
func TestKeySetNotTrusted(t *testing.T) {
	f := newFixture(t, "ES256", "EdDSA")
	es, ed := testSigner(t, "ES256"), testSigner(t, "EdDSA")
	partner := f.src.keys[ed.KID()]
	partner.Set = "partner"
	f.src.keys[ed.KID()] = partner
	src := setSource{f.src, []string{"access", "partner"}}
	p := basePolicy()
	p.KeySets = []string{"access"}
	v, err := verifier.New(src, p, verifier.WithRevocationList(f.revs), verifier.WithNow(f.clock), verifier.WithCache(8))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, f.issue(t, ed, baseClaims())); !errors.Is(err, verifier.ErrKeySet) {
		t.Errorf("token of the partner set: error = %v, want ErrKeySet", err)
	}
	tok := f.issue(t, es, baseClaims())
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("token of the access set: %v", err)
	}
	moved := f.src.keys[es.KID()]
	moved.Set = "partner"
	f.src.keys[es.KID()] = moved
	if _, err := v.Verify(ctx, tok); !errors.Is(err, verifier.ErrKeySet) {
		t.Errorf("cached token whose key is now in the partner set: error = %v, want ErrKeySet", err)
	}
	if st := v.CacheStats(); st.Hits != 1 {
		t.Errorf("cache hits = %d, want 1 (the refusal must come from the cached path)", st.Hits)
	}
}

// malleate returns tok with its ECDSA signature (r, s) replaced by
// (r, n−s), which verifies as well.
func malleate(t *testing.T, tok string, curve elliptic.Curve) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	size := len(sig) / 2
	s := new(big.Int).SetBytes(sig[size:])
	s.Sub(curve.Params().N, s)
	out := append(sig[:size:size], s.FillBytes(make([]byte, size))...)
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(out)
}

// TestECDSAMalleability: (r, n−s) is a second valid signature of the same
// token (JOSE does not forbid it), so the token bytes are no replay key:
// the jti is. Both forms verify to the same claims, each is its own cache
// entry, and revocation by jti or by kid refuses both, from the cache too
// (issue 14, item 7).
func TestECDSAMalleability(t *testing.T) {
	tests := []struct {
		name   string
		alg    string
		curve  elliptic.Curve
		revoke func(t *testing.T, f *fixture, kid string)
	}{
		{name: "ES256, revoke jti", alg: "ES256", curve: elliptic.P256(), revoke: func(t *testing.T, f *fixture, _ string) {
			if err := f.revs.RevokeJTI(context.Background(), "jti-1", t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ES384, revoke kid", alg: "ES384", curve: elliptic.P384(), revoke: func(t *testing.T, f *fixture, kid string) {
			if err := f.revs.RevokeKID(context.Background(), kid, t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.alg)
			s := testSigner(t, tt.alg)
			// 64: every shard holds two tokens, so the two forms never
			// evict each other (with 16, one token per shard, they did
			// when their hashes fell in the same shard).
			v := f.verifier(t, basePolicy(), verifier.WithCache(64))
			ctx := context.Background()
			tok := craft(t, s, hdr(s), claimsJSON(nil))
			twin := malleate(t, tok, tt.curve)
			if twin == tok {
				t.Fatal("malleate changed nothing")
			}
			for range 2 { // the second round is answered from the cache
				a, err := v.Verify(ctx, tok)
				if err != nil {
					t.Fatalf("Verify(token): %v", err)
				}
				b, err := v.Verify(ctx, twin)
				if err != nil {
					t.Fatalf("Verify(malleated twin): %v", err)
				}
				if a.ID != b.ID || a.Subject != b.Subject || !a.ExpiresAt.Equal(b.ExpiresAt) {
					t.Errorf("claims differ: %+v vs %+v", a, b)
				}
			}
			if st := v.CacheStats(); st.Len != 2 || st.Hits != 2 {
				t.Errorf("cache holds %d entries after %d hits, want 2 entries (one per form) and 2 hits", st.Len, st.Hits)
			}
			tt.revoke(t, f, s.KID())
			for _, form := range []string{tok, twin} {
				if _, err := v.Verify(ctx, form); !errors.Is(err, verifier.ErrRevoked) {
					t.Errorf("Verify after revocation: error = %v, want ErrRevoked", err)
				}
			}
		})
	}
}
