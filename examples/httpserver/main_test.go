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
