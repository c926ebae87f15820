//go:build cgo

package pkcs11_test

import (
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
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

// TestAdoptMigration: a key pair Core signed with on the HSM is adopted
// under the kid its tokens carry, without touching its objects; the
// tokens verify while it is Pending, Active, and after a restart that
// reopens it from the stored reference.
func TestAdoptMigration(t *testing.T) {
	raw := rawToken(t)
	id := []byte("core-legacy-adopt-1")
	const kid = "core-hsm-2025"
	core, err := signer.FromCryptoSigner(kid, "ES256", legacyPair(t, raw, id, elliptic.P256(), true))
	if err != nil {
		t.Fatal(err)
	}
	lifecycletest.Migrate(t, newProvider(t, pkcs11.Options{}), core, keyring.KeyImport{KID: kid, Ref: hex.EncodeToString(id)})
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
