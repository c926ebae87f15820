package safefile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tokenkms/tokenkms/internal/safefile"
	"github.com/tokenkms/tokenkms/internal/testenv"
)

// nobody is a uid that is neither root nor the test's.
const nobody = 65534

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name     string
		flag     int
		rootOnly bool // chown to another user needs root
		// setup prepares dir and returns the path to open and the victim
		// file a link points to ("" if none).
		setup func(t *testing.T, dir string) (path, victim string)
		want  error
	}{
		{name: "symlink to a file, create", flag: os.O_RDWR | os.O_CREATE, want: safefile.ErrSymlink, setup: link(true)},
		{name: "symlink to a file, read", flag: os.O_RDONLY, want: safefile.ErrSymlink, setup: link(true)},
		{name: "symlink to a file, append", flag: os.O_RDWR | os.O_CREATE | os.O_APPEND, want: safefile.ErrSymlink, setup: link(true)},
		{name: "dangling symlink, create", flag: os.O_RDWR | os.O_CREATE, want: safefile.ErrSymlink, setup: link(false)},
		{name: "group-readable file", flag: os.O_RDONLY, want: safefile.ErrFileMode, setup: file(0o640)},
		{name: "world-writable file", flag: os.O_RDWR | os.O_CREATE, want: safefile.ErrFileMode, setup: file(0o602)},
		{name: "FIFO", flag: os.O_RDONLY, want: safefile.ErrNotFile, setup: func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "f")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p, ""
		}},
		{name: "directory", flag: os.O_RDONLY, want: safefile.ErrNotFile, setup: func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "d")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p, ""
		}},
		{name: "group-writable directory", flag: os.O_RDWR | os.O_CREATE, want: safefile.ErrDirMode, setup: dirMode(0o770)},
		{name: "sticky world-writable directory", flag: os.O_RDWR | os.O_CREATE, want: safefile.ErrDirMode, setup: dirMode(os.ModeSticky | 0o777)},
		{name: "file of another user", flag: os.O_RDWR | os.O_CREATE, want: safefile.ErrOwner, rootOnly: true, setup: func(t *testing.T, dir string) (string, string) {
			p, _ := file(0o600)(t, dir)
			chown(t, p)
			return p, ""
		}},
		{name: "directory of another user", flag: os.O_RDWR | os.O_CREATE, want: safefile.ErrOwner, rootOnly: true, setup: func(t *testing.T, dir string) (string, string) {
			chown(t, dir)
			return filepath.Join(dir, "f"), ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootOnly && os.Geteuid() != 0 {
				if os.Getenv(testenv.Services) == "1" {
					t.Fatal("chown to another user needs root, and ./scripts/test runs as root")
				}
				t.Skip("chown to another user needs root: run ./scripts/test")
			}
			dir := t.TempDir()
			path, victim := tt.setup(t, dir)
			var before fs.FileInfo
			if victim != "" {
				before, _ = os.Stat(victim) // nil for a dangling link
			}
			f, _, err := safefile.Open(path, tt.flag)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, safefile.ErrUnsafe) {
				t.Fatalf("Open(%s) error = %v, want %v", filepath.Base(path), err, tt.want)
			}
			if victim == "" {
				return
			}
			if before == nil {
				if _, err := os.Lstat(victim); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the dangling link's target was created (%v)", err)
				}
				return
			}
			if after := stat(t, victim); after.Mode() != before.Mode() || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("victim changed: %v %d → %v %d", before.Mode(), before.Size(), after.Mode(), after.Size())
			}
		})
	}
}

func TestOpenCreates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	f, created, err := safefile.Open(p, os.O_RDWR|os.O_CREATE)
	if err != nil || !created {
		t.Fatalf("Open(missing) = created %t, %v; want created", created, err)
	}
	f.Close()
	if got := stat(t, p).Mode().Perm(); got != 0o600 {
		t.Errorf("created with mode %#o, want 0600", got)
	}
	f, created, err = safefile.Open(p, os.O_RDWR|os.O_CREATE)
	if err != nil || created {
		t.Fatalf("Open(existing) = created %t, %v; want opened", created, err)
	}
	f.Close()
	if _, _, err := safefile.Open(filepath.Join(t.TempDir(), "missing"), os.O_RDONLY); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing, O_RDONLY) error = %v, want ErrNotExist", err)
	}
}

// link makes path a symbolic link to a victim file outside the checks'
// reach: a file with mode 0644 if exists, else a dangling link.
func link(exists bool) func(t *testing.T, dir string) (string, string) {
	return func(t *testing.T, dir string) (string, string) {
		victim := filepath.Join(t.TempDir(), "victim")
		if exists {
			if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(victim, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, "f")
		if err := os.Symlink(victim, p); err != nil {
			t.Fatal(err)
		}
		return p, victim
	}
}

func file(mode os.FileMode) func(t *testing.T, dir string) (string, string) {
	return func(t *testing.T, dir string) (string, string) {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p, ""
	}
}

func dirMode(mode os.FileMode) func(t *testing.T, dir string) (string, string) {
	return func(t *testing.T, dir string) (string, string) {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return filepath.Join(dir, "f"), ""
	}
}

func chown(t *testing.T, p string) {
	t.Helper()
	if err := os.Chown(p, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chown(p, os.Geteuid(), os.Getegid()) })
}

func stat(t *testing.T, p string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
