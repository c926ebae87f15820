package keyring_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
)

// TestImportMigration: a token Core signed before the migration verifies
// after it through the same kid (lifecycletest.Migrate: Pending, Active,
// after a restart), and the store never holds the private key unwrapped.
func TestImportMigration(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := signer.NewAESWrapper(kek)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := signer.NewLocalProvider(w)
	if err != nil {
		t.Fatal(err)
	}
	coreKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	core, err := signer.FromCryptoSigner("core-2025-06", "ES256", coreKey)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(coreKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, kid, err := signer.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || kid != "" {
		t.Fatalf("ParsePrivateKey: kid %q, %v", kid, err)
	}
	path := lifecycletest.Migrate(t, lp, core, keyring.KeyImport{KID: core.KID(), Private: priv})

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := coreKey.D.FillBytes(make([]byte, 32))
	for name, secret := range map[string][]byte{
		"D raw": d, "D base64url": []byte(base64.RawURLEncoding.EncodeToString(d)),
		"PKCS#8 base64": []byte(base64.StdEncoding.EncodeToString(der)), "PKCS#8 base64url": []byte(base64.RawURLEncoding.EncodeToString(der)),
	} {
		if bytes.Contains(raw, secret) {
			t.Errorf("store file holds the private key (%s)", name)
		}
	}
}

// TestImportApprovalAndAudit: an import is audited as a creation by the
// importer, who cannot approve it, and it cannot be activated unapproved.
func TestImportApprovalAndAudit(t *testing.T) {
	e := newEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	both := keyring.Principal{ID: alice.ID, Roles: []keyring.Role{keyring.RoleIssuer, keyring.RoleApprover}}
	k, err := e.ring.Import(ctx(t, both), set, keyring.KeyImport{KID: "core-1", Private: key})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if err := e.ring.Approve(ctx(t, both), k.KID); !errors.Is(err, keyring.ErrSelfApproval) {
		t.Fatalf("importer approves: got %v, want ErrSelfApproval", err)
	}
	if err := e.ring.Activate(ctx(t, carol), k.KID); !errors.Is(err, keyring.ErrApprovalRequired) {
		t.Fatalf("activate unapproved import: got %v, want ErrApprovalRequired", err)
	}
	var created []audit.Event
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.KeyCreated && ev.KID == k.KID {
			created = append(created, ev)
		}
	}
	if len(created) != 1 || created[0].Actor != alice.ID || created[0].Details["origin"] != "private-key" || created[0].Outcome != audit.Success {
		t.Fatalf("audit of the import = %+v, want one key.created by alice with origin private-key", created)
	}
}

// rocaSigner has a public key with the ROCA fingerprint; it never signs.
type rocaSigner struct{}

func (rocaSigner) Public() crypto.PublicKey { return lifecycletest.ROCAPublicKey() }
func (rocaSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("not a key")
}

// TestImportRefused: every refusal has its error, and nothing is stored.
func TestImportRefused(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsa1024 := weakRSA(t)
	tests := []struct {
		name string
		as   keyring.Principal
		set  string
		in   keyring.KeyImport
		want error
	}{
		{name: "wrong curve", as: alice, set: set, in: keyring.KeyImport{Private: p384}, want: signer.ErrWeakKey},
		{name: "wrong key type", as: alice, set: set, in: keyring.KeyImport{Private: ed}, want: signer.ErrWeakKey},
		{name: "RSA under 2048 bits", as: alice, set: "rsa", in: keyring.KeyImport{Private: rsa1024}, want: signer.ErrWeakKey},
		{name: "ROCA modulus", as: alice, set: "rsa", in: keyring.KeyImport{Private: rocaSigner{}}, want: signer.ErrWeakKey},
		{name: "neither key nor ref", as: alice, set: set, in: keyring.KeyImport{}, want: keyring.ErrImport},
		{name: "both key and ref", as: alice, set: set, in: keyring.KeyImport{Private: p256, Ref: "x"}, want: keyring.ErrImport},
		{name: "local backend adopts no ref", as: alice, set: set, in: keyring.KeyImport{Ref: "arn:aws:kms:us-east-1:1:key/x"}, want: keyring.ErrImport},
		{name: "kid with a space", as: alice, set: set, in: keyring.KeyImport{KID: "a b", Private: p256}, want: keyring.ErrImport},
		{name: "created in the future", as: alice, set: set, in: keyring.KeyImport{Private: p256, CreatedAt: t0.Add(time.Hour)}, want: keyring.ErrImport},
		{name: "no principal", set: set, in: keyring.KeyImport{Private: p256}, want: keyring.ErrNoPrincipal},
		{name: "approver may not import", as: bob, set: set, in: keyring.KeyImport{Private: p256}, want: keyring.ErrForbidden},
		{name: "unknown set", as: alice, set: "nope", in: keyring.KeyImport{Private: p256}, want: keyring.ErrUnknownSet},
		{name: "data-key set", as: alice, set: "data", in: keyring.KeyImport{Private: p256}, want: keyring.ErrWrongPurpose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *keyring.Config) {
				c.Sets = append(c.Sets,
					keyring.SetPolicy{Name: "rsa", Owner: "team-identity", Algorithm: "RS256"},
					keyring.SetPolicy{Name: "data", Owner: "team-identity", Purpose: keyring.Encryption})
			})
			_, err := e.ring.Import(ctx(t, tc.as), tc.set, tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Import: got %v, want %v", err, tc.want)
			}
			keys, err := e.ring.Keys(ctx(t, core), keyring.Filter{})
			if err != nil {
				t.Fatalf("Keys: %v", err)
			}
			if len(keys) != 0 {
				t.Fatalf("refused import left %d keys", len(keys))
			}
		})
	}
}

// TestImportKIDTaken: a kid already in the store (any state) is refused,
// and an import without a kid gets a fresh one.
func TestImportKIDTaken(t *testing.T) {
	e := newEnv(t)
	first := e.bootstrap(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := e.ring.Import(ctx(t, alice), set, keyring.KeyImport{KID: first.KID, Private: key}); !errors.Is(err, keyring.ErrExists) {
		t.Fatalf("Import of a taken kid: got %v, want ErrExists", err)
	}
	k, err := e.ring.Import(ctx(t, alice), set, keyring.KeyImport{Private: key})
	if err != nil {
		t.Fatalf("Import without kid: %v", err)
	}
	if k.KID == "" || k.KID == first.KID {
		t.Fatalf("fresh kid = %q", k.KID)
	}
}

// TestImportCreatedAt: the target rotation date counts from the key's
// first creation when the importer knows it.
func TestImportCreatedAt(t *testing.T) {
	e := newEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	made := t0.Add(-60 * keyring.Day)
	k, err := e.ring.Import(ctx(t, alice), set, keyring.KeyImport{Private: key, CreatedAt: made})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if want := made.Add(e.pol.RotationPeriod); !k.RotateBy.Equal(want) {
		t.Fatalf("RotateBy = %v, want %v", k.RotateBy, want)
	}
}

func weakRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	// Go refuses to generate RSA keys under 1024 bits only; 1024 is weak
	// for tokenkms.
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return k
}
