package signer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/signer"
)

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func jwkJSON(t *testing.T, key any, kid string) []byte {
	t.Helper()
	k, err := jwk.Import(key)
	if err != nil {
		t.Fatalf("jwk.Import: %v", err)
	}
	if kid != "" {
		if err := k.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParsePrivateKey reads every accepted form and refuses the rest with
// ErrKeyFormat, without quoting the input.
func TestParsePrivateKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	spki, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(ed)
	tests := []struct {
		name    string
		in      []byte
		wantPub crypto.PublicKey
		wantKID string
		wantErr error
	}{
		{name: "PKCS#8 EC", in: pemBlock("PRIVATE KEY", pkcs8), wantPub: &ec.PublicKey},
		{name: "SEC 1 EC", in: pemBlock("EC PRIVATE KEY", sec1), wantPub: &ec.PublicKey},
		{name: "PKCS#1 RSA", in: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), wantPub: &rk.PublicKey},
		{name: "PKCS#8 Ed25519", in: pemBlock("PRIVATE KEY", edPKCS8), wantPub: ed.Public()},
		{name: "JWK EC with kid", in: jwkJSON(t, ec, "core-1"), wantPub: &ec.PublicKey, wantKID: "core-1"},
		{name: "JWK RSA", in: jwkJSON(t, rk, ""), wantPub: &rk.PublicKey},
		{name: "JWK public only", in: jwkJSON(t, &ec.PublicKey, "x"), wantErr: signer.ErrKeyFormat},
		{name: "public key PEM", in: pemBlock("PUBLIC KEY", spki), wantErr: signer.ErrKeyFormat},
		{name: "corrupt PKCS#8", in: pemBlock("PRIVATE KEY", pkcs8[:20]), wantErr: signer.ErrKeyFormat},
		{name: "two blocks", in: append(pemBlock("PRIVATE KEY", pkcs8), pemBlock("PRIVATE KEY", pkcs8)...), wantErr: signer.ErrKeyFormat},
		{name: "garbage", in: []byte("not a key at all"), wantErr: signer.ErrKeyFormat},
		{name: "bad JSON", in: []byte(`{"kty":"EC","d":"secretvalue"`), wantErr: signer.ErrKeyFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, kid, err := signer.ParsePrivateKey(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secretvalue") {
					t.Fatalf("error quotes the input: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if !tc.wantPub.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Fatal("parsed key has another public key")
			}
			if kid != tc.wantKID {
				t.Fatalf("kid = %q, want %q", kid, tc.wantKID)
			}
		})
	}
}

// TestCheckImportedKeyROCA refuses a modulus with the ROCA fingerprint and
// accepts a sound one.
func TestCheckImportedKeyROCA(t *testing.T) {
	err := signer.CheckImportedKey("RS256", lifecycletest.ROCAPublicKey())
	if !errors.Is(err, signer.ErrWeakKey) || !strings.Contains(err.Error(), "ROCA") {
		t.Fatalf("ROCA modulus: got %v, want ErrWeakKey naming ROCA", err)
	}
	good, _ := rsa.GenerateKey(rand.Reader, 2048)
	if err := signer.CheckImportedKey("RS256", &good.PublicKey); err != nil {
		t.Fatalf("sound key: %v", err)
	}
	if err := signer.CheckImportedKey("HS256", &good.PublicKey); !errors.Is(err, signer.ErrUnsupportedAlgorithm) {
		t.Fatalf("HS256: got %v, want ErrUnsupportedAlgorithm", err)
	}
}

// TestLocalImport seals an imported key, reopens it from its reference
// under the same kid only, and signs with it.
func TestLocalImport(t *testing.T) {
	ctx := testCtx(t)
	lp, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, ref, err := lp.Import(ctx, "core-1", "ES256", ec)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if !ec.PublicKey.Equal(s.Public()) {
		t.Fatal("imported signer has another public key")
	}
	reopened, err := lp.Open(ctx, "core-1", ref)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sig, err := reopened.Sign(ctx, []byte("input"))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	a, _ := jose.Lookup("ES256")
	if err := a.Verify(&ec.PublicKey, []byte("input"), sig); err != nil {
		t.Fatalf("signature of the reopened key: %v", err)
	}
	if _, err := lp.Open(ctx, "core-2", ref); !errors.Is(err, signer.ErrUnwrap) {
		t.Fatalf("Open under another kid: got %v, want ErrUnwrap", err)
	}
	if _, _, err := lp.Import(ctx, "core-1", "ES384", ec); !errors.Is(err, signer.ErrWeakKey) {
		t.Fatalf("Import P-256 as ES384: got %v, want ErrWeakKey", err)
	}
	if _, _, err := lp.Import(ctx, "core-1", "ES256", nil); !errors.Is(err, signer.ErrKeyFormat) {
		t.Fatalf("Import nil: got %v, want ErrKeyFormat", err)
	}
}
