package gcpkms_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// TestKeyringEndToEnd runs a keyring whose signing keys live in Cloud KMS:
// one keyring creates the key in Cloud KMS (Generate), it is approved and
// activated, and another keyring on the same store (a second replica)
// reopens it from its reference (Open), issues a token and verifies it.
func TestKeyringEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	store := keyring.NewMemStore()
	revs := verifier.NewMemoryRevocationList(nil)
	newRing := func() *keyring.Keyring {
		r, err := keyring.New(ctx, keyring.Config{
			Store:       store,
			Providers:   map[string]signer.Provider{"gcpkms": e.prov},
			Audit:       audit.NewRecorder(),
			Revocations: revs,
			Sets:        []keyring.SetPolicy{{Name: "access-tokens", Algorithm: "ES256", Backend: "gcpkms", Owner: "identity-team"}},
		})
		if err != nil {
			t.Fatalf("keyring.New: %v", err)
		}
		return r
	}
	creator := newRing()
	as := func(id string, role keyring.Role) keyring.Principal {
		return keyring.Principal{ID: id, Roles: []keyring.Role{role}}
	}
	k, err := creator.Create(keyring.WithPrincipal(ctx, as("alice", keyring.RoleIssuer)), "access-tokens")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(k.BackendRef, ring+"/cryptoKeys/") {
		t.Fatalf("BackendRef = %q, want a version of a key in %s", k.BackendRef, ring)
	}
	if err := creator.Approve(keyring.WithPrincipal(ctx, as("bob", keyring.RoleApprover)), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := creator.Activate(keyring.WithPrincipal(ctx, as("carol", keyring.RoleDeployer)), k.KID); err != nil {
		t.Fatalf("Activate: %v", err)
	}

	policy := verifier.Policy{Issuer: "https://issuer.example", Audience: []string{"orders"}}
	replica := newRing()
	iss, err := signer.NewIssuer(replica, signer.IssuerConfig{
		Set: "access-tokens", Issuer: policy.Issuer, Audience: policy.Audience,
		DefaultLifetime: 5 * time.Minute, MaxLifetime: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue(ctx, tokenkms.Claims{Subject: "user-1", ClientID: "client-1"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	v, err := verifier.New(replica, policy, verifier.WithRevocationList(revs))
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "user-1" {
		t.Fatalf("sub = %q, want user-1", c.Subject)
	}
	if got := e.srv.Calls("GetPublicKey"); got != 2 {
		t.Errorf("GetPublicKey calls = %d, want 2 (Generate, then Open by the replica)", got)
	}
}
