package jwks_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/verifier"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	ecKey   = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	ec384   = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) })
	edKey   = sync.OnceValue(func() ed25519.PrivateKey { _, k, err := ed25519.GenerateKey(rand.Reader); return must(k, err) })
	rsaKey  = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	rsaWeak = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 1024)) })
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// source is a KeySource whose keys tests change, as rotation would.
type source struct {
	mu   sync.Mutex
	keys []verifier.Key
	err  error
}

func (s *source) PublicKeys(context.Context) ([]verifier.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys), s.err
}

func (s *source) set(keys ...verifier.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func key(kid, alg string, pub crypto.PublicKey) verifier.Key {
	return verifier.Key{KID: kid, Set: "access-tokens", Algorithm: alg, Public: pub}
}

func fourKeys() []verifier.Key {
	return []verifier.Key{
		key("k-rsa", "RS256", &rsaKey().PublicKey),
		key("k-ec", "ES256", &ecKey().PublicKey),
		key("k-ed", "EdDSA", edKey().Public()),
		key("k-ec384", "ES384", &ec384().PublicKey),
	}
}

func get(t *testing.T, h http.Handler, method string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, "/.well-known/jwks.json", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerPublishesOnlyPublicMembers(t *testing.T) {
	h := jwks.NewHandler(&source{keys: fourKeys()})
	resp := get(t, h, http.MethodGet, nil)
	b := body(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	for name, want := range map[string]string{
		"Content-Type":           "application/jwk-set+json",
		"Cache-Control":          "public, max-age=300, must-revalidate",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	sum := sha256.Sum256([]byte(b))
	if got, want := resp.Header.Get("ETag"), `"`+hex.EncodeToString(sum[:])+`"`; got != want {
		t.Errorf("ETag: got %s, want %s", got, want)
	}

	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(b), &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	members := map[string][]string{
		"EC":  {"alg", "crv", "kid", "kty", "use", "x", "y"},
		"OKP": {"alg", "crv", "kid", "kty", "use", "x"},
		"RSA": {"alg", "e", "kid", "kty", "n", "use"},
	}
	var kids []string
	for _, k := range doc.Keys {
		kty, _ := k["kty"].(string)
		var got []string
		for m := range k {
			got = append(got, m)
		}
		slices.Sort(got)
		if diff := cmp.Diff(members[kty], got); diff != "" {
			t.Errorf("%v members (-want +got):\n%s", k["kid"], diff)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("%v: private member %q published", k["kid"], private)
			}
		}
		if k["use"] != "sig" {
			t.Errorf("%v use: got %v, want sig", k["kid"], k["use"])
		}
		kids = append(kids, k["kid"].(string))
	}
	if diff := cmp.Diff([]string{"k-ec", "k-ec384", "k-ed", "k-rsa"}, kids); diff != "" {
		t.Errorf("kids in order (-want +got):\n%s", diff)
	}

	set, err := jwk.Parse([]byte(b))
	if err != nil {
		t.Fatalf("jwk.Parse: %v", err)
	}
	for _, want := range fourKeys() {
		jk, ok := set.LookupKeyID(want.KID)
		if !ok {
			t.Fatalf("kid %s missing", want.KID)
		}
		var pub any
		if err := jwk.Export(jk, &pub); err != nil {
			t.Fatalf("Export %s: %v", want.KID, err)
		}
		if !want.Public.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Errorf("kid %s: published key differs from the source's", want.KID)
		}
		if alg, _ := jk.Algorithm(); alg.String() != want.Algorithm {
			t.Errorf("kid %s alg: got %s, want %s", want.KID, alg, want.Algorithm)
		}
	}
}

func TestHandlerRefusesKeys(t *testing.T) {
	tests := []struct {
		name string
		keys []verifier.Key
		want error
	}{
		{"ECDSA private key", []verifier.Key{key("k", "ES256", ecKey())}, jwks.ErrPrivateKey},
		{"RSA private key", []verifier.Key{key("k", "RS256", rsaKey())}, jwks.ErrPrivateKey},
		{"Ed25519 private key", []verifier.Key{key("k", "EdDSA", edKey())}, jwks.ErrPrivateKey},
		{"raw bytes", []verifier.Key{key("k", "HS256", []byte("secret"))}, jwks.ErrPrivateKey},
		{"private key after a good one", []verifier.Key{key("a", "ES256", &ecKey().PublicKey), key("b", "ES256", ecKey())}, jwks.ErrPrivateKey},
		{"no kid", []verifier.Key{key("", "ES256", &ecKey().PublicKey)}, jwks.ErrKey},
		{"duplicate kid", []verifier.Key{key("k", "ES256", &ecKey().PublicKey), key("k", "ES384", &ec384().PublicKey)}, jwks.ErrKey},
		{"unknown alg", []verifier.Key{key("k", "HS256", &ecKey().PublicKey)}, jwks.ErrKey},
		{"alg of another curve", []verifier.Key{key("k", "ES256", &ec384().PublicKey)}, jwks.ErrKey},
		{"RSA 1024", []verifier.Key{key("k", "RS256", &rsaWeak().PublicKey)}, jwks.ErrKey},
		{"nil key", []verifier.Key{key("k", "ES256", nil)}, jwks.ErrKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got error
			h := jwks.NewHandler(&source{keys: tc.keys}, jwks.WithErrorHandler(func(_ *http.Request, err error) { got = err }))
			resp := get(t, h, http.MethodGet, nil)
			b := body(t, resp)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status: got %d, want 500", resp.StatusCode)
			}
			if b != "internal error\n" {
				t.Errorf("body: got %q, want the generic one", b)
			}
			if !errors.Is(got, tc.want) || !errors.Is(got, jwks.ErrKey) {
				t.Errorf("error: got %v, want %v (and ErrKey)", got, tc.want)
			}
			if resp.Header.Get("ETag") != "" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers: got ETag %q Cache-Control %q, want none and no-store", resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
			}
			if got != nil && strings.Contains(got.Error(), "secret") {
				t.Errorf("error leaks key material: %v", got)
			}
		})
	}
}

func TestHandlerSourceFailure(t *testing.T) {
	errDown := errors.New("store down: dsn=postgres://u:pw@db")
	var got error
	h := jwks.NewHandler(&source{err: errDown}, jwks.WithErrorHandler(func(_ *http.Request, err error) { got = err }))
	resp := get(t, h, http.MethodGet, nil)
	b := body(t, resp)
	if resp.StatusCode != http.StatusInternalServerError || b != "internal error\n" {
		t.Fatalf("got %d %q, want 500 with a generic body", resp.StatusCode, b)
	}
	if !errors.Is(got, errDown) {
		t.Errorf("error handler: got %v, want the source's error", got)
	}
	if nilSrc := get(t, jwks.NewHandler(nil), http.MethodGet, nil); nilSrc.StatusCode != http.StatusInternalServerError {
		t.Errorf("nil source: got %d, want 500", nilSrc.StatusCode)
	}
}

func TestHandlerMaxAge(t *testing.T) {
	tests := []struct {
		opt  jwks.Option
		want string
	}{
		{jwks.WithMaxAge(90 * time.Second), "public, max-age=90, must-revalidate"},
		{jwks.WithMaxAge(1500 * time.Millisecond), "public, max-age=1, must-revalidate"},
		{jwks.WithMaxAge(-time.Second), "public, max-age=0, must-revalidate"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			resp := get(t, jwks.NewHandler(&source{keys: fourKeys()}, tc.opt), http.MethodGet, nil)
			if got := resp.Header.Get("Cache-Control"); got != tc.want {
				t.Errorf("Cache-Control: got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHandlerConditionalAndMethods(t *testing.T) {
	h := jwks.NewHandler(&source{keys: fourKeys()})
	first := get(t, h, http.MethodGet, nil)
	full := body(t, first)
	etag := first.Header.Get("ETag")
	tests := []struct {
		name       string
		method     string
		inm        string
		wantStatus int
		wantBody   string
	}{
		{"exact match", http.MethodGet, etag, http.StatusNotModified, ""},
		{"weak form matches", http.MethodGet, "W/" + etag, http.StatusNotModified, ""},
		{"in a list", http.MethodGet, `"other", ` + etag, http.StatusNotModified, ""},
		{"star", http.MethodGet, "*", http.StatusNotModified, ""},
		{"no match", http.MethodGet, `"other"`, http.StatusOK, full},
		{"unquoted value does not match", http.MethodGet, strings.Trim(etag, `"`), http.StatusOK, full},
		{"HEAD", http.MethodHead, "", http.StatusOK, ""},
		{"HEAD conditional", http.MethodHead, etag, http.StatusNotModified, ""},
		{"POST", http.MethodPost, "", http.StatusMethodNotAllowed, "method not allowed\n"},
		{"PUT", http.MethodPut, "", http.StatusMethodNotAllowed, "method not allowed\n"},
		{"DELETE", http.MethodDelete, "", http.StatusMethodNotAllowed, "method not allowed\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.inm != "" {
				hdr["If-None-Match"] = tc.inm
			}
			resp := get(t, h, tc.method, hdr)
			if got := body(t, resp); resp.StatusCode != tc.wantStatus || got != tc.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, got, tc.wantStatus, tc.wantBody)
			}
			switch tc.wantStatus {
			case http.StatusMethodNotAllowed:
				if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow: got %q, want %q", got, "GET, HEAD")
				}
			default:
				if got := resp.Header.Get("ETag"); got != etag {
					t.Errorf("ETag: got %q, want %q", got, etag)
				}
			}
			if tc.method == http.MethodHead && tc.wantStatus == http.StatusOK {
				if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(len(full)); got != want {
					t.Errorf("HEAD Content-Length: got %s, want %s", got, want)
				}
			}
		})
	}
}

func TestHandlerFollowsRotation(t *testing.T) {
	src := &source{keys: fourKeys()[:2]}
	h := jwks.NewHandler(src)
	etag := func() string { return get(t, h, http.MethodGet, nil).Header.Get("ETag") }
	before := etag()
	if again := etag(); again != before {
		t.Errorf("unchanged key list: ETag %s then %s", before, again)
	}
	reordered := fourKeys()[:2]
	reordered[0], reordered[1] = reordered[1], reordered[0]
	src.set(reordered...)
	if got := etag(); got != before {
		t.Errorf("same keys in another order: ETag %s, want %s", got, before)
	}
	src.set(fourKeys()...)
	added := etag()
	if added == before {
		t.Errorf("key added: ETag unchanged")
	}
	resp := get(t, h, http.MethodGet, map[string]string{"If-None-Match": before})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body(t, resp), `"kid":"k-ed"`) {
		t.Errorf("revalidation with the old ETag: got %d, want 200 with the new key", resp.StatusCode)
	}
	other := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	changed := fourKeys()
	changed[1] = key("k-ec", "ES256", &other.PublicKey)
	src.set(changed...)
	if got := etag(); got == added {
		t.Errorf("public key changed under the same kid: ETag unchanged, stale body served")
	}
}

func TestHandlerConcurrentRotation(t *testing.T) {
	src := &source{keys: fourKeys()}
	h := jwks.NewHandler(src)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if g == 0 {
					src.set(fourKeys()[:1+i%4]...)
					continue
				}
				if resp := get(t, h, http.MethodGet, nil); resp.StatusCode != http.StatusOK {
					t.Errorf("status: got %d, want 200", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
}

// policySource is a source whose policy fixes the max-age.
type policySource struct {
	source
	maxAge time.Duration
}

func (s *policySource) JWKSMaxAge() time.Duration { return s.maxAge }

func TestHandlerMaxAgeFromSource(t *testing.T) {
	src := &policySource{source: source{keys: fourKeys()}, maxAge: 2 * time.Minute}
	if got := get(t, jwks.NewHandler(src), http.MethodGet, nil).Header.Get("Cache-Control"); got != "public, max-age=120, must-revalidate" {
		t.Errorf("Cache-Control from the source's policy: got %q, want max-age=120", got)
	}
	if got := get(t, jwks.NewHandler(src, jwks.WithMaxAge(time.Minute)), http.MethodGet, nil).Header.Get("Cache-Control"); got != "public, max-age=60, must-revalidate" {
		t.Errorf("WithMaxAge over the source's policy: got %q, want max-age=60", got)
	}
}

// TestHandlerWithSets: WithSets publishes only the named sets' keys, so a
// remote verifier of one API is served no other set's key (issue 14,
// item 2).
func TestHandlerWithSets(t *testing.T) {
	keys := fourKeys()
	keys[1].Set, keys[3].Set = "partner-tokens", "partner-tokens"
	tests := []struct {
		name string
		sets []string
		want []string // kids served
		gone []string
	}{
		{name: "one set", sets: []string{"access-tokens"}, want: []string{"k-rsa", "k-ed"}, gone: []string{"k-ec", "k-ec384"}},
		{name: "the other set", sets: []string{"partner-tokens"}, want: []string{"k-ec", "k-ec384"}, gone: []string{"k-rsa", "k-ed"}},
		{name: "unknown set", sets: []string{"acess-tokens"}, gone: []string{"k-rsa", "k-ec", "k-ed", "k-ec384"}},
		{name: "no option", want: []string{"k-rsa", "k-ec", "k-ed", "k-ec384"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []jwks.Option
			if tt.sets != nil {
				opts = append(opts, jwks.WithSets(tt.sets...))
			}
			src := &source{}
			src.set(keys...)
			r := get(t, jwks.NewHandler(src, opts...), http.MethodGet, nil)
			b := body(t, r)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			for _, kid := range tt.want {
				if !strings.Contains(b, `"kid":"`+kid+`"`) {
					t.Errorf("%s not served: %s", kid, b)
				}
			}
			for _, kid := range tt.gone {
				if strings.Contains(b, `"kid":"`+kid+`"`) {
					t.Errorf("%s served: %s", kid, b)
				}
			}
		})
	}
}
