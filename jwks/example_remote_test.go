package jwks_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// A service in another process verifies Core's tokens with the keys of
// Core's JWKS endpoint: a RemoteSet is its verifier.KeySource. A key that
// Core pre-publishes during a rotation is in the set before it signs.
func ExampleNewRemoteSet() {
	ctx := context.Background()

	// Core: a keyring with an Active key, its issuer and its JWKS endpoint.
	ring, err := keyring.New(ctx, keyring.Config{
		Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
	})
	if err != nil {
		panic(err)
	}
	if _, err := keyringtest.ActivateFirst(ctx, ring, "access-tokens"); err != nil {
		panic(err)
	}
	issuer, err := signer.NewIssuer(ring, signer.IssuerConfig{
		Set: "access-tokens", Issuer: "https://core.example", Audience: []string{"orders-api"},
		DefaultLifetime: 15 * time.Minute, MaxLifetime: time.Hour,
	})
	if err != nil {
		panic(err)
	}
	core := httptest.NewServer(jwks.NewHandler(ring))
	defer core.Close()

	// The orders service: a RemoteSet kept fresh in the background (https
	// in production; plain http only on loopback, for tests).
	remote, err := jwks.NewRemoteSet(ctx, core.URL+"/.well-known/jwks.json", jwks.AllowInsecureLoopback())
	if err != nil {
		panic(err)
	}
	defer remote.Close()
	if err := remote.Start(ctx); err != nil {
		panic(err)
	}
	v, err := verifier.New(remote, verifier.Policy{Issuer: "https://core.example", Audience: []string{"orders-api"}},
		verifier.WithRevocationList(verifier.NewMemoryRevocationList(nil)))
	if err != nil {
		panic(err)
	}

	token, err := issuer.Issue(ctx, tokenkms.Claims{Subject: "alice", ClientID: "web", Scope: []string{"orders:read"}})
	if err != nil {
		panic(err)
	}
	claims, err := v.Verify(ctx, token)
	if err != nil {
		panic(err)
	}
	fmt.Println("verified:", claims.Subject, claims.Scope)
	fmt.Println("keys in the set:", len(remote.Keys()))

	next, err := ring.Rotate(keyring.WithPrincipal(ctx, keyringtest.Issuer), "access-tokens")
	if err != nil {
		panic(err)
	}
	// The successor is published once a second person approves it.
	if err := ring.Approve(keyring.WithPrincipal(ctx, keyringtest.Approver), next.KID); err != nil {
		panic(err)
	}
	if err := remote.Refresh(ctx); err != nil {
		panic(err)
	}
	fmt.Println("keys after Core starts a rotation:", len(remote.Keys()))
	// Output:
	// verified: alice [orders:read]
	// keys in the set: 1
	// keys after Core starts a rotation: 2
}
