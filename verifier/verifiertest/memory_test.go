package verifiertest_test

import (
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/verifier"
	"github.com/tokenkms/tokenkms/verifier/verifiertest"
)

func TestMemoryRevocationList(t *testing.T) {
	verifiertest.TestRevocationList(t, func(t *testing.T, now func() time.Time) verifier.RevocationList {
		return verifier.NewMemoryRevocationList(now)
	})
}

func TestLoggedRevocationList(t *testing.T) {
	verifiertest.TestRevocationList(t, func(t *testing.T, now func() time.Time) verifier.RevocationList {
		return verifier.NewLoggedRevocationList(now)
	})
}
