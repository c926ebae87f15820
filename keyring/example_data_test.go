package keyring_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
)

// Envelope encryption under an Encryption set: Encrypt seals a record
// under the set's Active data key and binds it to its context (the aad);
// Decrypt needs the same aad back. The data keys themselves are kept
// sealed by the set's KeyWrapper (Config.Wrappers: a KMS key or an HSM in
// production).
func ExampleKeyring_Encrypt() {
	ctx := context.Background()
	ring, err := keyring.New(ctx, keyring.Config{
		Sets: []keyring.SetPolicy{{Name: "customer-data", Purpose: keyring.Encryption, Owner: "team-data"}},
	})
	if err != nil {
		panic(err)
	}
	if _, err := keyringtest.ActivateFirst(ctx, ring, "customer-data"); err != nil {
		panic(err)
	}
	aad := []byte("customer/42/iban")
	ct, err := ring.Encrypt(ctx, "customer-data", []byte("FR76 3000 6000 0112 3456 7890 189"), aad)
	if err != nil {
		panic(err)
	}
	pt, err := ring.Decrypt(ctx, ct, aad)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", pt)
	_, err = ring.Decrypt(ctx, ct, []byte("customer/43/iban"))
	fmt.Println("other aad refused:", errors.Is(err, keyring.ErrDecrypt))
	// Output:
	// FR76 3000 6000 0112 3456 7890 189
	// other aad refused: true
}

// After a data key rotates, Rewrap moves each ciphertext onto the new
// Active key before the old one's grace ends; then the old key can be
// retired and the rewrapped data still opens.
func ExampleKeyring_Rewrap() {
	ctx := context.Background()
	clock := keyringtest.NewClock(keyringtest.Start)
	ring, err := keyring.New(ctx, keyring.Config{
		Now:  clock.Now,
		Sets: []keyring.SetPolicy{{Name: "customer-data", Purpose: keyring.Encryption, Owner: "team-data"}},
	})
	if err != nil {
		panic(err)
	}
	old, err := keyringtest.ActivateFirst(ctx, ring, "customer-data")
	if err != nil {
		panic(err)
	}
	aad := []byte("customer/42/iban")
	ct, err := ring.Encrypt(ctx, "customer-data", []byte("FR76 3000 6000 0112 3456 7890 189"), aad)
	if err != nil {
		panic(err)
	}

	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	next, err := ring.Rotate(as(keyringtest.Issuer), "customer-data")
	if err != nil {
		panic(err)
	}
	if err := ring.Approve(as(keyringtest.Approver), next.KID); err != nil {
		panic(err)
	}
	pol, _ := ring.Policy("customer-data")
	clock.Advance(pol.PrePublication)
	if err := ring.Tick(ctx); err != nil {
		panic(err)
	}

	rewrapped, err := ring.Rewrap(ctx, ct, aad)
	if err != nil {
		panic(err)
	}
	// Retirement after the rewrap: an approver approves, a second person retires.
	if err := ring.ApproveRetire(as(keyringtest.Approver), old.KID); err != nil {
		panic(err)
	}
	if err := ring.Retire(as(keyringtest.SecurityOfficer), old.KID); err != nil {
		panic(err)
	}
	_, err = ring.Decrypt(ctx, ct, aad)
	fmt.Println("old ciphertext after retirement:", errors.Is(err, keyring.ErrDataKeyRetired))
	pt, err := ring.Decrypt(ctx, rewrapped, aad)
	if err != nil {
		panic(err)
	}
	fmt.Printf("rewrapped: %s\n", pt)
	// Output:
	// old ciphertext after retirement: true
	// rewrapped: FR76 3000 6000 0112 3456 7890 189
}

// A runtime secret (a database password) with versions: a routine
// rotation keeps the previous version readable for PreviousWindow, so
// that clients can switch over; a leak revokes it at once. The value
// prints redacted everywhere but through Reveal.
func ExampleKeyring_RotateSecret() {
	ctx := context.Background()
	ring, err := keyring.New(ctx, keyring.Config{
		Sets:    []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
		Secrets: []keyring.SecretPolicy{{Name: "db-password", Owner: "team-db"}},
	})
	if err != nil {
		panic(err)
	}
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	if _, err := ring.RotateSecret(as(keyringtest.Issuer), "db-password", []byte("correct horse"), "initial"); err != nil {
		panic(err)
	}
	v2, err := ring.RotateSecret(as(keyringtest.Issuer), "db-password", []byte("battery staple"), "scheduled")
	if err != nil {
		panic(err)
	}
	fmt.Println(v2)

	cur, err := ring.Secret(as(keyringtest.Core), "db-password")
	if err != nil {
		panic(err)
	}
	prev, err := ring.PreviousSecret(as(keyringtest.Core), "db-password")
	if err != nil {
		panic(err)
	}
	fmt.Printf("current v%d %s, previous v%d %s\n", cur.Version(), cur.Reveal(), prev.Version(), prev.Reveal())

	if _, err := ring.RotateSecret(as(keyringtest.SecurityOfficer), "db-password", []byte("tr0ub4dor"), keyring.ReasonLeak); err != nil {
		panic(err)
	}
	_, err = ring.PreviousSecret(as(keyringtest.Core), "db-password")
	fmt.Println("after a leak, previous revoked:", errors.Is(err, keyring.ErrSecretRevoked))
	// Output:
	// secret(name=db-password version=2 value=REDACTED)
	// current v2 battery staple, previous v1 correct horse
	// after a leak, previous revoked: true
}
