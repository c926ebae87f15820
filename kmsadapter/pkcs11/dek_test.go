//go:build cgo

package pkcs11_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// TestKeyringDataKeysAndSecrets runs the keyring's envelope-encryption
// and secret flow with data keys and secrets sealed by an AES key in
// SoftHSM2: round trip, rotation with old ciphertexts readable, rewrap,
// refusal after retirement, a secret rotated and read back.
func TestKeyringDataKeysAndSecrets(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, _, err := p.GenerateWrapper(ctx, "dek-kek")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	as := func(id string, role keyring.Role) context.Context {
		return keyring.WithPrincipal(ctx, keyring.Principal{ID: id, Roles: []keyring.Role{role}})
	}
	ring, err := keyring.New(ctx, keyring.Config{
		Wrappers:    map[string]signer.KeyWrapper{"hsm": w},
		Audit:       audit.NewRecorder(),
		Revocations: verifier.NewMemoryRevocationList(time.Now),
		Sets:        []keyring.SetPolicy{{Name: "data", Purpose: keyring.Encryption, Backend: "hsm", Owner: "team-data", PrePublication: time.Nanosecond}},
		Secrets:     []keyring.SecretPolicy{{Name: "db", Owner: "team-db", Backend: "hsm"}},
		DEKCacheTTL: -1, // every Decrypt unwraps in the HSM
	})
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	activate := func(k keyring.Key) {
		t.Helper()
		if err := ring.Approve(as("bob", keyring.RoleApprover), k.KID); err != nil {
			t.Fatalf("Approve: %v", err)
		}
		if err := ring.Activate(as("carol", keyring.RoleDeployer), k.KID); err != nil {
			t.Fatalf("Activate: %v", err)
		}
	}
	k1, err := ring.Create(as("alice", keyring.RoleIssuer), "data")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	activate(k1)
	aad := []byte("row=1")
	c1, err := ring.Encrypt(ctx, "data", []byte("payload one"), aad)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	k2, err := ring.Rotate(as("alice", keyring.RoleIssuer), "data")
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	activate(k2)
	if got, err := ring.Decrypt(ctx, c1, aad); err != nil || string(got) != "payload one" {
		t.Fatalf("Decrypt of an old ciphertext after rotation: (%q, %v)", got, err)
	}
	r1, err := ring.Rewrap(ctx, c1, aad)
	if err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	if got := string(r1[4 : 4+int(r1[3])]); got != k2.KID {
		t.Errorf("rewrapped under %s, want %s", got, k2.KID)
	}
	if err := ring.Retire(as("dave", keyring.RoleSecurityOfficer), k1.KID); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	if _, err := ring.Decrypt(ctx, c1, aad); !errors.Is(err, keyring.ErrDataKeyRetired) {
		t.Errorf("Decrypt under the retired key: got %v, want %v", err, keyring.ErrDataKeyRetired)
	}
	if got, err := ring.Decrypt(ctx, r1, aad); err != nil || string(got) != "payload one" {
		t.Errorf("Decrypt(rewrapped): (%q, %v)", got, err)
	}

	for _, pw := range []string{"pw-1", "pw-2"} {
		if _, err := ring.RotateSecret(as("alice", keyring.RoleIssuer), "db", []byte(pw), ""); err != nil {
			t.Fatalf("RotateSecret: %v", err)
		}
	}
	reader := as("core", keyring.RoleCore)
	if cur, err := ring.Secret(reader, "db"); err != nil || string(cur.Reveal()) != "pw-2" {
		t.Errorf("Secret: (%v, %v), want pw-2", cur, err)
	}
	if prev, err := ring.PreviousSecret(reader, "db"); err != nil || string(prev.Reveal()) != "pw-1" {
		t.Errorf("PreviousSecret: (%v, %v), want pw-1", prev, err)
	}
}
