package awskms_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
)

// BenchmarkSign compares, in one run, a signature through the adapter and
// the bare SDK call it makes (hash, then Sign with MessageType DIGEST). The
// two alternate in one loop, so that load on the machine hits both alike;
// it reports the mean of each and the adapter's overhead in percent.
func BenchmarkSign(b *testing.B) {
	c := localKMS(b)
	ctx := testCtx(b)
	for _, tc := range []struct {
		name    string
		alg     string
		opts    *awskms.Options
		signing types.SigningAlgorithmSpec
	}{
		{name: "ES256", alg: "ES256", signing: types.SigningAlgorithmSpecEcdsaSha256},
		{name: "ES256-verify", alg: "ES256", opts: &awskms.Options{VerifyECDSA: true}, signing: types.SigningAlgorithmSpecEcdsaSha256},
		{name: "ES384", alg: "ES384", signing: types.SigningAlgorithmSpecEcdsaSha384},
		{name: "RS256", alg: "RS256", signing: types.SigningAlgorithmSpecRsassaPkcs1V15Sha256},
	} {
		s, ref, err := newProvider(b, c, tc.opts).Generate(ctx, "kid-bench-"+tc.name, tc.alg)
		if err != nil {
			b.Fatalf("Generate: %v", err)
		}
		a, _ := jose.Lookup(tc.alg)
		b.Run(tc.name, func(b *testing.B) {
			var sdk, adapter time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(ref), Message: a.Digest([]byte(input)),
					MessageType: types.MessageTypeDigest, SigningAlgorithm: tc.signing}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := s.Sign(ctx, []byte(input)); err != nil {
					b.Fatal(err)
				}
				sdk += t1.Sub(t0)
				adapter += time.Since(t1)
			}
			b.ReportMetric(float64(sdk.Nanoseconds())/float64(b.N), "sdk-ns/sig")
			b.ReportMetric(float64(adapter.Nanoseconds())/float64(b.N), "adapter-ns/sig")
			b.ReportMetric(100*(float64(adapter)-float64(sdk))/float64(sdk), "overhead-%")
		})
	}
}

// BenchmarkAdapterLocalWork measures what the adapter adds around the SDK
// call on its own: a client that answers at once with a real response
// recorded from the backend leaves only hashing, the request, the checks
// and the DER to r||s conversion.
func BenchmarkAdapterLocalWork(b *testing.B) {
	c := localKMS(b)
	ctx := testCtx(b)
	for _, tc := range []struct {
		name string
		alg  string
		opts *awskms.Options
	}{
		{name: "ES256", alg: "ES256"},
		{name: "ES256-verify", alg: "ES256", opts: &awskms.Options{VerifyECDSA: true}},
		{name: "ES384", alg: "ES384"},
		{name: "ES384-verify", alg: "ES384", opts: &awskms.Options{VerifyECDSA: true}},
		{name: "RS256", alg: "RS256"},
	} {
		var recorded *kms.SignOutput
		f := &fakeClient{inner: c, editSign: func(o *kms.SignOutput) { recorded = o }}
		s, _, err := newProvider(b, f, tc.opts).Generate(ctx, "kid-bench-local-"+tc.name, tc.alg)
		if err != nil {
			b.Fatalf("Generate: %v", err)
		}
		if _, err := s.Sign(ctx, []byte(input)); err != nil {
			b.Fatalf("Sign: %v", err)
		}
		f.inner = replay{Client: c, out: recorded}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Sign(ctx, []byte(input)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// replay answers Sign with one recorded response.
type replay struct {
	awskms.Client
	out *kms.SignOutput
}

func (r replay) Sign(context.Context, *kms.SignInput, ...func(*kms.Options)) (*kms.SignOutput, error) {
	return r.out, nil
}

// BenchmarkSignConcurrent measures throughput with 1, 8 and 32 goroutines
// signing through one ES256 Signer.
func BenchmarkSignConcurrent(b *testing.B) {
	c := localKMS(b)
	ctx := testCtx(b)
	s, _, err := newProvider(b, c, nil).Generate(ctx, "kid-bench-concurrent", "ES256")
	if err != nil {
		b.Fatalf("Generate: %v", err)
	}
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("signers=%d", n), func(b *testing.B) {
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ResetTimer()
			for range n {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Sign(ctx, []byte(input)); err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatalf("Sign: %v", err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
		})
	}
}
