package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/safefile"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
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
	go func() { done <- serve(ctx, ln, dir, io.Discard, options{}) }()
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

func token(t testing.TB, base, scope string) string {
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

func get(t testing.TB, url, tok string) (int, string) {
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

// The environment of a server child (TestServerKilledMidYear).
const (
	envChildDir   = "TOKENKMS_HTTPSERVER_DIR"
	envChildClock = "TOKENKMS_HTTPSERVER_CLOCK" // a file holding the Unix seconds of the child's clock
	childTick     = 2 * time.Millisecond
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envChildDir); dir != "" {
		serveChild(dir, os.Getenv(envChildClock))
		return
	}
	os.Exit(m.Run())
}

// serveChild runs the server as its own process, on the clock the parent
// test writes to clockPath, until it is killed.
func serveChild(dir, clockPath string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("ready\n%s\n", ln.Addr())
	now := func() time.Time {
		b, err := os.ReadFile(clockPath)
		sec, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || perr != nil {
			panic(fmt.Sprintf("test clock %s: %v %v", clockPath, err, perr))
		}
		return time.Unix(sec, 0).UTC()
	}
	err = serve(context.Background(), ln, dir, io.Discard, options{now: now, tick: childTick})
	fmt.Fprintln(os.Stderr, "serve:", err)
	os.Exit(2)
}

// TestServerKilledMidYear runs the example as a process through a
// simulated year, a token every twelve hours: every Issue succeeds, no key
// signs for more than 90 days (the scheduler rotates under the standing
// approval made on the first start). Mid-year a security officer revokes
// a token and the process is killed with SIGKILL as soon as the answer
// comes; the restarted process refuses that token and goes on rotating.
func TestServerKilledMidYear(t *testing.T) {
	dir := t.TempDir()
	clockPath := filepath.Join(t.TempDir(), "clock")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	setClock := func(at time.Time) {
		tmp := clockPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.FormatInt(at.Unix(), 10)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, clockPath); err != nil {
			t.Fatal(err)
		}
	}
	setClock(now)
	startChild := func() (string, *testenv.Child) {
		c := testenv.StartChild(t, envChildDir+"="+dir, envChildClock+"="+clockPath)
		addr, err := c.Out.ReadString('\n')
		if err != nil {
			t.Fatalf("child address: %v", err)
		}
		return "http://" + strings.TrimSpace(addr), c
	}
	base, child := startChild()
	firstSeen := map[string]time.Time{} // kid -> first time it signed
	runUntil := func(end time.Time) {
		for now.Before(end) {
			now = now.Add(12 * time.Hour)
			setClock(now)
			time.Sleep(5 * childTick) // let the scheduler tick at this time
			tok := token(t, base, "orders:read")
			if code, body := get(t, base+"/api/orders", tok); code != http.StatusOK {
				t.Fatalf("%v: GET /api/orders with a fresh token = %d %q", now, code, body)
			}
			kid := tokenField(t, tok, 0, "kid")
			if _, ok := firstSeen[kid]; !ok {
				firstSeen[kid] = now
			}
			if age := now.Sub(firstSeen[kid]); age > keyring.MaxSigningRotation {
				t.Fatalf("%v: %s has signed for %v, past 90 days", now, kid, age)
			}
		}
	}
	start := now
	runUntil(start.Add(182 * keyring.Day))

	victim := token(t, base, "orders:read")
	admin := token(t, base, "keys:revoke")
	req, _ := http.NewRequest("POST", base+"/api/admin/revoke", strings.NewReader(url.Values{"jti": {tokenField(t, victim, 1, "jti")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !child.Kill(t) || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke = %d; child killed right after: want 204 and a SIGKILL", resp.StatusCode)
	}

	base, child = startChild()
	if code, body := get(t, base+"/api/orders", victim); code != http.StatusUnauthorized || !strings.Contains(body, "invalid_token") {
		t.Errorf("revoked token after SIGKILL and restart = %d %q, want 401 invalid_token", code, body)
	}
	runUntil(start.Add(365 * keyring.Day))
	child.Kill(t)
	if len(firstSeen) < 4 {
		t.Errorf("%d keys signed over a year, want at least 4 (one per 90 days)", len(firstSeen))
	}
}

// tokenField returns a string member of a token's header (part 0) or
// claims (part 1), unverified.
func tokenField(t *testing.T, tok string, part int, name string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	v, _ := m[name].(string)
	if v == "" {
		t.Fatalf("token has no %s", name)
	}
	return v
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
			if err := serve(context.Background(), ln, dir, io.Discard, options{}); !errors.Is(err, safefile.ErrSymlink) {
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
