package verifier_test

import (
	"context"
	"errors"
	"fmt"
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
	if err := l.RevokeJTI(ctx, "past", t0.Add(-time.Second)); err != nil {
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
		{name: "until already past when revoked", at: t0, jti: "past", want: false},
		{name: "just before until", at: t0.Add(time.Hour - time.Nanosecond), jti: "a", want: true},
		{name: "at until", at: t0.Add(time.Hour), jti: "a", want: false},
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

	// Writes purge on their own, a minute apart at most.
	now = t0.Add(4 * time.Hour)
	for i := range 2000 {
		if err := l.RevokeJTI(ctx, fmt.Sprint("late-", i), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Len(); got != 2000 {
		t.Errorf("Len after writes past every until = %d, want 2000 (the expired 100 purged)", got)
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
