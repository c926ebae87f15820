package keyring_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// A keyring with one key set, and its first key brought to life by three
// people: one generates it, a second approves it, a third deploys it
// (separation of duties). Until then the set has no key to sign with.
func ExampleNew() {
	ctx := context.Background()
	clock := keyringtest.NewClock(keyringtest.Start) // a host leaves Config.Now nil
	ring, err := keyring.New(ctx, keyring.Config{
		Now:  clock.Now,
		Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity", Algorithm: "ES256"}},
	})
	if err != nil {
		panic(err)
	}
	_, err = ring.Signer(ctx, "access-tokens")
	fmt.Println("before the first key:", errors.Is(err, keyring.ErrNoActiveKey))

	alice := keyring.Principal{ID: "alice", Roles: []keyring.Role{keyring.RoleIssuer}}
	bob := keyring.Principal{ID: "bob", Roles: []keyring.Role{keyring.RoleApprover}}
	carol := keyring.Principal{ID: "carol", Roles: []keyring.Role{keyring.RoleDeployer}}
	k, err := ring.Create(keyring.WithPrincipal(ctx, alice), "access-tokens")
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", k.State, k.Algorithm, "owner", k.Owner, "rotate by", k.RotateBy.Format("2006-01-02"))
	if err := ring.Approve(keyring.WithPrincipal(ctx, bob), k.KID); err != nil {
		panic(err)
	}
	if err := ring.Activate(keyring.WithPrincipal(ctx, carol), k.KID); err != nil {
		panic(err)
	}
	s, err := ring.Signer(ctx, "access-tokens")
	if err != nil {
		panic(err)
	}
	fmt.Println("signs with the new key:", s.KID() == k.KID)
	// Output:
	// before the first key: true
	// created: pending ES256 owner team-identity rotate by 2026-04-05
	// signs with the new key: true
}

// Approval is a second person's: the principal that created a key cannot
// approve it, and a key without an approval cannot be activated.
func ExampleKeyring_Approve() {
	ctx := context.Background()
	ring, err := keyring.New(ctx, keyring.Config{
		Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
	})
	if err != nil {
		panic(err)
	}
	both := keyring.Principal{ID: "mallory", Roles: []keyring.Role{keyring.RoleIssuer, keyring.RoleApprover}}
	k, err := ring.Create(keyring.WithPrincipal(ctx, both), "access-tokens")
	if err != nil {
		panic(err)
	}
	err = ring.Approve(keyring.WithPrincipal(ctx, both), k.KID)
	fmt.Println("own approval refused:", errors.Is(err, keyring.ErrSelfApproval))
	err = ring.Activate(keyring.WithPrincipal(ctx, keyringtest.Deployer), k.KID)
	fmt.Println("activation without approval refused:", errors.Is(err, keyring.ErrApprovalRequired))

	if err := ring.Approve(keyring.WithPrincipal(ctx, keyringtest.Approver), k.KID); err != nil {
		panic(err)
	}
	if err := ring.Activate(keyring.WithPrincipal(ctx, keyringtest.Deployer), k.KID); err != nil {
		panic(err)
	}
	k, _ = ring.Key(keyring.WithPrincipal(ctx, keyringtest.Core), k.KID)
	fmt.Println(k.State, "approved by", k.ApprovedBy)
	// Output:
	// own approval refused: true
	// activation without approval refused: true
	// active approved by test-approver
}

// A scheduled rotation: Rotate creates the successor, published at once;
// once it is approved and its pre-publication delay has passed, Tick (run
// by Keyring.Run in production) activates it, and the old key keeps
// verifying through its grace window, after which Tick retires it.
func ExampleKeyring_Rotate() {
	ctx := context.Background()
	clock := keyringtest.NewClock(keyringtest.Start)
	ring, err := keyring.New(ctx, keyring.Config{
		Now:  clock.Now,
		Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
	})
	if err != nil {
		panic(err)
	}
	old, err := keyringtest.ActivateFirst(ctx, ring, "access-tokens")
	if err != nil {
		panic(err)
	}
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	state := func(kid string) keyring.State {
		k, err := ring.Key(as(keyringtest.Core), kid)
		if err != nil {
			panic(err)
		}
		return k.State
	}

	next, err := ring.Rotate(as(keyringtest.Issuer), "access-tokens")
	if err != nil {
		panic(err)
	}
	if err := ring.Approve(as(keyringtest.Approver), next.KID); err != nil {
		panic(err)
	}
	pol, _ := ring.Policy("access-tokens")
	fmt.Println("pre-publication", pol.PrePublication, "grace", pol.Grace)
	fmt.Println("rotation started:", state(old.KID), state(next.KID))

	clock.Advance(pol.PrePublication)
	if err := ring.Tick(ctx); err != nil {
		panic(err)
	}
	fmt.Println("after pre-publication:", state(old.KID), state(next.KID))

	clock.Advance(pol.Grace)
	if err := ring.Tick(ctx); err != nil {
		panic(err)
	}
	fmt.Println("after grace:", state(old.KID), state(next.KID))
	// Output:
	// pre-publication 17m0s grace 1h16m0s
	// rotation started: active pending
	// after pre-publication: retiring active
	// after grace: retired active
}

// A compromised key, in one call by the security officer: the key is
// frozen, a fresh key takes over at once (no pre-publication: break-glass,
// flagged for review), and every token the old key signed is refused.
func ExampleKeyring_EmergencyRotate() {
	ctx := context.Background()
	clock := keyringtest.NewClock(keyringtest.Start)
	ring, err := keyring.New(ctx, keyring.Config{
		Now:  clock.Now,
		Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
	})
	if err != nil {
		panic(err)
	}
	old, err := keyringtest.ActivateFirst(ctx, ring, "access-tokens")
	if err != nil {
		panic(err)
	}
	issuer, err := signer.NewIssuer(ring, signer.IssuerConfig{
		Set: "access-tokens", Issuer: "https://core.example", Audience: []string{"api"},
		DefaultLifetime: 15 * time.Minute, MaxLifetime: time.Hour, Now: clock.Now,
	})
	if err != nil {
		panic(err)
	}
	v, err := verifier.New(ring, verifier.Policy{Issuer: "https://core.example", Audience: []string{"api"}}, verifier.WithNow(clock.Now))
	if err != nil {
		panic(err)
	}
	before, err := issuer.Issue(ctx, tokenkms.Claims{Subject: "alice", ClientID: "web"})
	if err != nil {
		panic(err)
	}

	fresh, err := ring.EmergencyRotate(keyring.WithPrincipal(ctx, keyringtest.SecurityOfficer), old.KID, keyring.Incident{
		ID: "INC-42", Reason: "private key found in a public bucket", Severity: "critical",
	})
	if err != nil {
		panic(err)
	}
	old, _ = ring.Key(keyring.WithPrincipal(ctx, keyringtest.Core), old.KID)
	fmt.Println("old key:", old.State, old.Incident)
	fmt.Println("new key:", fresh.State)

	_, err = v.Verify(ctx, before)
	fmt.Println("token of the old key refused:", errors.Is(err, verifier.ErrKeyCompromised))
	after, err := issuer.Issue(ctx, tokenkms.Claims{Subject: "alice", ClientID: "web"})
	if err != nil {
		panic(err)
	}
	_, err = v.Verify(ctx, after)
	fmt.Println("token of the new key verifies:", err == nil)
	// Output:
	// old key: compromised INC-42
	// new key: active
	// token of the old key refused: true
	// token of the new key verifies: true
}
