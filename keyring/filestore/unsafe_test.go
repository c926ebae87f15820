package filestore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/safefile"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
)

// TestOpenRefusesUnsafePaths: the lock file and the store file are never
// reached through a symbolic link (a victim file is left as it was, a
// dangling link creates nothing), and a directory others may write is
// refused (issue 14, item 3).
func TestOpenRefusesUnsafePaths(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string) (victim string)
		wantWhy error
	}{
		{name: "lock is a symlink to a file", wantWhy: safefile.ErrSymlink, setup: func(t *testing.T, path string) string {
			return symlinkTo(t, path+".lock", true)
		}},
		{name: "lock is a dangling symlink", wantWhy: safefile.ErrSymlink, setup: func(t *testing.T, path string) string {
			return symlinkTo(t, path+".lock", false)
		}},
		{name: "store is a symlink to a file", wantWhy: safefile.ErrSymlink, setup: func(t *testing.T, path string) string {
			return symlinkTo(t, path, true)
		}},
		{name: "store is a dangling symlink", wantWhy: safefile.ErrSymlink, setup: func(t *testing.T, path string) string {
			return symlinkTo(t, path, false)
		}},
		{name: "directory writable by others", wantWhy: safefile.ErrDirMode, setup: func(t *testing.T, path string) string {
			testenv.WritableByOthers(t, filepath.Dir(path))
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.json")
			victim := tt.setup(t, path)
			var before testenv.Victim
			if victim != "" {
				before = testenv.RecordVictim(t, victim)
			}
			s, err := filestore.Open(path)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, filestore.ErrPermissions) || !errors.Is(err, tt.wantWhy) {
				t.Fatalf("Open error = %v, want ErrPermissions (%v)", err, tt.wantWhy)
			}
			if victim != "" {
				before.CheckUnchanged(t)
			}
		})
	}
}

// TestReopenRefusesSwappedStore: a store file replaced by a symbolic link
// between two runs is refused at the next Open; put back, it opens with
// its keys.
func TestReopenRefusesSwappedStore(t *testing.T) {
	s, path := openTemp(t)
	ctx := testCtx(t)
	k := keyringtest.SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
	if err := s.Put(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, path); err != nil {
		t.Fatal(err)
	}
	if s, err := filestore.Open(path); !errors.Is(err, safefile.ErrSymlink) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a swapped store: error = %v, want ErrSymlink", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, path); err != nil {
		t.Fatal(err)
	}
	s, err := filestore.Open(path)
	if err != nil {
		t.Fatalf("Open after the file was put back: %v", err)
	}
	defer s.Close()
	if got, err := s.Get(ctx, "kid-1"); err != nil || got.BackendRef.Reveal() != k.BackendRef.Reveal() {
		t.Errorf("Get after reopen = %v, %v; want the stored key with its reference", got, err)
	}
}

// symlinkTo makes link point to a file outside the store's directory,
// holding "victim" with mode 0644 if exists, else missing; it returns the
// target.
func symlinkTo(t *testing.T, link string, exists bool) string {
	t.Helper()
	victim := filepath.Join(t.TempDir(), "victim")
	if exists {
		if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(victim, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	return victim
}
