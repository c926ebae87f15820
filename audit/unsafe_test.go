package audit_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/safefile"
	"github.com/tokenkms/tokenkms/internal/testenv"
)

// TestOpenChainRefusesUnsafePaths: OpenChain never follows a symbolic link
// at the log's path (an existing chain elsewhere gets no record, a
// dangling link creates nothing) and refuses a directory others may write
// (issue 14, item 3).
func TestOpenChainRefusesUnsafePaths(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string) (victim string)
		wantWhy error
	}{
		{name: "symlink to a chain", wantWhy: safefile.ErrSymlink, setup: func(t *testing.T, path string) string {
			victim, _, _ := writeChain(t, 2)
			return link(t, victim, path)
		}},
		{name: "dangling symlink", wantWhy: safefile.ErrSymlink, setup: func(t *testing.T, path string) string {
			return link(t, filepath.Join(t.TempDir(), "missing.log"), path)
		}},
		{name: "directory writable by others", wantWhy: safefile.ErrDirMode, setup: func(t *testing.T, path string) string {
			testenv.WritableByOthers(t, filepath.Dir(path))
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			victim := tt.setup(t, path)
			var before testenv.Victim
			if victim != "" {
				before = testenv.RecordVictim(t, victim)
			}
			l, err := audit.OpenChain(path)
			if err == nil {
				l.Close()
			}
			if !errors.Is(err, audit.ErrFilePermissions) || !errors.Is(err, tt.wantWhy) {
				t.Fatalf("OpenChain error = %v, want ErrFilePermissions (%v)", err, tt.wantWhy)
			}
			if victim != "" {
				before.CheckUnchanged(t)
			}
		})
	}
}

func link(t *testing.T, target, path string) string {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return target
}
