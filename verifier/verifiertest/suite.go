package verifiertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/verifier"
)

// epoch is where every subtest's clock starts: a whole second, so that
// stores with microsecond precision compare exactly.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestRevocationList is the conformance suite of verifier.RevocationList.
// newList returns an empty list that reads the time from now; it is called
// once per subtest.
func TestRevocationList(t *testing.T, newList func(t *testing.T, now func() time.Time) verifier.RevocationList) {
	setup := func(t *testing.T) (verifier.RevocationList, *keyringtest.Clock, context.Context) {
		t.Helper()
		c := keyringtest.NewClock(epoch)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return newList(t, c.Now), c, ctx
	}
	revoked := func(t *testing.T, ctx context.Context, l verifier.RevocationList, kid, jti string, iat time.Time) bool {
		t.Helper()
		got, err := l.Revoked(ctx, kid, jti, iat)
		if err != nil {
			t.Fatalf("Revoked(%q, %q, %v): %v", kid, jti, iat, err)
		}
		return got
	}

	t.Run("JTIUntilExpiry", func(t *testing.T) {
		l, c, ctx := setup(t)
		if err := l.RevokeJTI(ctx, "jti-1", epoch.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeJTI: %v", err)
		}
		for _, tc := range []struct {
			name    string
			advance time.Duration
			want    bool
		}{
			{"at once", 0, true},
			{"before expiry", 59 * time.Minute, true},
			{"at expiry: inside a verifier's leeway", time.Minute, true},
			{"just inside the largest leeway", verifier.MaxLeeway - time.Second, true},
			{"at expiry plus the largest leeway", time.Second, false},
			{"after expiry", time.Hour, false},
		} {
			c.Advance(tc.advance)
			if got := revoked(t, ctx, l, "kid-x", "jti-1", epoch); got != tc.want {
				t.Errorf("%s: Revoked(jti-1) = %v, want %v", tc.name, got, tc.want)
			}
		}
	})
	t.Run("JTIPastUntilIgnored", func(t *testing.T) {
		l, _, ctx := setup(t)
		if err := l.RevokeJTI(ctx, "jti-old", epoch.Add(-verifier.MaxLeeway-time.Second)); err != nil {
			t.Fatalf("RevokeJTI(past until): %v", err)
		}
		if got := revoked(t, ctx, l, "kid-x", "jti-old", epoch.Add(-time.Hour)); got {
			t.Errorf("Revoked(jti with past until) = true, want false")
		}
	})
	t.Run("TimeOutOfRange", func(t *testing.T) {
		l, _, ctx := setup(t)
		for _, at := range []time.Time{{}, verifier.MinRevocationTime.Add(-time.Second), verifier.MaxRevocationTime.Add(time.Second)} {
			if err := l.RevokeJTI(ctx, "jti-1", at); !errors.Is(err, verifier.ErrArgument) {
				t.Errorf("RevokeJTI(until %v) = %v, want ErrArgument", at, err)
			}
			if err := l.RevokeKID(ctx, "kid-1", at); !errors.Is(err, verifier.ErrArgument) {
				t.Errorf("RevokeKID(before %v) = %v, want ErrArgument", at, err)
			}
		}
		if revoked(t, ctx, l, "kid-1", "jti-1", epoch) {
			t.Errorf("refused revocations revoked the token")
		}
	})
	t.Run("JTILaterUntilKept", func(t *testing.T) {
		l, c, ctx := setup(t)
		if err := l.RevokeJTI(ctx, "jti-1", epoch.Add(2*time.Hour)); err != nil {
			t.Fatalf("RevokeJTI: %v", err)
		}
		if err := l.RevokeJTI(ctx, "jti-1", epoch.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeJTI(earlier until): %v", err)
		}
		c.Advance(90 * time.Minute)
		if got := revoked(t, ctx, l, "kid-x", "jti-1", epoch); !got {
			t.Errorf("Revoked after an earlier until was given = false, want true (the later until is kept)")
		}
		if err := l.RevokeJTI(ctx, "jti-1", epoch.Add(3*time.Hour)); err != nil {
			t.Fatalf("RevokeJTI(later until): %v", err)
		}
		c.Advance(time.Hour)
		if got := revoked(t, ctx, l, "kid-x", "jti-1", epoch); !got {
			t.Errorf("Revoked after the until was extended = false, want true")
		}
	})
	t.Run("KIDCutoff", func(t *testing.T) {
		l, c, ctx := setup(t)
		cut := epoch.Add(-time.Minute)
		if err := l.RevokeKID(ctx, "kid-1", cut); err != nil {
			t.Fatalf("RevokeKID: %v", err)
		}
		for _, tc := range []struct {
			name string
			iat  time.Time
			want bool
		}{
			{"long before", cut.Add(-24 * time.Hour), true},
			{"just before", cut.Add(-time.Second), true},
			{"at cutoff", cut, false},
			{"after", cut.Add(time.Second), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := revoked(t, ctx, l, "kid-1", "any-jti", tc.iat); got != tc.want {
					t.Errorf("Revoked(kid-1, iat %v) = %v, want %v", tc.iat, got, tc.want)
				}
			})
		}
		c.Advance(365 * 24 * time.Hour)
		if got := revoked(t, ctx, l, "kid-1", "any-jti", cut.Add(-time.Second)); !got {
			t.Errorf("kid policy forgotten after a year: Revoked = false, want true")
		}
	})
	t.Run("KIDCutoffOnlyGrows", func(t *testing.T) {
		l, _, ctx := setup(t)
		first := epoch.Add(-time.Hour)
		if err := l.RevokeKID(ctx, "kid-1", first); err != nil {
			t.Fatalf("RevokeKID: %v", err)
		}
		if err := l.RevokeKID(ctx, "kid-1", epoch); err != nil {
			t.Fatalf("RevokeKID(later cutoff): %v", err)
		}
		mid := epoch.Add(-time.Minute)
		if got := revoked(t, ctx, l, "kid-1", "j", mid); !got {
			t.Errorf("later cutoff did not extend: Revoked(iat %v) = false, want true", mid)
		}
		if err := l.RevokeKID(ctx, "kid-1", first.Add(-time.Hour)); err != nil {
			t.Fatalf("RevokeKID(earlier cutoff): %v", err)
		}
		if got := revoked(t, ctx, l, "kid-1", "j", mid); !got {
			t.Errorf("earlier cutoff shrank the policy: Revoked(iat %v) = false, want true", mid)
		}
	})
	t.Run("Unrelated", func(t *testing.T) {
		l, _, ctx := setup(t)
		if err := l.RevokeKID(ctx, "kid-1", epoch); err != nil {
			t.Fatalf("RevokeKID: %v", err)
		}
		if err := l.RevokeJTI(ctx, "jti-1", epoch.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeJTI: %v", err)
		}
		for _, tc := range []struct {
			name, kid, jti string
		}{
			{"other kid and jti", "kid-2", "jti-2"},
			{"kid prefix", "kid-", "jti-2"},
			{"kid extension", "kid-10", "jti-2"},
			{"jti prefix", "kid-2", "jti-"},
			{"jti extension", "kid-2", "jti-10"},
			{"empty jti", "kid-2", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := revoked(t, ctx, l, tc.kid, tc.jti, epoch.Add(-time.Hour)); got {
					t.Errorf("Revoked(%q, %q) = true, want false", tc.kid, tc.jti)
				}
			})
		}
	})
	t.Run("EmptyArguments", func(t *testing.T) {
		l, _, ctx := setup(t)
		if err := l.RevokeJTI(ctx, "", epoch.Add(time.Hour)); !errors.Is(err, verifier.ErrArgument) {
			t.Errorf("RevokeJTI(\"\") error = %v, want ErrArgument", err)
		}
		if err := l.RevokeKID(ctx, "", epoch); !errors.Is(err, verifier.ErrArgument) {
			t.Errorf("RevokeKID(\"\") error = %v, want ErrArgument", err)
		}
		if got := revoked(t, ctx, l, "", "", epoch.Add(-time.Hour)); got {
			t.Errorf("Revoked(\"\", \"\") after refused calls = true, want false")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		l, _, ctx := setup(t)
		const workers, each = 8, 20
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					jti := fmt.Sprintf("jti-%d-%d", w, i)
					if err := l.RevokeJTI(ctx, jti, epoch.Add(time.Hour)); err != nil {
						t.Errorf("RevokeJTI(%s): %v", jti, err)
						return
					}
					if err := l.RevokeKID(ctx, "kid-shared", epoch.Add(time.Duration(i)*time.Second)); err != nil {
						t.Errorf("RevokeKID: %v", err)
						return
					}
					if got, err := l.Revoked(ctx, "kid-other", jti, epoch); err != nil || !got {
						t.Errorf("Revoked(%s) right after RevokeJTI = %v, %v; want true, nil", jti, got, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for w := range workers {
			for i := range each {
				jti := fmt.Sprintf("jti-%d-%d", w, i)
				if !revoked(t, ctx, l, "kid-other", jti, epoch) {
					t.Errorf("Revoked(%s) after all writers = false, want true", jti)
				}
			}
		}
		last := epoch.Add((each - 1) * time.Second)
		if !revoked(t, ctx, l, "kid-shared", "j", last.Add(-time.Microsecond)) {
			t.Errorf("concurrent RevokeKID lost the latest cutoff %v", last)
		}
		if revoked(t, ctx, l, "kid-shared", "j", last) {
			t.Errorf("Revoked(iat = latest cutoff) = true, want false")
		}
	})
}
