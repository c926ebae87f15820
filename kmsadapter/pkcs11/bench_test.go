//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
)

// BenchmarkSign compares, in one run, a signature through the adapter
// (hash, PKCS#11 call, DER to r||s, range checks) with the direct crypto11
// call on the same key (hash, PKCS#11 call, DER out).
func BenchmarkSign(b *testing.B) {
	p := newProvider(b, pkcs11.Options{})
	raw := rawToken(b)
	setup, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	input := []byte("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0")
	for _, alg := range []string{"ES256", "RS256"} {
		s, ref, err := p.Generate(setup, "bench-"+alg, alg)
		if err != nil {
			b.Fatalf("Generate: %v", err)
		}
		keys, err := raw.FindKeyPairs(refID(b, ref), nil)
		if err != nil || len(keys) != 1 {
			b.Fatalf("FindKeyPairs: %d keys, %v", len(keys), err)
		}
		direct := keys[0]
		b.Run(alg+"/direct-crypto11", func(b *testing.B) {
			for b.Loop() {
				d := sha256.Sum256(input)
				if _, err := direct.Sign(nil, d[:], hashOf(alg)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/adapter", func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := s.Sign(ctx, input); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/adapter-with-deadline", func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			for b.Loop() {
				if _, err := s.Sign(ctx, input); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	es, _, err := p.Generate(setup, "bench-concurrent", "ES256")
	if err != nil {
		b.Fatalf("Generate: %v", err)
	}
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("ES256/concurrent-signers=%d", n), func(b *testing.B) {
			benchConcurrent(b, es, input, n)
		})
	}
}

// benchConcurrent signs b.N times from n goroutines sharing one Signer and
// reports signatures per second.
func benchConcurrent(b *testing.B, s signer.Signer, input []byte, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Sign(ctx, input); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

func hashOf(alg string) crypto.SignerOpts {
	if alg == "PS256" {
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	return crypto.SHA256
}
