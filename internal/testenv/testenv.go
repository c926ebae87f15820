package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// module is the module path whose go.mod marks the repository root.
const module = "github.com/tokenkms/tokenkms"

// Wycheproof returns the directory of the Wycheproof test vectors
// (testvectors_v1 of the Go module github.com/C2SP/wycheproof), fetched
// into the module cache with `go mod download -json`, as Go's own crypto
// tests fetch them. The version is the one internal/tools/go.mod requires
// and internal/tools/go.sum pins: the first call on a machine downloads
// it through the module proxy, later ones read the module cache. It never
// skips: a module that cannot be had, or whose content does not match
// go.sum, fails the test.
func Wycheproof(t testing.TB) string {
	t.Helper()
	root, reason := repoRoot()
	if reason != "" {
		t.Fatalf("Wycheproof vectors: %s", reason)
	}
	// The module's go.mod declares the lower-case path; internal/tools
	// replaces it with github.com/C2SP/wycheproof, the path the proxy serves.
	const mod = "github.com/c2sp/wycheproof"
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = filepath.Join(root, "internal", "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	var dl struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &dl); jsonErr != nil || dl.Error != "" || err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(exit.Stderr))
		}
		t.Fatalf("go mod download -json %s in internal/tools: %v %s: the conformance vectors come from this module; check that GOPROXY reaches the Go module proxy", mod, err, dl.Error)
	}
	return filepath.Join(dl.Dir, "testvectors_v1")
}

// repoRoot walks up from the working directory to the directory holding
// the go.mod of module. It returns a reason instead of an error value so
// that the caller reports it once.
func repoRoot() (string, string) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err.Error()
	}
	for {
		if declaresModule(filepath.Join(dir, "go.mod")) {
			return dir, ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "no go.mod of " + module + " above the working directory"
		}
		dir = parent
	}
}

// declaresModule reports whether the go.mod at path declares module.
func declaresModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == module
		}
	}
	return false
}
