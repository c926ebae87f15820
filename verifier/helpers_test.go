package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// t0 is the fixed "now" of these tests.
var t0 = time.Unix(1_700_000_000, 0).UTC()

const (
	testIssuer   = "https://issuer.test"
	testAudience = "api://orders"
	testClient   = "client-1"
)

// keySource is an in-test verifier.KeySource.
type keySource struct {
	keys map[string]verifier.Key
	errs map[string]error
}

func (k *keySource) VerificationKey(_ context.Context, kid string) (verifier.Key, error) {
	if err, ok := k.errs[kid]; ok {
		return verifier.Key{}, err
	}
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return verifier.Key{}, fmt.Errorf("test source: %w", verifier.ErrUnknownKID)
}

// activeKeys is an in-test signer.ActiveKeys.
type activeKeys struct {
	s   signer.Signer
	err error
}

func (a activeKeys) Signer(context.Context, string) (signer.Signer, error) { return a.s, a.err }

var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]signer.Signer{}
)

// testSigner returns a local signer for alg with kid "kid-<alg>", made
// once per test binary (RSA generation is slow).
func testSigner(t testing.TB, alg string) signer.Signer {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	if s, ok := keyCache[alg]; ok {
		return s
	}
	p, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatalf("NewLocalProvider: %v", err)
	}
	s, _, err := p.Generate(context.Background(), "kid-"+alg, alg)
	if err != nil {
		t.Fatalf("Generate(%s): %v", alg, err)
	}
	keyCache[alg] = s
	return s
}

// fixture is a key source with one key per algorithm, a revocation list
// and a clock at t0.
type fixture struct {
	src  *keySource
	revs *verifier.MemoryRevocationList
	now  time.Time
}

func newFixture(t testing.TB, algs ...string) *fixture {
	t.Helper()
	f := &fixture{src: &keySource{keys: map[string]verifier.Key{}, errs: map[string]error{}}, now: t0}
	f.revs = verifier.NewMemoryRevocationList(f.clock)
	for _, alg := range algs {
		f.add(testSigner(t, alg))
	}
	return f
}

func (f *fixture) clock() time.Time { return f.now }

func (f *fixture) add(s signer.Signer) {
	f.src.keys[s.KID()] = verifier.Key{KID: s.KID(), Set: "access", Algorithm: s.Algorithm(), Public: s.Public()}
}

func basePolicy() verifier.Policy {
	return verifier.Policy{Issuer: testIssuer, Audience: []string{testAudience}}
}

func (f *fixture) verifier(t testing.TB, p verifier.Policy, opts ...verifier.Option) *verifier.Verifier {
	t.Helper()
	opts = append([]verifier.Option{verifier.WithRevocationList(f.revs), verifier.WithNow(f.clock)}, opts...)
	v, err := verifier.New(f.src, p, opts...)
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	return v
}

func (f *fixture) issuer(t testing.TB, s signer.Signer) *signer.Issuer {
	t.Helper()
	is, err := signer.NewIssuer(activeKeys{s: s}, signer.IssuerConfig{
		Set: "access", Issuer: testIssuer, Audience: []string{testAudience},
		DefaultLifetime: 10 * time.Minute, MaxLifetime: time.Hour, Now: f.clock,
	})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return is
}

func baseClaims() tokenkms.Claims {
	return tokenkms.Claims{Subject: "user-7", ClientID: testClient, Scope: []string{"orders:read", "orders:write"}, PrincipalType: "user"}
}

func (f *fixture) issue(t testing.TB, s signer.Signer, c tokenkms.Claims) string {
	t.Helper()
	tok, err := f.issuer(t, s).Issue(context.Background(), c)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

func b64(s string) string { return string(jose.AppendEncode(nil, []byte(s))) }

// craft signs header.payload (raw JSON texts) with s, whatever they hold.
func craft(t testing.TB, s signer.Signer, header, payload string) string {
	t.Helper()
	in := b64(header) + "." + b64(payload)
	sig, err := s.Sign(context.Background(), []byte(in))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return in + "." + string(jose.AppendEncode(nil, sig))
}

// hdr is the JSON header of a well-formed token of s, with extra members.
func hdr(s signer.Signer, extra ...string) string {
	h := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt"`, s.Algorithm(), s.KID())
	for _, e := range extra {
		h += "," + e
	}
	return h + "}"
}

// claimsJSON is the JSON of a valid claims set at t0, with members
// replaced (name → raw JSON value; "" drops the member) and extra raw
// members appended.
func claimsJSON(replace map[string]string, extra ...string) string {
	base := [][2]string{
		{"iss", `"` + testIssuer + `"`},
		{"sub", `"user-7"`},
		{"aud", `"` + testAudience + `"`},
		{"exp", fmt.Sprint(t0.Add(10 * time.Minute).Unix())},
		{"nbf", fmt.Sprint(t0.Unix())},
		{"iat", fmt.Sprint(t0.Unix())},
		{"jti", `"jti-1"`},
		{"client_id", `"` + testClient + `"`},
		{"principal_type", `"user"`},
		{"scope", `"orders:read orders:write"`},
	}
	var parts []string
	for _, m := range base {
		v := m[1]
		if r, ok := replace[m[0]]; ok {
			v = r
		}
		if v != "" {
			parts = append(parts, fmt.Sprintf("%q:%s", m[0], v))
		}
	}
	parts = append(parts, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}

// failingList is a RevocationList whose lookups fail.
type failingList struct{}

var errListDown = errors.New("test: list down")

func (failingList) RevokeJTI(context.Context, string, time.Time) error { return errListDown }
func (failingList) RevokeKID(context.Context, string, time.Time) error { return errListDown }
func (failingList) Revoked(context.Context, string, string, time.Time) (bool, error) {
	return false, errListDown
}

// revocableSource is a KeySource that is also a RevocationList.
type revocableSource struct {
	*keySource
	*verifier.MemoryRevocationList
}
