package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/verifier"
)

func TestMemoryRevocationListJTI(t *testing.T) {
	now := t0
	l := verifier.NewMemoryRevocationList(func() time.Time { return now })
	ctx := context.Background()
	if err := l.RevokeJTI(ctx, "a", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.RevokeJTI(ctx, "past", t0.Add(-verifier.MaxLeeway)); err != nil {
		t.Fatal(err)
	}
	if err := l.RevokeJTI(ctx, "recent", t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   time.Time
		jti  string
		want bool
	}{
		{name: "revoked", at: t0, jti: "a", want: true},
		{name: "other jti", at: t0, jti: "b", want: false},
		{name: "horizon already past when revoked", at: t0, jti: "past", want: false},
		{name: "until past but within the leeway when revoked", at: t0, jti: "recent", want: true},
		{name: "just before until", at: t0.Add(time.Hour - time.Nanosecond), jti: "a", want: true},
		{name: "at until: a verifier's leeway still accepts it", at: t0.Add(time.Hour), jti: "a", want: true},
		{name: "at until plus the largest leeway", at: t0.Add(time.Hour + verifier.MaxLeeway - time.Second), jti: "a", want: true},
		{name: "at the horizon", at: verifier.RevocationHorizon(t0.Add(time.Hour)), jti: "a", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			got, err := l.Revoked(ctx, "kid", tt.jti, t0)
			if err != nil || got != tt.want {
				t.Errorf("Revoked(%q) at %v = %v, %v; want %v, nil", tt.jti, tt.at, got, err, tt.want)
			}
		})
	}
}

func TestMemoryRevocationListExtendsUntil(t *testing.T) {
	now := t0
	l := verifier.NewMemoryRevocationList(func() time.Time { return now })
	ctx := context.Background()
	for _, until := range []time.Time{t0.Add(2 * time.Hour), t0.Add(time.Hour)} {
		if err := l.RevokeJTI(ctx, "a", until); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(90 * time.Minute)
	if got, _ := l.Revoked(ctx, "kid", "a", t0); !got {
		t.Errorf("Revoked after an earlier until was given again = false, want true (the later until holds)")
	}
}

func TestMemoryRevocationListKID(t *testing.T) {
	l := verifier.NewMemoryRevocationList(func() time.Time { return t0 })
	ctx := context.Background()
	steps := []struct {
		name     string
		cutoff   time.Time // zero: no RevokeKID in this step
		kid      string
		issuedAt time.Time
		want     bool
	}{
		{name: "no policy", kid: "k1", issuedAt: t0, want: false},
		{name: "issued before cutoff", cutoff: t0, kid: "k1", issuedAt: t0.Add(-time.Second), want: true},
		{name: "issued at cutoff", kid: "k1", issuedAt: t0, want: false},
		{name: "other kid", kid: "k2", issuedAt: t0.Add(-time.Hour), want: false},
		{name: "later cutoff extends", cutoff: t0.Add(time.Minute), kid: "k1", issuedAt: t0.Add(30 * time.Second), want: true},
		{name: "earlier cutoff changes nothing", cutoff: t0.Add(-time.Hour), kid: "k1", issuedAt: t0.Add(30 * time.Second), want: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if !st.cutoff.IsZero() {
				if err := l.RevokeKID(ctx, "k1", st.cutoff); err != nil {
					t.Fatal(err)
				}
			}
			got, err := l.Revoked(ctx, st.kid, "any-jti", st.issuedAt)
			if err != nil || got != st.want {
				t.Errorf("Revoked(%s, iat %v) = %v, %v; want %v, nil", st.kid, st.issuedAt, got, err, st.want)
			}
		})
	}
}

// TestMemoryRevocationListManyKIDs holds a policy for each of 300 kids of
// every length from 1 to 40 bytes (the kid table grows many times): each
// kid gets its own cutoff, raising one changes no other, and kids without
// a policy, the empty kid included, are never revoked.
func TestMemoryRevocationListManyKIDs(t *testing.T) {
	l := verifier.NewMemoryRevocationList(func() time.Time { return t0 })
	ctx := context.Background()
	const n = 300
	kid := func(i int) string { return strings.Repeat("k", i%40) + strconv.Itoa(i) }
	cutoff := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for i := range n {
		if err := l.RevokeKID(ctx, kid(i), cutoff(i)); err != nil {
			t.Fatalf("RevokeKID(%s): %v", kid(i), err)
		}
	}
	if err := l.RevokeKID(ctx, kid(7), cutoff(7).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().KIDPolicies; got != n {
		t.Errorf("Stats().KIDPolicies = %d, want %d", got, n)
	}
	for i := range n {
		cut := cutoff(i)
		if i == 7 {
			cut = cut.Add(time.Hour)
		}
		if got, err := l.Revoked(ctx, kid(i), "jti", cut.Add(-time.Nanosecond)); err != nil || !got {
			t.Errorf("Revoked(%s, just before its cutoff) = %v, %v; want true, nil", kid(i), got, err)
		}
		if got, err := l.Revoked(ctx, kid(i), "jti", cut); err != nil || got {
			t.Errorf("Revoked(%s, at its cutoff) = %v, %v; want false, nil", kid(i), got, err)
		}
	}
	for _, other := range []string{"", "k", "kk", kid(n), kid(3) + "x", strings.Repeat("k", 100)} {
		if got, err := l.Revoked(ctx, other, "jti", t0.Add(-time.Hour)); err != nil || got {
			t.Errorf("Revoked(kid %q without a policy) = %v, %v; want false, nil", other, got, err)
		}
	}
}

func TestMemoryRevocationListArguments(t *testing.T) {
	l := verifier.NewMemoryRevocationList(nil)
	ctx := context.Background()
	if err := l.RevokeJTI(ctx, "", time.Now().Add(time.Hour)); !errors.Is(err, verifier.ErrArgument) {
		t.Errorf("RevokeJTI(\"\") = %v, want ErrArgument", err)
	}
	if err := l.RevokeKID(ctx, "", time.Now()); !errors.Is(err, verifier.ErrArgument) {
		t.Errorf("RevokeKID(\"\") = %v, want ErrArgument", err)
	}
}

func TestMemoryRevocationListPurge(t *testing.T) {
	now := t0
	l := verifier.NewMemoryRevocationList(func() time.Time { return now })
	ctx := context.Background()
	for i := range 1000 {
		until := t0.Add(time.Hour)
		if i%10 == 0 {
			until = t0.Add(3 * time.Hour)
		}
		if err := l.RevokeJTI(ctx, fmt.Sprint("jti-", i), until); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Len(); got != 1000 {
		t.Fatalf("Len = %d, want 1000", got)
	}
	now = t0.Add(2 * time.Hour)
	if got := l.Purge(); got != 100 {
		t.Errorf("Purge = %d, want 100 left", got)
	}
	if got, _ := l.Revoked(ctx, "kid", "jti-10", t0); !got {
		t.Errorf("Revoked(jti-10) after purge = false, want true")
	}

	// Writes purge on their own, a minute apart at most, each shard when it
	// is written to: 5000 writes miss one of the 16 shards with probability
	// below 16·e^(-5000/16) < 10⁻¹³⁴.
	now = t0.Add(4 * time.Hour)
	const late = 5000
	for i := range late {
		if err := l.RevokeJTI(ctx, fmt.Sprint("late-", i), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Len(); got != late {
		t.Errorf("Len after writes past every until = %d, want %d (the expired 100 purged)", got, late)
	}
}

func TestMemoryRevocationListString(t *testing.T) {
	l := verifier.NewMemoryRevocationList(nil)
	if err := l.RevokeJTI(context.Background(), "secret-jti", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{l.String(), fmt.Sprintf("%v", l), fmt.Sprintf("%+v", l)} {
		if got, want := s, "verifier.MemoryRevocationList(0 kid policies)"; got != want {
			t.Errorf("formatted list = %q, want %q", got, want)
		}
	}
}

// scaleJTI returns a jti of a test at scale: 22 characters like the
// Issuer's (128 random bits in base64url), distinct for distinct (prefix, i).
func scaleJTI(prefix byte, i int) string {
	var b [22]byte
	b[0] = prefix
	for k := len(b) - 1; k > 0; k-- {
		b[k] = '0' + byte(i%10)
		i /= 10
	}
	return string(b[:])
}

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestMemoryRevocationListScale fills a list with 300,000 jtis: each
// is found, none of as many others is, and the list stays within its
// memory budget (the 10-million figure is BenchmarkRevocationMemory's).
func TestMemoryRevocationListScale(t *testing.T) {
	const n = 300_000
	l := verifier.NewMemoryRevocationList(func() time.Time { return t0 })
	ctx := context.Background()
	before := heapAlloc()
	for i := range n {
		if err := l.RevokeJTI(ctx, scaleJTI('r', i), t0.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeJTI #%d: %v", i, err)
		}
	}
	st := l.Stats()
	// Large tables live outside the heap (MappedBytes): count both.
	perEntry := float64(heapAlloc()-before+int64(st.MappedBytes)) / n
	t.Logf("%d jtis: %.1f B/entry of heap and mapped tables, %d slots (%.1f B/entry)", n, perEntry, st.Slots, float64(st.Bytes)/n)
	if st.JTIs != n {
		t.Errorf("Stats().JTIs = %d, want %d", st.JTIs, n)
	}
	if got, want := st.Bytes, 16*st.Slots; got != want {
		t.Errorf("Stats().Bytes = %d, want %d (16 per slot)", got, want)
	}
	// Grown at 3/4 full to half full: at least 3/8 of the slots taken.
	if got, limit := float64(st.Bytes)/n, 16/(3.0/8); got > limit {
		t.Errorf("table bytes per entry = %.1f, want ≤ %.1f", got, limit)
	}
	if perEntry > 64 {
		t.Errorf("bytes per entry = %.1f, want ≤ 64", perEntry)
	}
	runtime.KeepAlive(l)

	for i := range n {
		if got, err := l.Revoked(ctx, "kid", scaleJTI('r', i), t0); err != nil || !got {
			t.Fatalf("Revoked(revoked jti #%d) = %v, %v; want true, nil", i, got, err)
		}
		if got, err := l.Revoked(ctx, "kid", scaleJTI('m', i), t0); err != nil || got {
			t.Fatalf("Revoked(other jti #%d) = %v, %v; want false, nil", i, got, err)
		}
	}
}

// TestMemoryRevocationListMemoryReturns expires most entries, then all:
// the tables shrink with the entries, down to nothing, and the heap goes
// back near where it was before the list was filled.
func TestMemoryRevocationListMemoryReturns(t *testing.T) {
	const n = 1 << 18
	now := t0
	l := verifier.NewMemoryRevocationList(func() time.Time { return now })
	ctx := context.Background()
	base := heapAlloc()
	for i := range n {
		until := t0.Add(10 * time.Minute)
		if i%8 == 0 {
			until = t0.Add(time.Hour)
		}
		if err := l.RevokeJTI(ctx, scaleJTI('r', i), until); err != nil {
			t.Fatalf("RevokeJTI #%d: %v", i, err)
		}
	}
	peak := heapAlloc()
	full := l.Stats()

	now = verifier.RevocationHorizon(t0.Add(10 * time.Minute))
	if got, want := l.Purge(), n/8; got != want {
		t.Errorf("Purge at the first until = %d left, want %d", got, want)
	}
	part := l.Stats()
	if part.JTIs != n/8 {
		t.Errorf("Stats().JTIs after the first purge = %d, want %d", part.JTIs, n/8)
	}
	// Rebuilt at most half full: at least a quarter of the slots taken.
	if part.Slots > 4*part.JTIs || 2*part.Slots > full.Slots {
		t.Errorf("slots after purging 7/8 of %d entries = %d (from %d), want ≤ %d and ≤ half", n, part.Slots, full.Slots, 4*part.JTIs)
	}
	for i := 0; i < n; i += 8 {
		if got, _ := l.Revoked(ctx, "kid", scaleJTI('r', i), t0); !got {
			t.Fatalf("Revoked(surviving jti #%d) after purge = false, want true", i)
		}
	}

	now = verifier.RevocationHorizon(t0.Add(time.Hour))
	if got := l.Purge(); got != 0 {
		t.Errorf("Purge past every until = %d left, want 0", got)
	}
	if got, want := l.Stats(), (verifier.RevocationStats{}); got != want {
		t.Errorf("Stats() after purging everything = %+v, want %+v", got, want)
	}
	after := heapAlloc()
	t.Logf("heap: %d B before filling, %d B full (%d slots), %d B after purging", base, peak, full.Slots, after)
	if limit := base + (peak-base)/8; after > limit {
		t.Errorf("heap after purging everything = %d B, want ≤ %d B (base %d, peak %d)", after, limit, base, peak)
	}
	runtime.KeepAlive(l)
}

// TestMemoryRevocationListReadersDuringRebuilds looks up revoked jtis while
// a writer grows, purges and shrinks every shard's table: no lookup ever
// misses one (run it with -race).
func TestMemoryRevocationListReadersDuringRebuilds(t *testing.T) {
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	l := verifier.NewMemoryRevocationList(func() time.Time { return time.Unix(0, clock.Load()) })
	ctx := context.Background()
	const fixed = 512
	for i := range fixed {
		if err := l.RevokeJTI(ctx, scaleJTI('f', i), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				for i := range fixed {
					if got, err := l.Revoked(ctx, "kid", scaleJTI('f', i), t0); err != nil || !got {
						t.Errorf("Revoked(fixed jti #%d) during rebuilds = %v, %v; want true, nil", i, got, err)
						return
					}
					if got, err := l.Revoked(ctx, "kid", scaleJTI('m', i), t0); err != nil || got {
						t.Errorf("Revoked(never revoked jti #%d) during rebuilds = %v, %v; want false, nil", i, got, err)
						return
					}
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}

	const rounds, churn = 6, 1 << 14
	for r := range rounds {
		now := time.Unix(0, clock.Load())
		for i := range churn {
			if err := l.RevokeJTI(ctx, scaleJTI('c', r*churn+i), now.Add(time.Minute)); err != nil {
				t.Error(err)
				break
			}
		}
		clock.Add(int64(2*time.Minute + verifier.MaxLeeway))
		if got := l.Purge(); got != fixed {
			t.Errorf("round %d: Purge = %d left, want %d", r, got, fixed)
		}
	}
	close(done)
	wg.Wait()
}

func TestMemoryRevocationListUntilRounding(t *testing.T) {
	now := t0
	l := verifier.NewMemoryRevocationList(func() time.Time { return now })
	ctx := context.Background()
	steps := []struct {
		name  string
		now   time.Time
		jti   string
		until time.Time // zero: no RevokeJTI in this step
		at    time.Time
		want  bool
	}{
		{name: "fractional until rounds up", now: t0, jti: "frac", until: t0.Add(time.Hour + 500*time.Millisecond), at: t0.Add(time.Hour + 999*time.Millisecond), want: true},
		{name: "fractional until over at the next second", jti: "frac", at: verifier.RevocationHorizon(t0.Add(time.Hour + time.Second)), want: false},
		{name: "far future until held", now: t0, jti: "far", until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), at: t0.AddDate(100, 0, 0), want: true},
		{name: "until before the list was made", now: t0.Add(-2 * time.Hour), jti: "early", until: t0.Add(-time.Hour), at: t0.Add(-90 * time.Minute), want: true},
		{name: "early until held to the first second", jti: "early", at: t0, want: true},
		{name: "early until over after it", jti: "early", at: t0.Add(time.Second), want: false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if !st.until.IsZero() {
				now = st.now
				if err := l.RevokeJTI(ctx, st.jti, st.until); err != nil {
					t.Fatal(err)
				}
			}
			now = st.at
			if got, err := l.Revoked(ctx, "kid", st.jti, t0); err != nil || got != st.want {
				t.Errorf("Revoked(%s) at %v = %v, %v; want %v, nil", st.jti, st.at, got, err, st.want)
			}
		})
	}
}

func TestMemoryRevocationListStats(t *testing.T) {
	l := verifier.NewMemoryRevocationList(func() time.Time { return t0 })
	ctx := context.Background()
	if got, want := l.Stats(), (verifier.RevocationStats{}); got != want {
		t.Errorf("Stats() of a new list = %+v, want %+v", got, want)
	}
	for _, jti := range []string{"a", "b", "c"} {
		if err := l.RevokeJTI(ctx, jti, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, kid := range []string{"k1", "k2"} {
		if err := l.RevokeKID(ctx, kid, t0); err != nil {
			t.Fatal(err)
		}
	}
	got := l.Stats()
	if got.JTIs != 3 || got.KIDPolicies != 2 {
		t.Errorf("Stats() = %+v, want 3 JTIs and 2 KIDPolicies", got)
	}
	if got.Slots < 16 || got.Slots > 3*16 || got.Bytes != 16*got.Slots {
		t.Errorf("Stats() = %+v, want 16 to 48 slots (one table of 16 per shard used) of 16 bytes", got)
	}
	if n := l.Len(); n != got.JTIs {
		t.Errorf("Len() = %d, want Stats().JTIs = %d", n, got.JTIs)
	}
}

// TestRevokedInsideLeeway revokes a token until its exp, as emergency
// rotation and the keyring do, then verifies it inside the leeway after
// exp, with the default and the largest leeway: it stays revoked.
func TestRevokedInsideLeeway(t *testing.T) {
	ctx := context.Background()
	exp := t0.Add(10 * time.Minute) // claimsJSON's exp
	for _, tc := range []struct {
		name   string
		leeway time.Duration
	}{
		{name: "default leeway", leeway: 0},
		{name: "largest leeway", leeway: verifier.MaxLeeway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "ES256")
			es := testSigner(t, "ES256")
			p := basePolicy()
			p.Leeway = tc.leeway
			v := f.verifier(t, p)
			tok := craft(t, es, hdr(es), claimsJSON(nil))
			if err := f.revs.RevokeJTI(ctx, "jti-1", exp); err != nil {
				t.Fatal(err)
			}
			leeway := tc.leeway
			if leeway == 0 {
				leeway = verifier.DefaultLeeway
			}
			for _, at := range []time.Time{exp, exp.Add(leeway - time.Second)} {
				f.now = at
				if _, err := v.Verify(ctx, tok); !errors.Is(err, verifier.ErrRevoked) {
					t.Errorf("Verify at exp%+v = %v, want %v", at.Sub(exp), err, verifier.ErrRevoked)
				}
			}
		})
	}
}

// TestRevocationTimeRange: a revocation time outside the representable
// range is refused with ErrArgument, never silently dropped.
func TestRevocationTimeRange(t *testing.T) {
	ctx := context.Background()
	l := verifier.NewMemoryRevocationList(func() time.Time { return t0 })
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{name: "zero time", at: time.Time{}},
		{name: "before the epoch", at: time.Unix(-1, 0)},
		{name: "after year 9999", at: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "far past int64 seconds", at: time.Unix(1<<62, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.RevokeJTI(ctx, "j", tc.at); !errors.Is(err, verifier.ErrArgument) {
				t.Errorf("RevokeJTI(until %v) = %v, want %v", tc.at, err, verifier.ErrArgument)
			}
			if err := l.RevokeKID(ctx, "k", tc.at); !errors.Is(err, verifier.ErrArgument) {
				t.Errorf("RevokeKID(before %v) = %v, want %v", tc.at, err, verifier.ErrArgument)
			}
		})
	}
	if st := l.Stats(); st.JTIs != 0 || st.KIDPolicies != 0 {
		t.Errorf("Stats after refused revocations = %+v, want empty", st)
	}
	if err := l.RevokeKID(ctx, "k", verifier.MaxRevocationTime); err != nil {
		t.Errorf("RevokeKID(MaxRevocationTime) = %v, want nil", err)
	}
}
