package verifier_test

import (
	"context"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
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
// through, hits and misses each. It is large enough that the table lines
// the lookups read do not stay in the processor's caches (4M lookups touch
// every line of the 1M list's 32 MiB table and most of the 10M list's 256
// MiB), so that, as in a service, a lookup in a large list reads memory; a
// pool of a few thousand would measure cache hits. The jtis are laid end to
// end in one string, read in order.
const revBenchPool = 1 << 22

// revBenchKID has a kid policy in every benchmark list: a list that has been
// through an incident, so lookups pay for the kid check too.
const revBenchKID = "kid-compromised"

// jtiPool is revBenchPool jtis of jtiLen bytes each, end to end.
type jtiPool string

const jtiLen = 22 // the length of scaleJTI's jtis

func newJTIPool(jti func(j int) string) jtiPool {
	b := make([]byte, 0, revBenchPool*jtiLen)
	for j := range revBenchPool {
		b = append(b, jti(j)...)
	}
	return jtiPool(b)
}

// at returns the jti j of the pool, cycling.
func (p jtiPool) at(j int) string {
	k := j & (revBenchPool - 1) * jtiLen
	return string(p[k : k+jtiLen])
}

type revBenchList struct {
	l      *verifier.MemoryRevocationList
	hits   jtiPool // revoked jtis, spread over the list ("" at size 0)
	misses jtiPool // jtis never revoked, the same for every size
}

var (
	revBenchOnce   [3]sync.Once
	revBenchBuilt  [3]*revBenchList
	revBenchMisses = sync.OnceValue(func() jtiPool {
		return newJTIPool(func(j int) string { return scaleJTI('m', j) })
	})
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
		rb := &revBenchList{l: l, misses: revBenchMisses()}
		if n > 0 {
			// 2654435761 is prime, so j ↦ j·2654435761 mod n visits
			// every revoked jti, in an order unrelated to the table's.
			rb.hits = newJTIPool(func(j int) string { return scaleJTI('r', int(int64(j)*2654435761%int64(n))) })
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
	for i, size := range revBenchSizes {
		b.Run(size.name, func(b *testing.B) { benchRevoked(b, i, true, false) })
	}
}

// BenchmarkRevokedMiss measures a Revoked call that answers false: the jti
// was never revoked and the kid has no policy.
func BenchmarkRevokedMiss(b *testing.B) {
	for i, size := range revBenchSizes {
		b.Run(size.name, func(b *testing.B) { benchRevoked(b, i, false, false) })
	}
}

// BenchmarkRevokedLatency measures one lookup on its own, where
// BenchmarkRevokedHit and BenchmarkRevokedMiss measure lookups back to
// back, which the processor may overlap: here which jti a lookup asks for
// depends on the previous answer, so a hit cannot start before the one
// before it has finished. A miss answers false from a predicted branch,
// without waiting on memory, as it would for a caller that branches on the
// answer: its figure is what such a caller waits, not the memory latency.
func BenchmarkRevokedLatency(b *testing.B) {
	for i, size := range revBenchSizes {
		b.Run(size.name+"/hit", func(b *testing.B) { benchRevoked(b, i, true, true) })
		b.Run(size.name+"/miss", func(b *testing.B) { benchRevoked(b, i, false, true) })
	}
}

// benchRevoked looks up, in the list of revBenchSizes[i], jtis that hit
// or miss; chained, each lookup's jti depends on the previous answer.
func benchRevoked(b *testing.B, i int, hit, chained bool) {
	ctx := context.Background()
	rb := revBench(b, i)
	kid, iat, jtis := "kid-live", t0, rb.misses
	switch {
	case hit && revBenchSizes[i].n == 0:
		kid, iat = revBenchKID, t0.Add(-time.Minute)
	case hit:
		jtis = rb.hits
	}
	b.ReportAllocs()
	j := 0
	for b.Loop() {
		got, err := rb.l.Revoked(ctx, kid, jtis.at(j), iat)
		if err != nil || got != hit {
			b.Fatalf("Revoked(%s, %s) = %v, %v; want %v, nil", kid, jtis.at(j), got, err, hit)
		}
		if chained {
			j += 1 + boolInt(got)
		} else {
			j++
		}
	}
}

// boolInt is 1 for true and 0 for false, computed from the bool's value
// rather than chosen by a branch, so that it depends on it.
func boolInt(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
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
					jti, want := rb.misses.at(j), false
					if rb.hits != "" && j&1 == 1 {
						jti, want = rb.hits.at(j), true
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
//	B/entry        resident memory growth while filling, per entry
//	table-B/entry  the list's own slot bytes (Stats().Bytes), per entry
//	ns/insert      one RevokeJTI, building its 22-byte jti included
//	ms/purge       the Purge that drops every entry
//	B-left         resident memory after the purge, minus before filling
//
// Memory is the process's resident set, read once the runtime has
// collected and returned what it could: large tables live outside the Go
// heap, so heap statistics would not see them. Linux only. Run it with
// -benchtime=1x: one fill is the measurement.
func BenchmarkRevocationMemory(b *testing.B) {
	ctx := context.Background()
	for _, size := range revBenchSizes[1:] {
		b.Run(size.name, func(b *testing.B) {
			n := size.n
			var perEntry, tablePerEntry, nsInsert, msPurge, left float64
			for b.Loop() {
				now := t0
				l := verifier.NewMemoryRevocationList(func() time.Time { return now })
				base := residentBytes(b)
				start := time.Now()
				for j := range n {
					if err := l.RevokeJTI(ctx, scaleJTI('r', j), t0.Add(10*time.Minute)); err != nil {
						b.Fatal(err)
					}
				}
				nsInsert = float64(time.Since(start).Nanoseconds()) / float64(n)
				perEntry = float64(residentBytes(b)-base) / float64(n)
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
				left = float64(residentBytes(b) - base)
			}
			b.ReportMetric(perEntry, "B/entry")
			b.ReportMetric(tablePerEntry, "table-B/entry")
			b.ReportMetric(nsInsert, "ns/insert")
			b.ReportMetric(msPurge, "ms/purge")
			b.ReportMetric(left, "B-left")
		})
	}
}

// residentBytes returns the process's resident memory once the runtime has
// collected garbage, run the cleanups that unmap dropped tables and
// returned free heap pages to the system: it reads until two readings in a
// row agree.
func residentBytes(b *testing.B) int64 {
	b.Helper()
	last := int64(-1)
	for range 50 {
		debug.FreeOSMemory()
		time.Sleep(20 * time.Millisecond) // cleanups run on their own goroutine
		statm, err := os.ReadFile("/proc/self/statm")
		if err != nil {
			b.Fatalf("reading resident memory (Linux only): %v", err)
		}
		f := strings.Fields(string(statm))
		if len(f) < 2 {
			b.Fatalf("/proc/self/statm = %q: no resident page count", statm)
		}
		pages, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			b.Fatalf("/proc/self/statm = %q: %v", statm, err)
		}
		rss := pages * int64(os.Getpagesize())
		if rss == last {
			return rss
		}
		last = rss
	}
	return last
}
