package verifier_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/verifier"
)

// benchVerify measures Verify of a valid token through a
// MemoryRevocationList holding 10,000 other jtis.
func benchVerify(b *testing.B, alg string) {
	f := newFixture(b, alg)
	ctx := context.Background()
	for i := range 10_000 {
		if err := f.revs.RevokeJTI(ctx, fmt.Sprintf("other-%d", i), t0.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	v := f.verifier(b, basePolicy())
	tok := f.issue(b, testSigner(b, alg), baseClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedES256 measures Verify of a token answered from the
// verified-token cache (WithCache): the key lookup, the time checks and
// the revocation check, no signature.
func BenchmarkVerifyCachedES256(b *testing.B) {
	f := newFixture(b, "ES256")
	ctx := context.Background()
	v := f.verifier(b, basePolicy(), verifier.WithCache(1024))
	tok := f.issue(b, testSigner(b, "ES256"), baseClaims())
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	if st := v.CacheStats(); st.Hits == 0 {
		b.Fatalf("no cache hit: %+v", st)
	}
}

func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, "ES256") }
func BenchmarkVerifyES384(b *testing.B) { benchVerify(b, "ES384") }
func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b, "EdDSA") }
func BenchmarkVerifyRS256(b *testing.B) { benchVerify(b, "RS256") }
func BenchmarkVerifyPS256(b *testing.B) { benchVerify(b, "PS256") }

// BenchmarkCryptoFloorES256 is what Verify cannot go below for ES256: the
// SHA-256 of the same token's signing input and one crypto/ecdsa
// verification of its signature.
func BenchmarkCryptoFloorES256(b *testing.B) {
	f := newFixture(b, "ES256")
	s := testSigner(b, "ES256")
	tok := f.issue(b, s, baseClaims())
	dot := strings.LastIndexByte(tok, '.')
	in := []byte(tok[:dot])
	sig, err := jose.AppendDecode(nil, []byte(tok[dot+1:]))
	if err != nil {
		b.Fatal(err)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		b.Fatal(err)
	}
	pub := s.Public().(*ecdsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(in)
		if !ecdsa.VerifyASN1(pub, d[:], der) {
			b.Fatal("floor: signature does not verify")
		}
	}
}
