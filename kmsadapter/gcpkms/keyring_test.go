package gcpkms_test

import (
	"testing"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
)

// TestKeyringLifecycle runs the whole key lifecycle (create, approve,
// activate, issue, verify, rotate, grace, retire, JWKS, emergency
// rotation) on keys that live in Cloud KMS (the in-process fake, over
// gRPC on loopback).
func TestKeyringLifecycle(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			lifecycletest.Run(t, newEnv(t).prov, alg)
		})
	}
}
