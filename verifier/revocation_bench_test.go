package verifier_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/verifier"
)

// The sizes the MemoryRevocationList benchmarks run at. Each list is built
// once per process (the 10M one takes a few seconds and about 270 MB) and
// shared by every benchmark at that size.
var revBenchSizes = []struct {
	name string
	n    int
}{
	{"jtis=0", 0},
	{"jtis=1M", 1_000_000},
	{"jtis=10M", 10_000_000},
}

// revBenchPool is the number of precomputed jtis a lookup benchmark cycles
// through, hits and misses each: enough that lookups land all over a large
// table, as a service's would.
const revBenchPool = 1 << 16

// revBenchKID has a kid policy in every benchmark list: a list that has been
// through an incident, so lookups pay for the kid check too.
const revBenchKID = "kid-compromised"

type revBenchList struct {
	l      *verifier.MemoryRevocationList
	hits   []string // revoked jtis, spread over the list (nil at size 0)
	misses []string // jtis never revoked
}

var (
	revBenchOnce  [3]sync.Once
	revBenchBuilt [3]*revBenchList
)

// revBench returns the shared list of revBenchSizes[i], building it on
// first use.
func revBench(b *testing.B, i int) *revBenchList {
	b.Helper()
	revBenchOnce[i].Do(func() {
		n := revBenchSizes[i].n
		ctx := context.Background()
		l := verifier.NewMemoryRevocationList(func() time.Time { return t0 })
		if err := l.RevokeKID(ctx, revBenchKID, t0); err != nil {
			b.Fatal(err)
		}
		for j := range n {
			if err := l.RevokeJTI(ctx, scaleJTI('r', j), t0.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		rb := &revBenchList{l: l, misses: make([]string, revBenchPool)}
		if n > 0 {
			rb.hits = make([]string, revBenchPool)
		}
		for j := range revBenchPool {
			if n > 0 {
				rb.hits[j] = scaleJTI('r', j*2654435761%n)
			}
			rb.misses[j] = scaleJTI('m', j)
		}
		revBenchBuilt[i] = rb
	})
	if revBenchBuilt[i] == nil {
		b.Fatal("benchmark list was not built")
	}
	return revBenchBuilt[i]
}

// BenchmarkRevokedHit measures a Revoked call that answers true. At 1M and
// 10M entries it finds a listed jti; at 0 entries, where no jti can be
// found, the hit is the kid policy.
func BenchmarkRevokedHit(b *testing.B) {
	ctx := context.Background()
	for i, size := range revBenchSizes {
		b.Run(size.name, func(b *testing.B) {
			rb := revBench(b, i)
			kid, iat, jtis := "kid-live", t0, rb.hits
			if size.n == 0 {
				kid, iat, jtis = revBenchKID, t0.Add(-time.Minute), rb.misses
			}
			b.ReportAllocs()
			j := 0
			for b.Loop() {
				if got, err := rb.l.Revoked(ctx, kid, jtis[j&(revBenchPool-1)], iat); err != nil || !got {
					b.Fatalf("Revoked(%s, %s) = %v, %v; want true, nil", kid, jtis[j&(revBenchPool-1)], got, err)
				}
				j++
			}
		})
	}
}

// BenchmarkRevokedMiss measures a Revoked call that answers false: the jti
// was never revoked and the kid has no policy.
func BenchmarkRevokedMiss(b *testing.B) {
	ctx := context.Background()
	for i, size := range revBenchSizes {
		b.Run(size.name, func(b *testing.B) {
			rb := revBench(b, i)
			b.ReportAllocs()
			j := 0
			for b.Loop() {
				if got, err := rb.l.Revoked(ctx, "kid-live", rb.misses[j&(revBenchPool-1)], t0); err != nil || got {
					b.Fatalf("Revoked(%s) = %v, %v; want false, nil", rb.misses[j&(revBenchPool-1)], got, err)
				}
				j++
			}
		})
	}
}

// BenchmarkRevokedParallel measures lookups from every P at once, half
// hits and half misses (at 0 entries, misses only): lookups take no lock,
// so they should scale with the cores.
func BenchmarkRevokedParallel(b *testing.B) {
	ctx := context.Background()
	for i, size := range revBenchSizes {
		b.Run(size.name, func(b *testing.B) {
			rb := revBench(b, i)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				j := 0
				for pb.Next() {
					jti, want := rb.misses[j&(revBenchPool-1)], false
					if rb.hits != nil && j&1 == 1 {
						jti, want = rb.hits[j&(revBenchPool-1)], true
					}
					if got, err := rb.l.Revoked(ctx, "kid-live", jti, t0); err != nil || got != want {
						b.Errorf("Revoked(%s) = %v, %v; want %v, nil", jti, got, err, want)
						return
					}
					j++
				}
			})
		})
	}
}

// BenchmarkRevocationMemory fills a fresh list with jtis that all expire
// ten minutes later, moves the clock past that, purges, and reports:
//
//	B/entry        heap growth while filling, per entry (after a GC)
//	table-B/entry  the list's own slot bytes (Stats().Bytes), per entry
//	ns/insert      one RevokeJTI, building its 22-byte jti included
//	ms/purge       the Purge that drops every entry
//	B-left         heap after the purge (and a GC), minus before filling
//
// Run it with -benchtime=1x: one fill is the measurement.
func BenchmarkRevocationMemory(b *testing.B) {
	ctx := context.Background()
	for _, size := range revBenchSizes[1:] {
		b.Run(size.name, func(b *testing.B) {
			n := size.n
			var perEntry, tablePerEntry, nsInsert, msPurge, left float64
			for b.Loop() {
				now := t0
				l := verifier.NewMemoryRevocationList(func() time.Time { return now })
				base := heapAlloc()
				start := time.Now()
				for j := range n {
					if err := l.RevokeJTI(ctx, scaleJTI('r', j), t0.Add(10*time.Minute)); err != nil {
						b.Fatal(err)
					}
				}
				nsInsert = float64(time.Since(start).Nanoseconds()) / float64(n)
				perEntry = float64(heapAlloc()-base) / float64(n)
				tablePerEntry = float64(l.Stats().Bytes) / float64(n)

				now = t0.Add(10 * time.Minute)
				start = time.Now()
				if got := l.Purge(); got != 0 {
					b.Fatalf("Purge past every until = %d left, want 0", got)
				}
				msPurge = float64(time.Since(start).Microseconds()) / 1000
				if got, want := l.Stats(), (verifier.RevocationStats{}); got != want {
					b.Fatalf("Stats() after the purge = %+v, want %+v", got, want)
				}
				left = float64(heapAlloc() - base)
			}
			b.ReportMetric(perEntry, "B/entry")
			b.ReportMetric(tablePerEntry, "table-B/entry")
			b.ReportMetric(nsInsert, "ns/insert")
			b.ReportMetric(msPurge, "ms/purge")
			b.ReportMetric(left, "B-left")
		})
	}
}
