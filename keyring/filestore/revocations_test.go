package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/verifier"
	"github.com/tokenkms/tokenkms/verifier/verifiertest"
)

func TestRevocationListConformance(t *testing.T) {
	verifiertest.TestRevocationList(t, func(t *testing.T, now func() time.Time) verifier.RevocationList {
		s, err := filestore.Open(filepath.Join(t.TempDir(), "keys.json"), filestore.WithClock(now))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Revocations()
	})
}

// TestApprovalsSurviveReopen: standing approvals are in the key file.
func TestApprovalsSurviveReopen(t *testing.T) {
	s, path := openTemp(t)
	ctx := testCtx(t)
	a := keyring.Approval{Kind: keyring.ScheduleApproval, Subject: "set-a", By: "bob", At: time.Unix(1_700_000_000, 5).UTC(), Terms: "t"}
	if err := s.PutApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := filestore.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	got, err := s2.Approvals(ctx)
	if err != nil || len(got) != 1 || got[0].By != "bob" || !got[0].At.Equal(a.At) || got[0].Terms != "t" {
		t.Errorf("Approvals after reopen = %+v, %v; want [%+v]", got, err, a)
	}
}

// TestRevocationsSurviveReopen revokes jtis and a kid, closes, reopens:
// they are still revoked, the journal is 0600, and a jti whose horizon
// passed while the store was closed is dropped from the journal.
func TestRevocationsSurviveReopen(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := filestore.Open(path, filestore.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	revs := s.Revocations()
	iat := clock.Now().Add(-time.Minute)
	for _, step := range []error{
		revs.RevokeJTI(ctx, "short", clock.Now().Add(time.Minute)),
		revs.RevokeJTI(ctx, "long", clock.Now().Add(time.Hour)),
		revs.RevokeKID(ctx, "kid-1", clock.Now()),
	} {
		if step != nil {
			t.Fatalf("revoke: %v", step)
		}
	}
	s.Close()
	if err := revs.RevokeJTI(ctx, "late", clock.Now().Add(time.Hour)); !errors.Is(err, filestore.ErrClosed) {
		t.Errorf("RevokeJTI after Close = %v, want ErrClosed", err)
	}
	fi, err := os.Stat(path + ".revoked")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	clock.Advance(time.Minute + verifier.MaxLeeway)
	s2, err := filestore.Open(path, filestore.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	for _, tc := range []struct {
		name, kid, jti string
		want           bool
	}{
		{name: "long jti", kid: "kid-x", jti: "long", want: true},
		{name: "short jti past its horizon", kid: "kid-x", jti: "short", want: false},
		{name: "kid policy", kid: "kid-1", jti: "other", want: true},
	} {
		if got, err := s2.Revocations().Revoked(ctx, tc.kid, tc.jti, iat); err != nil || got != tc.want {
			t.Errorf("%s: Revoked = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	b, err := os.ReadFile(path + ".revoked")
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(b); n != 2 {
		t.Errorf("journal after reopen has %d lines, want 2 (the expired jti compacted away):\n%s", n, b)
	}
}

// TestRevocationJournalDamage: a torn last line (a crash mid-append, the
// call never returned) is dropped; any other damage refuses Open.
func TestRevocationJournalDamage(t *testing.T) {
	good := `{"jti":"a","until":"2099-01-01T00:00:00Z"}` + "\n"
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    error // nil: opens, and jti "a" is revoked
	}{
		{name: "torn last line", content: good + `{"jti":"b","unt`, mode: 0o600},
		{name: "bad line", content: `{"jti":"b"` + "\n" + good, mode: 0o600, want: filestore.ErrCorrupt},
		{name: "unknown field", content: `{"jti":"b","until":"2099-01-01T00:00:00Z","x":1}` + "\n", mode: 0o600, want: filestore.ErrCorrupt},
		{name: "jti and kid", content: `{"jti":"b","kid":"k","until":"2099-01-01T00:00:00Z"}` + "\n", mode: 0o600, want: filestore.ErrCorrupt},
		{name: "out of range", content: `{"kid":"k","before":"0001-01-01T00:00:01Z"}` + "\n", mode: 0o600, want: filestore.ErrCorrupt},
		{name: "group readable", content: good, mode: 0o640, want: filestore.ErrPermissions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(path+".revoked", []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path+".revoked", tc.mode); err != nil {
				t.Fatal(err)
			}
			s, err := filestore.Open(path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			defer s.Close()
			if got, _ := s.Revocations().Revoked(testCtx(t), "k", "a", time.Now()); !got {
				t.Errorf("jti before the torn line not revoked")
			}
			b, _ := os.ReadFile(path + ".revoked")
			if string(b) != good {
				t.Errorf("journal after Open = %q, want the torn line cut: %q", b, good)
			}
		})
	}
	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "elsewhere")
		if err := os.WriteFile(target, []byte(good), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "keys.json")
		if err := os.Symlink(target, path+".revoked"); err != nil {
			t.Fatal(err)
		}
		if s, err := filestore.Open(path); err == nil {
			s.Close()
			t.Errorf("Open with a symlinked journal succeeded, want an error")
		}
	})
}

// TestRevocationJournalBounded revokes many short-lived jtis over time:
// the journal is compacted as it grows and holds about the live ones.
func TestRevocationJournalBounded(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := filestore.Open(path, filestore.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 10,000 revocations, each synced to disk: more than testCtx's 30 s on
	// a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const perMinute, minutes = 100, 100
	for m := range minutes {
		for i := range perMinute {
			if err := s.Revocations().RevokeJTI(ctx, jtiName(m, i), clock.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Minute)
	}
	b, err := os.ReadFile(path + ".revoked")
	if err != nil {
		t.Fatal(err)
	}
	// Live at the end: the jtis of the last minute plus the leeway (6
	// minutes' worth); the journal may have doubled since its last
	// compaction, and compacts at 1024 lines at the least.
	live := perMinute * int((time.Minute+verifier.MaxLeeway)/time.Minute+1)
	if n := countLines(b); n > max(2*live, 2048) {
		t.Errorf("journal holds %d lines after %d revocations, want at most %d", n, perMinute*minutes, max(2*live, 2048))
	}
	if got, _ := s.Revocations().Revoked(ctx, "k", jtiName(minutes-1, 0), clock.Now()); !got {
		t.Errorf("the last minute's jti is no longer revoked")
	}
}

func jtiName(m, i int) string { return fmt.Sprintf("jti-%d-%d", m, i) }

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// fileOpener opens the store at path, with its own revocation list (the
// keyring's default for a filestore).
func fileOpener(path string) lifecycletest.Opener {
	return func(now func() time.Time) (keyring.KeyStore, verifier.RevocationList, func() error, error) {
		s, err := filestore.Open(path, filestore.WithClock(now))
		if err != nil {
			return nil, nil, nil, err
		}
		return s, nil, s.Close, nil
	}
}

// TestRestartTwoYears: two simulated years of scheduled rotation over 20
// restarts on one store file (lifecycletest.Restarts).
func TestRestartTwoYears(t *testing.T) {
	lifecycletest.Restarts(t, fileOpener(filepath.Join(t.TempDir(), "keys.json")))
}

// TestRevocationSurvivesSIGKILL: a revocation whose call returned holds
// after the process is killed at once (lifecycletest.RevokeThenKill).
func TestRevocationSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	lifecycletest.RevokeThenKill(t, fileOpener(path), envRevokePath+"="+path)
}

// TestRevokeJTIsBatch: an emergency rotation's recorded jtis go to the
// journal in one write; a batch with one refused entry revokes nothing.
func TestRevokeJTIsBatch(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := filestore.Open(path, filestore.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	var b keyring.JTIBatchRevoker = s.Revocations()
	bad := map[string]time.Time{"x-1": clock.Now().Add(time.Hour), "x-2": {}}
	if err := b.RevokeJTIs(ctx, bad); !errors.Is(err, verifier.ErrArgument) {
		t.Errorf("RevokeJTIs with a zero until = %v, want %v", err, verifier.ErrArgument)
	}
	batch := map[string]time.Time{}
	for i := range 500 {
		batch[jtiName(0, i)] = clock.Now().Add(time.Hour)
	}
	if err := b.RevokeJTIs(ctx, batch); err != nil {
		t.Fatalf("RevokeJTIs: %v", err)
	}
	s.Close()
	s2, err := filestore.Open(path, filestore.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for jti := range batch {
		if got, _ := s2.Revocations().Revoked(ctx, "k", jti, clock.Now()); !got {
			t.Fatalf("%s not revoked after reopen", jti)
		}
	}
	if got, _ := s2.Revocations().Revoked(ctx, "k", "x-1", clock.Now()); got {
		t.Errorf("x-1 of the refused batch is revoked")
	}
}
