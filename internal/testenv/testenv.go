package testenv

import (
	"bufio"
	"os"
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

// Wycheproof returns the directory of the Wycheproof test vectors, which
// are not copied into the repository: <root>/../shared/conformance/wycheproof,
// where <root> is the nearest directory above the working directory whose
// go.mod declares the tokenkms module. Under ./scripts/test a missing
// directory fails the test; under a bare `go test` it skips.
func Wycheproof(t testing.TB) string {
	t.Helper()
	dir, err := repoRoot()
	if err == "" {
		dir = filepath.Join(dir, "..", "shared", "conformance", "wycheproof")
		if fi, statErr := os.Stat(dir); statErr == nil && fi.IsDir() {
			return dir
		}
		err = dir + " is not a directory"
	}
	if os.Getenv(Services) == "1" {
		t.Fatalf("Wycheproof vectors not found although ./scripts/test is running: %s", err)
	}
	t.Skipf("Wycheproof vectors not found (%s): check out shared/ beside the repository and run ./scripts/test", err)
	return ""
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
