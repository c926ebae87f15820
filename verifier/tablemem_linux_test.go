package verifier

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMappedTables runs the list with every table of 4 KiB or more mapped
// outside the Go heap: lookups racing with inserts and rebuilds find every
// jti revoked before they started, a purge keeps the survivors, and once
// the list is unreachable its tables are unmapped.
func TestMappedTables(t *testing.T) {
	old := mapTableMinBytes
	mapTableMinBytes = 4096
	t.Cleanup(func() { mapTableMinBytes = old })
	before := mappedTableBytes.Load()

	base := time.Unix(1_700_000_000, 0)
	var nowSec atomic.Int64
	nowSec.Store(base.Unix())
	l := NewMemoryRevocationList(func() time.Time { return time.Unix(nowSec.Load(), 0) })
	ctx := context.Background()
	jti := func(i int) string { return fmt.Sprintf("jti-%08d", i) }

	const n = 100_000
	var done atomic.Int64 // jtis 0..done-1 are revoked
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			for k := 0; done.Load() < n; k++ {
				upto := int(done.Load())
				if upto == 0 {
					continue
				}
				i := (k*7919 + r) % upto
				if got, err := l.Revoked(ctx, "kid", jti(i), base); err != nil || !got {
					t.Errorf("Revoked(%s) while inserting = %v, %v; want true, nil", jti(i), got, err)
					return
				}
			}
		})
	}
	for i := range n {
		until := base.Add(time.Hour)
		if i%4 == 0 {
			until = base.Add(2 * time.Hour)
		}
		if err := l.RevokeJTI(ctx, jti(i), until); err != nil {
			t.Fatalf("RevokeJTI(%s): %v", jti(i), err)
		}
		done.Store(int64(i + 1))
	}
	wg.Wait()
	st := l.Stats()
	if st.MappedBytes != st.Bytes {
		t.Fatalf("Stats() = %+v, want every table mapped (MappedBytes = Bytes)", st)
	}
	if got := mappedTableBytes.Load() - before; got < int64(st.MappedBytes) {
		t.Fatalf("mapped table bytes = %d, want at least the %d bytes of the list's tables", got, st.MappedBytes)
	}

	nowSec.Store(RevocationHorizon(base.Add(time.Hour)).Unix())
	if got, want := l.Purge(), n/4; got != want {
		t.Fatalf("Purge after the first until = %d left, want %d", got, want)
	}
	for i := range n {
		want := i%4 == 0
		if got, err := l.Revoked(ctx, "kid", jti(i), base); err != nil || got != want {
			t.Fatalf("Revoked(%s) after the purge = %v, %v; want %v, nil", jti(i), got, err, want)
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for mappedTableBytes.Load() > before {
		if time.Now().After(deadline) {
			t.Fatalf("mapped table bytes %d after the list was dropped, want ≤ %d", mappedTableBytes.Load(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkMemoryFloor is the floor under a lookup in a large list: one
// random read from 256 MiB, each read's address taken from the one before
// (the table's cache lines linked in one random cycle), so that reads
// cannot overlap. "mapped" is a table mapped as the list maps its large
// tables, "heap" the same table in the Go heap (on small pages unless THP
// is set to "always"). Compare BenchmarkRevokedLatency's hits at 10M.
func BenchmarkMemoryFloor(b *testing.B) {
	const lines = 256 << 20 / 64
	for _, tc := range []struct {
		name   string
		minMap int
	}{{"mapped", hugePage}, {"heap", math.MaxInt}} {
		b.Run(tc.name, func(b *testing.B) {
			old := mapTableMinBytes
			mapTableMinBytes = tc.minMap
			defer func() { mapTableMinBytes = old }()
			t := &jtiTable{}
			words, mapped := newTableWords(t, lines*lineWords)
			if want := tc.minMap == hugePage; mapped != want {
				b.Fatalf("newTableWords mapped = %v, want %v", mapped, want)
			}
			// Sattolo's algorithm: next is one cycle through every line.
			next := make([]uint32, lines)
			for i := range next {
				next[i] = uint32(i)
			}
			for i := lines - 1; i > 0; i-- {
				j := rand.IntN(i)
				next[i], next[j] = next[j], next[i]
			}
			for i, n := range next {
				words[i*lineWords] = uint64(n) * lineWords
			}
			k := uint64(0)
			for b.Loop() {
				k = words[k]
			}
			if k >= uint64(len(words)) {
				b.Fatalf("chased to word %d, past the table", k)
			}
			runtime.KeepAlive(t)
		})
	}
}
