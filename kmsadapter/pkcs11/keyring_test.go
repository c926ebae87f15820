//go:build cgo

package pkcs11_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// TestKeyringEndToEnd: a keyring whose set lives in the HSM creates,
// approves and activates a key there; the Active key's signature verifies
// under the public key the keyring publishes, and the key record points at
// the token.
func TestKeyringEndToEnd(t *testing.T) {
	p := newProvider(t, pkcs11.Options{VerifyECDSA: true})
	for _, alg := range []string{"ES256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			as := func(id string, role keyring.Role) context.Context {
				return keyring.WithPrincipal(ctx, keyring.Principal{ID: id, Roles: []keyring.Role{role}})
			}
			set := "hsm-" + strings.ToLower(alg)
			ring, err := keyring.New(ctx, keyring.Config{
				Providers:   map[string]signer.Provider{"hsm": p},
				Audit:       audit.NewRecorder(),
				Revocations: verifier.NewMemoryRevocationList(time.Now),
				Sets:        []keyring.SetPolicy{{Name: set, Algorithm: alg, Backend: "hsm", Owner: "team-identity"}},
			})
			if err != nil {
				t.Fatalf("keyring.New: %v", err)
			}
			k, err := ring.Create(as("alice", keyring.RoleIssuer), set)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if k.Backend != "hsm" || !strings.HasPrefix(k.BackendRef, "pkcs11:v1:"+alg+":") {
				t.Errorf("key record: backend %q ref %q, want hsm and a pkcs11 %s reference", k.Backend, k.BackendRef, alg)
			}
			if err := ring.Approve(as("bob", keyring.RoleApprover), k.KID); err != nil {
				t.Fatalf("Approve: %v", err)
			}
			if err := ring.Activate(as("carol", keyring.RoleDeployer), k.KID); err != nil {
				t.Fatalf("Activate: %v", err)
			}
			s, err := ring.Signer(ctx, set)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			if s.KID() != k.KID || s.Algorithm() != alg {
				t.Errorf("signer: kid %q alg %q, want %q %q", s.KID(), s.Algorithm(), k.KID, alg)
			}
			input := []byte("eyJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJ1MSJ9")
			sig, err := s.Sign(ctx, input)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			vk, err := ring.VerificationKey(ctx, k.KID)
			if err != nil {
				t.Fatalf("VerificationKey: %v", err)
			}
			a, _ := jose.Lookup(alg)
			if err := a.Verify(vk.Public, input, sig); err != nil {
				t.Errorf("signature does not verify under the published key: %v", err)
			}
			verifyStd(t, alg, vk.Public, input, sig)
		})
	}
}
