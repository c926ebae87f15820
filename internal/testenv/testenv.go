package testenv

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The environment variables that ./scripts/test sets.
const (
	Services      = "TOKENKMS_TEST_SERVICES"     // "1" under ./scripts/test
	LocalKMS      = "TOKENKMS_LOCALKMS_ENDPOINT" // http://127.0.0.1:PORT
	SoftHSMModule = "TOKENKMS_SOFTHSM2_MODULE"   // path to libsofthsm2.so
	PostgresDSN   = "TOKENKMS_PG_DSN"            // postgres://...@127.0.0.1:PORT/...
)

// Require returns the value of the environment variable name, which a
// backend test needs.
func Require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv(Services) == "1" {
		t.Fatalf("%s is not set although ./scripts/test is running: the backend did not start", name)
	}
	t.Skipf("%s not set: run ./scripts/test, which starts the backend this test needs", name)
	return ""
}

// The Wycheproof test vectors are the Go module WycheproofModule at
// WycheproofVersion, fetched into the module cache by `go mod download
// -json`, as Go's own crypto tests fetch them
// (crypto/internal/cryptotest.FetchModule). The module's go.mod declares
// its path in lower case (github.com/c2sp/wycheproof), so it cannot be a
// requirement of this go.mod: wycheproofSum pins its content instead, the
// hash a go.sum line would hold.
const (
	WycheproofModule  = "github.com/C2SP/wycheproof"
	WycheproofVersion = "v0.0.0-20250901140545-b51abcfb8daf"
	wycheproofSum     = "h1:5BKKVVVj676FUWirLcouEEL6GCYR9X0opkMlEUck8FY="
)

// Wycheproof returns the directory of the Wycheproof vectors that the
// conformance tests read (testvectors_v1 of the pinned module). The first
// call on a machine downloads the module through the Go module proxy;
// later ones read the module cache and need no network. It never skips:
// a download that fails, or a module whose hash is not wycheproofSum,
// fails the test.
func Wycheproof(t testing.TB) string {
	t.Helper()
	mod := WycheproofModule + "@" + WycheproofVersion
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	var dl struct {
		Dir, Sum, Error string
	}
	if jsonErr := json.Unmarshal(out, &dl); jsonErr != nil {
		t.Fatalf("go mod download -json %s: %v (%v): the conformance vectors come from this module; check that the go tool is on PATH and GOPROXY reaches the module proxy", mod, err, jsonErr)
	}
	if dl.Error != "" {
		t.Fatalf("go mod download -json %s: %s: the conformance vectors come from this module; check GOPROXY", mod, dl.Error)
	}
	if dl.Sum != wycheproofSum {
		t.Fatalf("%s: module hash %s, want %s: the module cache or the proxy serves other content; run go clean -modcache", mod, dl.Sum, wycheproofSum)
	}
	return filepath.Join(dl.Dir, "testvectors_v1")
}
