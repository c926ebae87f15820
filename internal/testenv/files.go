package testenv

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"testing"
)

// WritableByOthers makes dir writable by anyone (0777) until the test
// ends: the directory a private-file opener must refuse.
func WritableByOthers(t testing.TB, dir string) {
	t.Helper()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
}

// Victim is the state of a file a refused open must not touch: the target
// of a symbolic link planted at the path opened, or a dangling link's
// missing target.
type Victim struct {
	path    string
	exists  bool
	mode    fs.FileMode
	content []byte
}

// RecordVictim records the mode and content of the file at path, or that
// it does not exist.
func RecordVictim(t testing.TB, path string) Victim {
	t.Helper()
	v := Victim{path: path}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return v
	case err != nil:
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v.exists, v.mode, v.content = true, fi.Mode(), content
	return v
}

// CheckUnchanged fails the test if the victim's file changed since
// RecordVictim: its mode or content, or a missing file now there.
func (v Victim) CheckUnchanged(t testing.TB) {
	t.Helper()
	fi, err := os.Stat(v.path)
	if !v.exists {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the dangling link's target %s exists after the refused open (%v)", v.path, err)
		}
		return
	}
	if err != nil || fi.Mode() != v.mode {
		t.Errorf("victim %s: mode %v, %v; want %v", v.path, fi.Mode(), err, v.mode)
		return
	}
	if after, err := os.ReadFile(v.path); err != nil || !bytes.Equal(after, v.content) {
		t.Errorf("victim %s content changed: %d bytes → %d (%v)", v.path, len(v.content), len(after), err)
	}
}
