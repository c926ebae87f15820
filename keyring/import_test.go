package keyring_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// preMigration stands for Core's signing before the migration: its own
// key under the kid its tokens carry, outside any keyring.
type preMigration struct{ s signer.Signer }

func (p preMigration) Signer(context.Context, string) (signer.Signer, error) { return p.s, nil }

func issuerOver(t *testing.T, keys signer.ActiveKeys, now func() time.Time) *signer.Issuer {
	t.Helper()
	iss, err := signer.NewIssuer(keys, signer.IssuerConfig{
		Set: set, Issuer: "https://core.test", Audience: []string{"api"},
		DefaultLifetime: 30 * time.Minute, MaxLifetime: time.Hour, Now: now,
	})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func pemOf(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("MarshalPKCS8PrivateKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestImportMigration: a token Core signed before the migration verifies
// after it, through the same kid: while the imported key is Pending, once
// it is approved and Active, and after a restart on the same store and
// key-encryption key; new tokens carry that kid; the store never holds the
// private key unwrapped.
func TestImportMigration(t *testing.T) {
	dir := t.TempDir()
	kek := make([]byte, 32)
	rand.Read(kek)
	clock := func() time.Time { return t0 }
	open := func() (*keyring.Keyring, *filestore.Store, *audit.Recorder) {
		t.Helper()
		store, err := filestore.Open(filepath.Join(dir, "keys.json"))
		if err != nil {
			t.Fatalf("filestore.Open: %v", err)
		}
		w, err := signer.NewAESWrapper(kek)
		if err != nil {
			t.Fatalf("NewAESWrapper: %v", err)
		}
		lp, err := signer.NewLocalProvider(w)
		if err != nil {
			t.Fatalf("NewLocalProvider: %v", err)
		}
		rec := audit.NewRecorder()
		ring, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{
			Store: store, Providers: map[string]signer.Provider{"local": lp}, Audit: rec, Now: clock,
			Sets: []keyring.SetPolicy{{Name: set, Owner: "team-identity"}},
		})
		if err != nil {
			t.Fatalf("keyring.New: %v", err)
		}
		return ring, store, rec
	}

	coreKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const coreKID = "core-2025-06"
	old, err := signer.FromCryptoSigner(coreKID, "ES256", coreKey)
	if err != nil {
		t.Fatal(err)
	}
	oldToken, err := issuerOver(t, preMigration{old}, clock).Issue(context.Background(), tokenkms.Claims{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatalf("pre-migration Issue: %v", err)
	}

	ring, store, rec := open()
	priv, kid, err := signer.ParsePrivateKey(pemOf(t, coreKey))
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if kid != "" {
		t.Fatalf("PEM kid = %q, want none", kid)
	}
	k, err := ring.Import(ctx(t, alice), set, keyring.KeyImport{KID: coreKID, Private: priv})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if k.KID != coreKID || k.State != keyring.Pending || k.CreatedBy != alice.ID {
		t.Fatalf("imported key = %v by %s, want pending %s by %s", k, k.CreatedBy, coreKID, alice.ID)
	}
	verify := func(stage string, r *keyring.Keyring, tok string) {
		t.Helper()
		v, err := verifier.New(r, verifier.Policy{Issuer: "https://core.test", Audience: []string{"api"}}, verifier.WithNow(clock))
		if err != nil {
			t.Fatalf("verifier.New: %v", err)
		}
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("%s: token rejected: %v", stage, err)
		}
	}
	verify("pending", ring, oldToken)

	both := keyring.Principal{ID: alice.ID, Roles: []keyring.Role{keyring.RoleIssuer, keyring.RoleApprover}}
	if err := ring.Approve(ctx(t, both), coreKID); !errors.Is(err, keyring.ErrSelfApproval) {
		t.Fatalf("importer approves: got %v, want ErrSelfApproval", err)
	}
	if err := ring.Activate(ctx(t, carol), coreKID); !errors.Is(err, keyring.ErrApprovalRequired) {
		t.Fatalf("activate unapproved import: got %v, want ErrApprovalRequired", err)
	}
	if err := ring.Approve(ctx(t, bob), coreKID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := ring.Activate(ctx(t, carol), coreKID); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	verify("active", ring, oldToken)
	var created *audit.Event
	for _, ev := range rec.Events() {
		if ev.Type == audit.KeyCreated && ev.KID == coreKID {
			created = &ev
		}
	}
	if created == nil || created.Actor != alice.ID || created.Details["origin"] != "private-key" {
		t.Fatalf("audit of the import = %+v, want key.created by alice with origin private-key", created)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	ring, store, _ = open()
	defer store.Close()
	verify("after restart", ring, oldToken)
	newToken, err := issuerOver(t, ring, clock).Issue(context.Background(), tokenkms.Claims{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatalf("Issue after migration: %v", err)
	}
	verify("new token", ring, newToken)
	if got := kidOfToken(t, newToken); got != coreKID {
		t.Fatalf("new token kid = %q, want %q", got, coreKID)
	}

	raw, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(coreKey)
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

func kidOfToken(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.KID
}

// rocaSigner has a public key with the ROCA fingerprint; it never signs.
type rocaSigner struct{}

func (rocaSigner) Public() crypto.PublicKey { return rocaPublic() }
func (rocaSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("not a key")
}

// rocaPublic builds a 2048-bit modulus that is 65537 modulo each small
// prime of the ROCA test: the fingerprint of CVE-2017-15361.
func rocaPublic() *rsa.PublicKey {
	m := big.NewInt(1)
	for _, p := range []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167} {
		m.Mul(m, big.NewInt(p))
	}
	k := new(big.Int).Lsh(big.NewInt(1), 2047)
	k.Div(k, m).Add(k, big.NewInt(1))
	n := new(big.Int).Mul(k, m)
	n.Add(n, big.NewInt(65537))
	return &rsa.PublicKey{N: n, E: 65537}
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
