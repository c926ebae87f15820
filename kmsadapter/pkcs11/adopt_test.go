//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// legacyPair makes a key pair on the token the way Core made its own
// before the migration: its own label and CKA_ID.
func legacyPair(t *testing.T, c *crypto11.Context, id []byte, curve elliptic.Curve, sensitive bool) crypto11.Signer {
	t.Helper()
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte("core-legacy"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte("core-legacy"))
	if err != nil {
		t.Fatal(err)
	}
	priv.AddIfNotPresent([]*p11.Attribute{
		p11.NewAttribute(p11.CKA_SENSITIVE, sensitive), p11.NewAttribute(p11.CKA_EXTRACTABLE, !sensitive),
	})
	k, err := c.GenerateECDSAKeyPairWithAttributes(pub, priv, curve)
	if err != nil {
		t.Fatalf("GenerateECDSAKeyPairWithAttributes: %v", err)
	}
	return k
}

type staticKeys struct{ s signer.Signer }

func (k staticKeys) Signer(context.Context, string) (signer.Signer, error) { return k.s, nil }

func issueWith(t *testing.T, keys signer.ActiveKeys, now func() time.Time) string {
	t.Helper()
	iss, err := signer.NewIssuer(keys, signer.IssuerConfig{Set: "access-tokens", Issuer: "https://core.test",
		Audience: []string{"api"}, DefaultLifetime: 30 * time.Minute, MaxLifetime: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue(testCtx(t), tokenkms.Claims{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

// TestAdoptMigration: a key pair Core signed with on the HSM is adopted
// under the kid its tokens carry, without touching its objects; the
// tokens verify while it is Pending, Active, and after a restart that
// reopens it from the stored reference.
func TestAdoptMigration(t *testing.T) {
	raw := rawToken(t)
	id := []byte("core-legacy-adopt-1")
	legacy := legacyPair(t, raw, id, elliptic.P256(), true)
	const kid = "core-hsm-2025"
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	core, err := signer.FromCryptoSigner(kid, "ES256", legacy)
	if err != nil {
		t.Fatal(err)
	}
	oldToken := issueWith(t, staticKeys{core}, now)

	prov := newProvider(t, pkcs11.Options{})
	path := filepath.Join(t.TempDir(), "keys.json")
	open := func() (*keyring.Keyring, *filestore.Store) {
		t.Helper()
		store, err := filestore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := keyring.New(testCtx(t), keyring.Config{Store: store, Providers: map[string]signer.Provider{"pkcs11": prov},
			Audit: audit.NewRecorder(), Now: now,
			Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity", Backend: "pkcs11"}}})
		if err != nil {
			t.Fatalf("keyring.New: %v", err)
		}
		return r, store
	}
	verify := func(stage string, r *keyring.Keyring, tok string) {
		t.Helper()
		v, err := verifier.New(r, verifier.Policy{Issuer: "https://core.test", Audience: []string{"api"}}, verifier.WithNow(now))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(testCtx(t), tok); err != nil {
			t.Fatalf("%s: token rejected: %v", stage, err)
		}
	}
	as := func(name string, role keyring.Role) context.Context {
		return keyring.WithPrincipal(testCtx(t), keyring.Principal{ID: name, Roles: []keyring.Role{role}})
	}
	r, store := open()
	if _, err := r.Import(as("alice", keyring.RoleIssuer), "access-tokens", keyring.KeyImport{KID: kid, Ref: hex.EncodeToString(id)}); err != nil {
		t.Fatalf("Import: %v", err)
	}
	verify("pending", r, oldToken)
	if err := r.Approve(as("bob", keyring.RoleApprover), kid); err != nil {
		t.Fatal(err)
	}
	if err := r.Activate(as("carol", keyring.RoleDeployer), kid); err != nil {
		t.Fatal(err)
	}
	store.Close()
	r, store = open()
	defer store.Close()
	verify("after restart", r, oldToken)
	verify("new token", r, issueWith(t, r, now))
	pairs, err := raw.FindKeyPairs(nil, []byte("core-legacy"))
	if err != nil || len(pairs) == 0 {
		t.Fatalf("the legacy pair lost its label: %d pairs (%v)", len(pairs), err)
	}
}

// TestAdoptRefused: pairs that cannot serve the set, or whose private half
// could leave the token, are refused; an adopted reference opens for its
// kid only.
func TestAdoptRefused(t *testing.T) {
	raw := rawToken(t)
	p := newProvider(t, pkcs11.Options{})
	good, extractable, p384 := []byte("adopt-good"), []byte("adopt-extractable"), []byte("adopt-p384")
	legacyPair(t, raw, good, elliptic.P256(), true)
	legacyPair(t, raw, extractable, elliptic.P256(), false)
	legacyPair(t, raw, p384, elliptic.P384(), true)
	tests := []struct {
		name, ref string
		want      error
	}{
		{name: "extractable", ref: hex.EncodeToString(extractable), want: pkcs11.ErrKeyPolicy},
		{name: "extractable is unsuitable", ref: hex.EncodeToString(extractable), want: signer.ErrWeakKey},
		{name: "P-384 for ES256", ref: hex.EncodeToString(p384), want: signer.ErrWeakKey},
		{name: "unknown id", ref: "00ff00ff", want: signer.ErrKeyNotFound},
		{name: "not hex", ref: "pkcs11:v1:ES256:00:x", want: signer.ErrBadReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := p.Adopt(testCtx(t), "kid-1", "ES256", tc.ref); !errors.Is(err, tc.want) {
				t.Fatalf("Adopt: got %v, want %v", err, tc.want)
			}
		})
	}
	_, ref, err := p.Adopt(testCtx(t), "kid-1", "ES256", hex.EncodeToString(good))
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if _, err := p.Open(testCtx(t), "kid-1", ref); err != nil {
		t.Fatalf("Open of the adopted reference: %v", err)
	}
	if _, err := p.Open(testCtx(t), "kid-2", ref); !errors.Is(err, signer.ErrBadReference) {
		t.Fatalf("Open under another kid: got %v, want ErrBadReference", err)
	}
	if _, err := p.OpenWrapper(testCtx(t), ref); !errors.Is(err, signer.ErrBadReference) {
		t.Fatalf("OpenWrapper of an adopted key: got %v, want ErrBadReference", err)
	}
}
