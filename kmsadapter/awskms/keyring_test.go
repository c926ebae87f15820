package awskms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// TestKeyringEndToEnd: a key set whose keys live in AWS KMS, from creation
// by one keyring replica to a token issued by another one (which reopens
// the key from the stored reference) and verified, then a key disabled in
// KMS behind the keyrings' back.
func TestKeyringEndToEnd(t *testing.T) {
	c := localKMS(t)
	clock := keyringtest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	revs := verifier.NewMemoryRevocationList(clock.Now)
	store := keyring.NewMemStore()
	const set = "access-tokens"
	replica := func() *keyring.Keyring {
		r, err := keyring.New(testCtx(t), keyring.Config{
			Store:       store,
			Providers:   map[string]signer.Provider{"awskms": newProvider(t, c, nil)},
			Audit:       audit.NewRecorder(),
			Revocations: revs,
			Now:         clock.Now,
			Sets:        []keyring.SetPolicy{{Name: set, Owner: "team-identity", Backend: "awskms", Algorithm: "ES256"}},
		})
		if err != nil {
			t.Fatalf("keyring.New: %v", err)
		}
		return r
	}
	ring := replica()
	as := func(id string, role keyring.Role) context.Context {
		return keyring.WithPrincipal(testCtx(t), keyring.Principal{ID: id, Roles: []keyring.Role{role}})
	}
	k, err := ring.Create(as("alice", keyring.RoleIssuer), set)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if k.Backend != "awskms" || parseErr(k.BackendRef) != nil {
		t.Fatalf("key backend, ref = %q, %q; want awskms and a key ARN", k.Backend, k.BackendRef)
	}
	if err := ring.Approve(as("bob", keyring.RoleApprover), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	pol, err := ring.Policy(set)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(pol.PrePublication)
	if err := ring.Activate(as("carol", keyring.RoleDeployer), k.KID); err != nil {
		t.Fatalf("Activate: %v", err)
	}

	other := replica()
	iss, err := signer.NewIssuer(other, signer.IssuerConfig{
		Set: set, Issuer: "https://core.example", Audience: []string{"api"},
		DefaultLifetime: 5 * time.Minute, MaxLifetime: pol.MaxTokenLifetime, Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	tok, err := iss.Issue(testCtx(t), tokenkms.Claims{Subject: "alice", ClientID: "web"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	v, err := verifier.New(other, verifier.Policy{Issuer: "https://core.example", Audience: []string{"api"}}, verifier.WithNow(clock.Now))
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	claims, err := v.Verify(testCtx(t), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.Subject != "alice" || claims.ClientID != "web" {
		t.Fatalf("claims sub, client_id = %q, %q; want alice, web", claims.Subject, claims.ClientID)
	}

	if _, err := c.DisableKey(testCtx(t), &kms.DisableKeyInput{KeyId: aws.String(k.BackendRef)}); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Issue(testCtx(t), tokenkms.Claims{Subject: "alice", ClientID: "web"}); !errors.Is(err, signer.ErrKeyDisabled) {
		t.Fatalf("Issue with the KMS key disabled: got %v, want %v", err, signer.ErrKeyDisabled)
	}
}

// parseErr reports whether ref opens as a reference of this adapter,
// without a backend: Open on a client that fails every call fails with
// ErrBadReference only when ref itself is refused.
func parseErr(ref string) error {
	p, err := awskms.NewProvider(&fakeClient{}, nil)
	if err != nil {
		return err
	}
	_, err = p.Open(context.Background(), "kid", ref)
	if errors.Is(err, signer.ErrBadReference) {
		return err
	}
	return nil
}
