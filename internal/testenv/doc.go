// Package testenv tells tests where the real backends that ./scripts/test
// starts are (local-kms, SoftHSM2, PostgreSQL). Under ./scripts/test
// (TOKENKMS_TEST_SERVICES=1) a missing backend fails the test; under a bare
// `go test` it skips with a message naming the script.
package testenv
