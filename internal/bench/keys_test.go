package bench_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

const (
	testIssuer    = "https://issuer.test"
	testAudience  = "api://orders"
	testClient    = "client-1"
	testSubject   = "user-7"
	testScope     = "orders:read orders:write"
	testPrincipal = "user"
)

// algs is every algorithm of the interop matrix.
var algs = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

// testKey is a key pair made with crypto/* for one algorithm.
type testKey struct {
	alg  string
	kid  string
	priv crypto.Signer
	pub  crypto.PublicKey
}

var (
	keysMu sync.Mutex
	keys   = map[string]*testKey{}
)

// keyFor returns the key of alg, made once per test binary (RSA is slow).
func keyFor(t testing.TB, alg string) *testKey {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[alg]; ok {
		return k
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("no key for %s", alg)
	}
	if err != nil {
		t.Fatalf("key for %s: %v", alg, err)
	}
	k := &testKey{alg: alg, kid: "kid-" + alg, priv: priv, pub: priv.Public()}
	keys[alg] = k
	return k
}

// keySource gives the public keys of keyFor to our Verifier.
type keySource map[string]*testKey

func (s keySource) VerificationKey(_ context.Context, kid string) (verifier.Key, error) {
	k, ok := s[kid]
	if !ok {
		return verifier.Key{}, fmt.Errorf("bench source: %w", verifier.ErrUnknownKID)
	}
	return verifier.Key{KID: k.kid, Set: "access", Algorithm: k.alg, Public: k.pub}, nil
}

func policy() verifier.Policy {
	return verifier.Policy{Issuer: testIssuer, Audience: []string{testAudience}}
}

// ourVerifier verifies the tokens of k with the whole default Policy and a
// revocation list holding 10,000 other jtis.
func ourVerifier(t testing.TB, k *testKey, opts ...verifier.Option) *verifier.Verifier {
	t.Helper()
	revs := verifier.NewMemoryRevocationList(nil)
	ctx := context.Background()
	for i := range 10_000 {
		if err := revs.RevokeJTI(ctx, fmt.Sprintf("other-%d", i), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verifier.New(keySource{k.kid: k}, policy(), append([]verifier.Option{verifier.WithRevocationList(revs)}, opts...)...)
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	return v
}

type activeKeys struct{ s signer.Signer }

func (a activeKeys) Signer(context.Context, string) (signer.Signer, error) { return a.s, nil }

// ourIssuer signs with k through signer.FromCryptoSigner.
func ourIssuer(t testing.TB, k *testKey) *signer.Issuer {
	t.Helper()
	s, err := signer.FromCryptoSigner(k.kid, k.alg, k.priv)
	if err != nil {
		t.Fatalf("FromCryptoSigner(%s): %v", k.alg, err)
	}
	is, err := signer.NewIssuer(activeKeys{s}, signer.IssuerConfig{
		Set: "access", Issuer: testIssuer, Audience: []string{testAudience},
		DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour,
	})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return is
}

func ourClaims() tokenkms.Claims {
	return tokenkms.Claims{
		Subject: testSubject, ClientID: testClient, PrincipalType: testPrincipal,
		Scope: []string{"orders:read", "orders:write"},
	}
}

// issue mints a token of k with our Issuer.
func issue(t testing.TB, k *testKey) string {
	t.Helper()
	tok, err := ourIssuer(t, k).Issue(context.Background(), ourClaims())
	if err != nil {
		t.Fatalf("Issue(%s): %v", k.alg, err)
	}
	return tok
}

func jwxAlg(t testing.TB, alg string) jwa.SignatureAlgorithm {
	t.Helper()
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		t.Fatalf("jwx has no %s", alg)
	}
	return a
}
