package filestore_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
)

func openTemp(t *testing.T) (*filestore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := filestore.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestConformance(t *testing.T) {
	keyringtest.TestKeyStore(t, func(t *testing.T) keyring.KeyStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestReopenKeepsState(t *testing.T) {
	s, path := openTemp(t)
	ctx := testCtx(t)
	k := keyringtest.SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 123456789))
	if err := s.Put(ctx, k); err != nil {
		t.Fatalf("Put: %v", err)
	}
	k.State = keyring.Active
	k.ActivatedAt = time.Unix(1_700_000_600, 5).UTC()
	if err := s.Update(ctx, k, 1); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx, "kid-1"); !errors.Is(err, filestore.ErrClosed) {
		t.Errorf("Get after Close error = %v, want ErrClosed", err)
	}
	s2, err := filestore.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	got, err := s2.Get(ctx, "kid-1")
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if got.State != keyring.Active || got.Version != 2 || !got.ActivatedAt.Equal(k.ActivatedAt) || !got.CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("after reopen got %v v%d activated %v created %v; want active v2 %v %v", got.State, got.Version, got.ActivatedAt, got.CreatedAt, k.ActivatedAt, k.CreatedAt)
	}
	if pub, ok := got.Public.(*ecdsa.PublicKey); !ok || !pub.Equal(k.Public) {
		t.Errorf("public key not restored after reopen")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %#o, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "PRIVATE") {
		t.Errorf("store file contains private key material")
	}
}

func TestOpenRefuses(t *testing.T) {
	valid := `{"format":1,"keys":[]}`
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    error
	}{
		{"group readable", valid, 0o640, filestore.ErrPermissions},
		{"world readable", valid, 0o604, filestore.ErrPermissions},
		{"group writable", valid, 0o620, filestore.ErrPermissions},
		{"newer format", `{"format":3,"keys":[]}`, 0o600, filestore.ErrFormatVersion},
		{"format zero", `{"keys":[]}`, 0o600, filestore.ErrCorrupt},
		{"not json", `garbage`, 0o600, filestore.ErrCorrupt},
		{"truncated", `{"format":1,"keys":[{"kid":"a"`, 0o600, filestore.ErrCorrupt},
		{"unknown field", `{"format":1,"keys":[],"extra":1}`, 0o600, filestore.ErrCorrupt},
		{"record without version", `{"format":1,"keys":[{"kid":"a"}]}`, 0o600, filestore.ErrCorrupt},
		{"bad public key", `{"format":1,"keys":[{"kid":"a","version":1,"public":"AAAA"}]}`, 0o600, filestore.ErrCorrupt},
		{"duplicate kid", `{"format":1,"keys":[{"kid":"a","version":1},{"kid":"a","version":1}]}`, 0o600, filestore.ErrCorrupt},
		{"state 0", `{"format":1,"keys":[{"kid":"a","version":1,"purpose":1,"state":0}]}`, 0o600, keyring.ErrCorruptRecord},
		{"state 7", `{"format":1,"keys":[{"kid":"a","version":1,"purpose":1,"state":7}]}`, 0o600, keyring.ErrCorruptRecord},
		{"state 99", `{"format":1,"keys":[{"kid":"a","version":1,"purpose":1,"state":99}]}`, 0o600, filestore.ErrCorrupt},
		{"state -3", `{"format":1,"keys":[{"kid":"a","version":1,"purpose":1,"state":-3}]}`, 0o600, filestore.ErrCorrupt},
		{"purpose 9", `{"format":1,"keys":[{"kid":"a","version":1,"purpose":9,"state":1}]}`, 0o600, keyring.ErrCorruptRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			s, err := filestore.Open(path)
			if !errors.Is(err, tc.want) {
				t.Errorf("Open error = %v, want %v", err, tc.want)
			}
			if err == nil {
				s.Close()
			}
		})
	}
	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "real.json")
		if err := os.WriteFile(target, []byte(valid), 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "keys.json")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if s, err := filestore.Open(link); err == nil {
			s.Close()
			t.Errorf("Open(symlink) succeeded, want an error")
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "keys.json")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if s, err := filestore.Open(path); !errors.Is(err, filestore.ErrPermissions) {
			if err == nil {
				s.Close()
			}
			t.Errorf("Open(directory) error = %v, want ErrPermissions", err)
		}
	})
}

func TestLocked(t *testing.T) {
	_, path := openTemp(t)
	if s, err := filestore.Open(path); !errors.Is(err, filestore.ErrLocked) {
		if err == nil {
			s.Close()
		}
		t.Errorf("second Open error = %v, want ErrLocked", err)
	}
}

func TestInvalidKeyRefused(t *testing.T) {
	s, path := openTemp(t)
	ctx := testCtx(t)
	if err := s.Put(ctx, keyring.Key{}); !errors.Is(err, filestore.ErrInvalidKey) {
		t.Errorf("Put(empty kid) error = %v, want ErrInvalidKey", err)
	}
	k := keyringtest.SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
	k.Public = struct{}{}
	if err := s.Put(ctx, k); !errors.Is(err, filestore.ErrInvalidKey) {
		t.Errorf("Put(unmarshalable public key) error = %v, want ErrInvalidKey", err)
	}
	if _, err := s.Get(ctx, "kid-1"); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("refused Put left a record: Get error = %v, want ErrNotFound", err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestStringHidesContent(t *testing.T) {
	s, _ := openTemp(t)
	ctx := testCtx(t)
	k := keyringtest.SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
	if err := s.Put(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got := s.String(); strings.Contains(got, k.BackendRef.Reveal()) || strings.Contains(got, "kid-1") {
		t.Errorf("String() = %q leaks store content", got)
	}
}
