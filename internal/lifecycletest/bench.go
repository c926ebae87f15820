package lifecycletest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
)

// Direct gives the bare SDK signature that Bench compares the library
// with: a function that signs one digest with the backend key whose
// reference is ref, by the same SDK call the adapter makes, without the
// adapter. It may fail tb while it prepares.
type Direct func(tb testing.TB, ref string) func(ctx context.Context, digest []byte) error

// goroutines are the numbers of concurrent issuers Bench measures.
var goroutines = []int{1, 8, 32}

// benchTimeout bounds every backend call of one Bench.
const benchTimeout = 30 * time.Minute

// Bench measures, with an Active key of alg created in provider through a
// keyring:
//
//   - "round-trip": per iteration, one direct SDK signature of a fixed
//     digest, one Sign through the adapter's Signer (which hashes the
//     signing input) and one token through signer.Issuer, in rotating
//     order so that load from elsewhere and warm caches favour none. It
//     reports the mean of each (sdk-ns/op, sign-ns/op, issue-ns/op) and the
//     library's overhead over the SDK call, (issue − sdk) / sdk, in
//     overhead-%. ns/op is the sum of the three.
//   - "sdk/goroutines=N" and "issue/goroutines=N" for N = 1, 8 and 32:
//     exactly N goroutines share b.N direct signatures, or b.N tokens from
//     one Issuer, and report ops/s. Explicit goroutines rather than
//     RunParallel, whose goroutine count is a multiple of GOMAXPROCS and
//     cannot be 1 on a 2-core machine.
func Bench(b *testing.B, provider signer.Provider, alg string, direct Direct) {
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	r := newRing(b, ctx, provider, alg)
	k, err := keyringtest.ActivateFirst(ctx, r.kr, Set)
	if err != nil {
		b.Fatalf("first key: %v", err)
	}
	sdk := direct(b, k.BackendRef.Reveal())
	s, err := provider.Open(ctx, k.KID, k.BackendRef.Reveal())
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	// The signing input of a real token, so that the SDK signs the digest
	// the library would sign.
	tok := r.mustIssue("bench-user", k)
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	a, _ := jose.Lookup(alg)
	digest := a.Digest(input)
	c := claims("bench-user")

	ops := [3]func() error{
		func() error { return sdk(ctx, digest) },
		func() error { _, err := s.Sign(ctx, input); return err },
		func() error { _, err := r.issuer.Issue(ctx, c); return err },
	}
	names := [3]string{"sdk", "sign", "issue"}
	b.Run("round-trip", func(b *testing.B) {
		var total [3]time.Duration
		i := 0
		for b.Loop() {
			for j := range 3 {
				op := (i + j) % 3
				t0 := time.Now()
				if err := ops[op](); err != nil {
					b.Fatalf("%s: %v", names[op], err)
				}
				total[op] += time.Since(t0)
			}
			i++
		}
		n := float64(b.N)
		for op, name := range names {
			b.ReportMetric(float64(total[op].Nanoseconds())/n, name+"-ns/op")
		}
		b.ReportMetric(100*float64(total[2]-total[0])/float64(total[0]), "overhead-%")
	})
	for _, n := range goroutines {
		b.Run(fmt.Sprintf("sdk/goroutines=%d", n), func(b *testing.B) { throughput(b, n, ops[0]) })
		b.Run(fmt.Sprintf("issue/goroutines=%d", n), func(b *testing.B) { throughput(b, n, ops[2]) })
	}
}

// throughput runs op b.N times from n goroutines and reports ops/s.
func throughput(b *testing.B, n int, op func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
