package filestore_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
)

// TestLogger: a new store and the leftovers of an interrupted write are
// logged; the key records are not.
func TestLogger(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := filestore.Open(path, filestore.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	k := keyringtest.SampleKey("kid-1", "set-a", keyring.Pending, keyringtest.Start)
	if err := s.Put(testCtx(t), k); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "creating an empty one") {
		t.Errorf("creation not logged: %q", logs.String())
	}
	stray := filepath.Join(filepath.Dir(path), ".keys.json.tmp-123")
	if err := os.WriteFile(stray, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s, err = filestore.Open(path, filestore.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := logs.String(); !strings.Contains(got, "removed a temporary file") || !strings.Contains(got, stray) {
		t.Errorf("removal of %s not logged: %q", stray, got)
	}
	if strings.Contains(logs.String(), k.BackendRef.Reveal()) {
		t.Errorf("a key's backend reference reached the log")
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file still there: %v", err)
	}
}

func TestOpenRefusesNilOption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := filestore.Open(path, nil); !errors.Is(err, filestore.ErrConfig) {
		t.Fatalf("Open with a nil option: %v, want ErrConfig", err)
	}
	s, err := filestore.Open(path)
	if err != nil {
		t.Fatalf("Open after a refused Open: %v (the lock was not released?)", err)
	}
	s.Close()
}
