package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/safefile"
)

// start runs serve on a loopback port until the test ends or stop is
// called; it returns the base URL.
func start(t *testing.T, dir string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, dir, io.Discard) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("serve returned %v, want context.Canceled", err)
		}
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

var client = &http.Client{Timeout: 10 * time.Second}

func token(t *testing.T, base, scope string) string {
	t.Helper()
	resp, err := client.PostForm(base+"/token", url.Values{"sub": {"alice"}, "scope": {scope}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || body.AccessToken == "" {
		t.Fatalf("POST /token: %d", resp.StatusCode)
	}
	return body.AccessToken
}

func get(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + string(b)
}

// TestServerPersists: the wired server answers as RFC 6750 says, and after
// a restart on the same state directory its keys, hence its tokens, are
// still there, and the audit chain verifies.
func TestServerPersists(t *testing.T) {
	dir := t.TempDir()
	base, stop := start(t, dir)
	tok := token(t, base, "orders:read")
	if code, body := get(t, base+"/api/orders", tok); code != 200 || !strings.Contains(body, "orders of alice") {
		t.Errorf("GET /api/orders = %d %q, want 200", code, body)
	}
	if code, body := get(t, base+"/api/orders", token(t, base, "profile")); code != 403 || !strings.Contains(body, "insufficient_scope") {
		t.Errorf("GET without the scope = %d %q, want 403 insufficient_scope", code, body)
	}
	if code, _ := get(t, base+"/api/orders", ""); code != 401 {
		t.Errorf("GET without a token = %d, want 401", code)
	}
	if code, body := get(t, base+"/.well-known/jwks.json", ""); code != 200 || !strings.Contains(body, `"kty":"EC"`) {
		t.Errorf("GET jwks = %d %q", code, body)
	}
	stop()

	for _, f := range []string{"kek", "keys.json", "audit.log"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		switch {
		case err != nil:
			t.Errorf("%s: %v", f, err)
		case fi.Mode().Perm() != 0o600:
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	base, _ = start(t, dir)
	if code, body := get(t, base+"/api/orders", tok); code != 200 {
		t.Errorf("token from before the restart = %d %q, want 200", code, body)
	}
	f, err := os.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := audit.Verify(f); err != nil || n < 4 {
		t.Errorf("audit chain: %d records, %v; want the 4 bootstrap events and no error", n, err)
	}
}

// TestKEKFileRefusesLinks: a key-encryption key path that is a symbolic
// link (to a file, or dangling) is refused before the key store is
// opened: the target is left as it was and no keys.json is created
// (issue 14, item 3).
func TestKEKFileRefusesLinks(t *testing.T) {
	tests := []struct {
		name   string
		target []byte // nil: dangling link
	}{
		{name: "link to a file", target: []byte(strings.Repeat("k", 32))},
		{name: "dangling link", target: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(t.TempDir(), "kek")
			if tt.target != nil {
				if err := os.WriteFile(target, tt.target, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(target, filepath.Join(dir, "kek")); err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if err := serve(context.Background(), ln, dir, io.Discard); !errors.Is(err, safefile.ErrSymlink) {
				t.Fatalf("serve error = %v, want ErrSymlink", err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "keys.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("keys.json exists after the refusal (%v): the store was opened before the key-encryption key", err)
			}
			got, err := os.ReadFile(target)
			if tt.target == nil && !errors.Is(err, os.ErrNotExist) || tt.target != nil && string(got) != string(tt.target) {
				t.Errorf("link target changed: %q, %v", got, err)
			}
		})
	}
}

// TestKEKFileCreatedExclusively: the first start creates the key file with
// mode 0600 and 32 bytes; an empty one (an interrupted first start) is
// refused rather than replaced.
func TestKEKFileCreatedExclusively(t *testing.T) {
	dir := t.TempDir()
	kek, err := loadOrCreateKEK(filepath.Join(dir, "kek"))
	if err != nil || len(kek) != 32 {
		t.Fatalf("loadOrCreateKEK = %d bytes, %v; want 32", len(kek), err)
	}
	again, err := loadOrCreateKEK(filepath.Join(dir, "kek"))
	if err != nil || string(again) != string(kek) {
		t.Fatalf("second loadOrCreateKEK = %v; want the same key", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKEK(empty); err == nil || !strings.Contains(err.Error(), "holds 0 bytes") {
		t.Errorf("loadOrCreateKEK(empty file) error = %v, want it refused", err)
	}
}
