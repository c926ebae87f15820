package bench_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/verifier"
)

// benchAlgs are the algorithms of the speed table.
var benchAlgs = []string{"ES256", "EdDSA", "RS256", "PS256"}

// floorVerify is the least any verifier does: the SHA-256 of the signing
// input (EdDSA hashes inside) and one crypto/* verification of the
// signature, converted from r||s to DER beforehand for ECDSA.
func floorVerify(b *testing.B, k *testKey, tok string) func() bool {
	dot := strings.LastIndexByte(tok, '.')
	in := []byte(tok[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
		if err != nil {
			b.Fatal(err)
		}
		return func() bool { d := sha256.Sum256(in); return ecdsa.VerifyASN1(pub, d[:], der) }
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(pub, in, sig) }
	case *rsa.PublicKey:
		if k.alg == "PS256" {
			opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
			return func() bool { d := sha256.Sum256(in); return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, opts) == nil }
		}
		return func() bool { d := sha256.Sum256(in); return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil }
	}
	b.Fatalf("no floor for %T", k.pub)
	return nil
}

// BenchmarkVerify verifies the same token (minted by our Issuer) with the
// floor, each peer and tokenkms (whole Policy, revocation lookup among
// 10,000 revoked jtis).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, alg := range benchAlgs {
		k := keyFor(b, alg)
		tok := issue(b, k)
		b.Run(alg+"/floor", func(b *testing.B) {
			f := floorVerify(b, k, tok)
			b.ReportAllocs()
			for b.Loop() {
				if !f() {
					b.Fatal("floor: signature does not verify")
				}
			}
		})
		for _, p := range peers {
			b.Run(alg+"/"+p.name, func(b *testing.B) {
				verify := p.verify(b, k)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := verify(tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(alg+"/tokenkms", func(b *testing.B) {
			v := ourVerifier(b, k)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyWarm presents the same token again to a Verifier with
// WithCache: a hit still checks the key state, the claims and revocation.
func BenchmarkVerifyWarm(b *testing.B) {
	ctx := context.Background()
	for _, alg := range benchAlgs {
		b.Run(alg+"/tokenkms-cache", func(b *testing.B) {
			k := keyFor(b, alg)
			tok := issue(b, k)
			v := ourVerifier(b, k, verifier.WithCache(1024))
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			if st := v.CacheStats(); st.Misses != 1 {
				b.Fatalf("cache: got %+v, want every call after the first a hit", st)
			}
		})
	}
}

// BenchmarkVerifyParallel verifies ES256 from GOMAXPROCS goroutines.
func BenchmarkVerifyParallel(b *testing.B) {
	ctx := context.Background()
	k := keyFor(b, "ES256")
	tok := issue(b, k)
	b.Run("ES256/golang-jwt", func(b *testing.B) {
		verify := golangJWTVerify(b, k)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := verify(tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("ES256/tokenkms", func(b *testing.B) {
		v := ourVerifier(b, k)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkSign mints a token (fresh jti, claims encoding, signature).
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{"ES256", "EdDSA"} {
		k := keyFor(b, alg)
		in := []byte(issue(b, k))
		in = in[:strings.LastIndexByte(string(in), '.')]
		b.Run(alg+"/floor", func(b *testing.B) {
			b.ReportAllocs()
			switch priv := k.priv.(type) {
			case *ecdsa.PrivateKey:
				for b.Loop() {
					d := sha256.Sum256(in)
					if _, err := ecdsa.SignASN1(rand.Reader, priv, d[:]); err != nil {
						b.Fatal(err)
					}
				}
			case ed25519.PrivateKey:
				for b.Loop() {
					ed25519.Sign(priv, in)
				}
			}
		})
		for _, p := range peers {
			b.Run(alg+"/"+p.name, func(b *testing.B) {
				sign := p.sign(b, k)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := sign(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(alg+"/tokenkms", func(b *testing.B) {
			is := ourIssuer(b, k)
			c := ourClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := is.Issue(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRejectHuge refuses 1 MiB of garbage.
func BenchmarkRejectHuge(b *testing.B) {
	ctx := context.Background()
	k := keyFor(b, "ES256")
	v := ourVerifier(b, k)
	tok := strings.Repeat("A", 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verifier.ErrTooLarge) {
			b.Fatalf("got %v, want %v", err, verifier.ErrTooLarge)
		}
	}
}
