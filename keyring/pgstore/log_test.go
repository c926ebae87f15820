package pgstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/keyring/pgstore"
)

// syncBuffer is a log destination safe for the listener's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

// TestLoggerLeadershipAndListen: each replica logs when it gains or loses
// the scheduler lease (not on every tick), and a listener that cannot
// listen logs why.
func TestLoggerLeadershipAndListen(t *testing.T) {
	var logA, logB syncBuffer
	a, pool := newStore(t, pgstore.WithLogger(slog.New(slog.NewTextHandler(&logA, nil))))
	b := pgstore.New(pool, pgstore.WithLogger(slog.New(slog.NewTextHandler(&logB, nil))))
	ctx := testCtx(t)
	lead := func(s *pgstore.Store, want bool) func() {
		t.Helper()
		release, ok, err := s.TryLead(ctx)
		if err != nil || ok != want {
			t.Fatalf("TryLead = %v, %v; want %v", ok, err, want)
		}
		return release
	}
	steps := []struct {
		name  string
		do    func()
		wantA string
		wantB string
	}{
		{name: "a leads, b follows", do: func() { ra := lead(a, true); lead(b, false); ra() },
			wantA: "this replica now leads", wantB: "another replica leads"},
		{name: "same again: nothing new", do: func() { ra := lead(a, true); lead(b, false); ra() }},
		{name: "b takes over", do: func() { rb := lead(b, true); lead(a, false); rb() },
			wantA: "another replica leads", wantB: "this replica now leads"},
	}
	for _, st := range steps {
		st.do()
		for _, c := range []struct {
			who, got, want string
		}{{"a", logA.take(), st.wantA}, {"b", logB.take(), st.wantB}} {
			if c.want == "" && c.got != "" || !strings.Contains(c.got, c.want) {
				t.Errorf("%s: replica %s logged %q, want %q", st.name, c.who, c.got, c.want)
			}
		}
	}

	closedPool := newPool(t, "public")
	closedPool.Close()
	closed := pgstore.New(closedPool, pgstore.WithLogger(slog.New(slog.NewTextHandler(&logA, nil))))
	if err := closed.Listen(context.Background(), func() {}); err == nil {
		t.Fatal("Listen on a closed pool succeeded")
	}
	if got := logA.take(); !strings.Contains(got, "listening for changes failed") {
		t.Errorf("listen failure not logged: %q", got)
	}
}

// TestRevocationCacheReportsSizeAndAge: what the Verifier's revocation
// metrics read.
func TestRevocationCacheReportsSizeAndAge(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	loaded := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, err := s.RevocationCache(pgstore.CacheConfig{Clock: func() time.Time { return loaded }})
	if err != nil {
		t.Fatal(err)
	}
	if st, at := c.Stats(), c.RevocationUpdatedAt(); st.JTIs != 0 || !at.IsZero() {
		t.Errorf("before the first load: %d jtis, updated %v; want 0 and zero", st.JTIs, at)
	}
	if err := s.RevokeJTI(ctx, "j1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKID(ctx, "k1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if st, at := c.Stats(), c.RevocationUpdatedAt(); st.JTIs != 1 || st.KIDPolicies != 1 || !at.Equal(loaded) {
		t.Errorf("after a load: %d jtis, %d kid policies, updated %v; want 1, 1, %v", st.JTIs, st.KIDPolicies, at, loaded)
	}
}
