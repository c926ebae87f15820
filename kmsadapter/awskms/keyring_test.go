package awskms_test

import (
	"testing"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
)

// TestKeyringLifecycle runs the whole key lifecycle (create, approve,
// activate, issue, verify, rotate, grace, retire, JWKS, emergency
// rotation) on keys that live in AWS KMS (local-kms). PS256 is left out:
// local-kms signs RSASSA-PSS with the maximum salt length, which the
// adapter refuses as JWS PS256 requires a salt of the hash's length.
func TestKeyringLifecycle(t *testing.T) {
	c := localKMS(t)
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			lifecycletest.Run(t, newProvider(t, c, nil), alg)
		})
	}
}
