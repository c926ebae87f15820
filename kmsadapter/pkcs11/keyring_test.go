//go:build cgo

package pkcs11_test

import (
	"testing"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
)

// TestKeyringLifecycle runs the whole key lifecycle (create, approve,
// activate, issue, verify, rotate, grace, retire, JWKS, emergency
// rotation) on keys that live in the HSM (SoftHSM2).
func TestKeyringLifecycle(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	for _, alg := range []string{"ES256", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			lifecycletest.Run(t, p, alg)
		})
	}
}
