package gcpkms_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenkms/tokenkms/internal/gcpkmsfake"
	"github.com/tokenkms/tokenkms/internal/jose"
)

// BenchmarkSign compares, in one run against the in-process fake over
// loopback gRPC, a Sign through the adapter (hash, checksums, local
// verification, DER to r||s) with the bare SDK call it wraps (hash and
// AsymmetricSign with digest_crc32c, no checks), and the local signature
// check alone.
func BenchmarkSign(b *testing.B) {
	e := newEnv(b)
	for _, alg := range []string{"ES256", "PS256"} {
		s, ref := e.generate(b, "bench-"+alg, alg)
		ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
		b.Cleanup(cancel)
		b.Run(alg+"/adapter", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Sign(ctx, []byte(input)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/sdk", func(b *testing.B) {
			for b.Loop() {
				d := sha256.Sum256([]byte(input))
				if _, err := e.client.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
					Name:         ref,
					Digest:       &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: d[:]}},
					DigestCrc32C: wrapperspb.Int64(gcpkmsfake.CRC32C(d[:])),
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The part of the adapter's overhead that is the local check of
		// the signature, measured alone.
		b.Run(alg+"/verify-only", func(b *testing.B) {
			a, _ := jose.Lookup(alg)
			sig, err := s.Sign(ctx, []byte(input))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := a.Verify(s.Public(), []byte(input), sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignConcurrent measures ES256 throughput through the adapter
// with 1, 8 and 32 goroutines sharing one Signer; it reports signs/s.
func BenchmarkSignConcurrent(b *testing.B) {
	e := newEnv(b)
	s, _ := e.generate(b, "bench-concurrent", "ES256")
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	b.Cleanup(cancel)
	for _, workers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("signers=%d", workers), func(b *testing.B) {
			var next atomic.Int64
			n := int64(b.N)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for next.Add(1) <= n {
						if _, err := s.Sign(ctx, []byte(input)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signs/s")
		})
	}
}
