package keyring_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// TestVerifierTrustsOnlyNamedSets: a keyring holding two signing sets
// (different owners) refuses a verifier that names neither, and the
// orders-api verifier refuses a token signed by the partner set's key
// (issue 14, item 2). Data-key sets are not signing sets.
func TestVerifierTrustsOnlyNamedSets(t *testing.T) {
	const partner = "partner-tokens"
	e := newEnv(t, func(c *keyring.Config) {
		c.Sets = append(c.Sets,
			keyring.SetPolicy{Name: partner, Owner: "team-partners"},
			keyring.SetPolicy{Name: "data", Owner: "team-data", Purpose: keyring.Encryption})
	})
	if got, want := e.ring.SigningSets(), []string{set, partner}; !slices.Equal(got, want) {
		t.Fatalf("SigningSets = %q, want %q", got, want)
	}
	e.bootstrapSet(t, set)
	e.bootstrapSet(t, partner)
	pol := verifier.Policy{Issuer: "https://core.test", Audience: []string{"orders-api"}}
	if _, err := verifier.New(e.ring, pol, verifier.WithNow(e.clock.Now)); !errors.Is(err, verifier.ErrPolicy) {
		t.Fatalf("verifier.New naming no set of two: error = %v, want ErrPolicy", err)
	}
	pol.KeySets = []string{set}
	v, err := verifier.New(e.ring, pol, verifier.WithNow(e.clock.Now))
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	issue := func(s string) string {
		t.Helper()
		p, err := e.ring.Policy(s)
		if err != nil {
			t.Fatal(err)
		}
		is, err := signer.NewIssuer(e.ring, signer.IssuerConfig{
			Set: s, Issuer: "https://core.test", Audience: []string{"orders-api"},
			DefaultLifetime: p.MaxTokenLifetime, MaxLifetime: p.MaxTokenLifetime, Now: e.clock.Now,
		})
		if err != nil {
			t.Fatalf("NewIssuer(%s): %v", s, err)
		}
		tok, err := is.Issue(context.Background(), tokenkms.Claims{Subject: "u", ClientID: "c"})
		if err != nil {
			t.Fatalf("Issue(%s): %v", s, err)
		}
		return tok
	}
	if _, err := v.Verify(context.Background(), issue(partner)); !errors.Is(err, verifier.ErrKeySet) {
		t.Errorf("token of %s verified by the %s verifier: error = %v, want ErrKeySet", partner, set, err)
	}
	if _, err := v.Verify(context.Background(), issue(set)); err != nil {
		t.Errorf("token of %s: %v", set, err)
	}
}
