package lifecycletest

import (
	"context"
	"crypto/rsa"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// StaticKeys is a signer.ActiveKeys of one Signer: Core's own signing,
// outside any keyring, before a migration.
type StaticKeys struct{ S signer.Signer }

// Signer returns the one Signer, whatever the set.
func (k StaticKeys) Signer(context.Context, string) (signer.Signer, error) { return k.S, nil }

// Migrate checks a migration onto provider (under Backend, in a set of
// core's algorithm): a token that core signed before it is refused while
// the imported key (in.KID is core's kid) awaits a second person's
// approval (verifier.ErrUnknownKID: one person cannot make a key trusted),
// and verifies once it is approved, while it is still Pending, once
// Active, and after a restart on the same file store,
// which reopens the key from its stored reference; a token signed after
// the migration carries the same kid (mustIssue checks it) and verifies. It returns the
// store file's path. Every backend call is bounded by Timeout.
func Migrate(tb testing.TB, provider signer.Provider, core signer.Signer, in keyring.KeyImport) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	clock := keyringtest.NewClock(keyringtest.Start)
	path := filepath.Join(tb.TempDir(), "keys.json")
	open := func() (*ring, *filestore.Store) {
		tb.Helper()
		store, err := filestore.Open(path, filestore.WithClock(clock.Now))
		if err != nil {
			tb.Fatalf("filestore.Open: %v", err)
		}
		tb.Cleanup(func() { store.Close() })
		return newRingOn(tb, ctx, provider, core.Algorithm(), store, clock), store
	}
	r, store := open()
	oldToken, err := newIssuer(tb, StaticKeys{core}, r.pol, clock).Issue(ctx, claims("before"))
	if err != nil {
		tb.Fatalf("Issue before the migration: %v", err)
	}
	k, err := r.kr.Import(r.as(keyringtest.Issuer), Set, in)
	if err != nil {
		tb.Fatalf("Import: %v", err)
	}
	if k.KID != core.KID() || k.State != keyring.Pending || k.CreatedBy != keyringtest.Issuer.ID {
		tb.Fatalf("imported %v by %s, want pending %s by %s", k, k.CreatedBy, core.KID(), keyringtest.Issuer.ID)
	}
	r.wantRejected(oldToken, verifier.ErrUnknownKID)
	if err := r.kr.Approve(r.as(keyringtest.Approver), k.KID); err != nil {
		tb.Fatalf("Approve: %v", err)
	}
	r.mustVerify(oldToken, "before")
	if err := r.kr.Activate(r.as(keyringtest.Deployer), k.KID); err != nil {
		tb.Fatalf("Activate: %v", err)
	}
	r.mustVerify(oldToken, "before")
	if err := store.Close(); err != nil {
		tb.Fatal(err)
	}
	r, _ = open()
	r.mustVerify(oldToken, "before")
	r.mustVerify(r.mustIssue("after", k), "after")
	return path
}

// ROCAPublicKey is a 2048-bit RSA public key with the ROCA fingerprint
// (CVE-2017-15361): its modulus is 65537 modulo each small prime of the
// test. An import must refuse it.
func ROCAPublicKey() *rsa.PublicKey {
	m := big.NewInt(1)
	for _, p := range []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167} {
		m.Mul(m, big.NewInt(p))
	}
	k := new(big.Int).Lsh(big.NewInt(1), 2047)
	k.Div(k, m).Add(k, big.NewInt(1))
	n := new(big.Int).Mul(k, m)
	return &rsa.PublicKey{N: n.Add(n, big.NewInt(65537)), E: 65537}
}
