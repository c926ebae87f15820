// Package testenv tells tests where the real backends that ./scripts/test
// starts are (local-kms, SoftHSM2, PostgreSQL). Under ./scripts/test
// (TOKENKMS_TEST_SERVICES=1) a missing backend fails the test; under a bare
// `go test` it skips with a message naming the script.
package testenv

import (
	"os"
	"testing"
)

// The environment variables that ./scripts/test sets.
const (
	Services      = "TOKENKMS_TEST_SERVICES"    // "1" under ./scripts/test
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
