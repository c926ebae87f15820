package verifier_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// joseErrors are the sentinels of internal/jose.
var joseErrors = []error{
	jose.ErrUnsupportedAlg, jose.ErrKeyMismatch, jose.ErrBadSignature, jose.ErrBase64,
	jose.ErrSyntax, jose.ErrDuplicate, jose.ErrType, jose.ErrEncode,
}

// FuzzVerify feeds mutated tokens, seeded from the attack corpus, to a
// Verifier holding the fixed test key. No input panics, every error wraps
// a verifier sentinel, and an accepted token's signature verifies with
// crypto/ecdsa over its exact signing input.
func FuzzVerify(f *testing.F) {
	for _, a := range readAttacks(f) {
		f.Add(a.Token)
	}
	v := attackVerifier(f)
	pub := &attackKey(f).PublicKey
	f.Fuzz(func(t *testing.T, tok string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := v.Verify(ctx, tok)
		if err != nil {
			for _, s := range verifierErrors {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Verify error wraps no verifier sentinel: %v", err)
		}
		i := strings.LastIndexByte(tok, '.')
		sig, derr := base64.RawURLEncoding.Strict().DecodeString(tok[i+1:])
		if derr != nil || len(sig) != 64 {
			t.Fatalf("accepted token has a signature that is not 64 bytes of base64url")
		}
		h := sha256.Sum256([]byte(tok[:i]))
		if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("accepted token not signed by the test key")
		}
	})
}

// FuzzParseHeader checks that jose.ParseHeader never panics, fails only
// with its own sentinels, and that a header it accepts keeps alg and kid
// as strings it can re-encode.
func FuzzParseHeader(f *testing.F) {
	for _, a := range readAttacks(f) {
		h, _, _ := strings.Cut(a.Token, ".")
		if raw, err := base64.RawURLEncoding.DecodeString(h); err == nil {
			f.Add(string(raw))
		}
	}
	f.Add(`{"alg":"ES256","kid":"k","typ":"at+jwt","crit":["x"],"jku":"https://127.0.0.1/"}`)
	f.Fuzz(func(t *testing.T, s string) {
		h, err := jose.ParseHeader(s)
		if err != nil {
			for _, e := range joseErrors {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("ParseHeader error wraps no jose sentinel: %v", err)
		}
		if _, err := jose.AppendHeader(nil, h.Alg, h.KID, h.Typ); err != nil && !errors.Is(err, jose.ErrEncode) {
			t.Fatalf("AppendHeader of a parsed header: %v", err)
		}
	})
}
