package awskms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// dekRing returns a keyring whose Encryption set "data" and secret "db"
// are sealed by a KMS key of local-kms, with its first data key Active.
func dekRing(t testing.TB, cacheTTL time.Duration) (*keyring.Keyring, func(string, keyring.Role) context.Context) {
	t.Helper()
	c := localKMS(t)
	ctx := testCtx(t)
	w, err := awskms.NewKeyWrapper(ctx, c, createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt))
	if err != nil {
		t.Fatalf("NewKeyWrapper: %v", err)
	}
	as := func(id string, role keyring.Role) context.Context {
		return keyring.WithPrincipal(ctx, keyring.Principal{ID: id, Roles: []keyring.Role{role}})
	}
	ring, err := keyring.New(ctx, keyring.Config{
		Wrappers:    map[string]signer.KeyWrapper{"aws": w},
		Audit:       audit.NewRecorder(),
		Revocations: verifier.NewMemoryRevocationList(time.Now),
		Sets:        []keyring.SetPolicy{{Name: "data", Purpose: keyring.Encryption, Backend: "aws", Owner: "team-data", PrePublication: time.Nanosecond}},
		Secrets:     []keyring.SecretPolicy{{Name: "db", Owner: "team-db", Backend: "aws"}},
		DEKCacheTTL: cacheTTL,
	})
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	k, err := ring.Create(as("alice", keyring.RoleIssuer), "data")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := ring.Approve(as("bob", keyring.RoleApprover), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := ring.Activate(as("carol", keyring.RoleDeployer), k.KID); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	return ring, as
}

// TestKeyringDataKeysAndSecrets runs the envelope-encryption and secret
// flow of the keyring with data keys and secrets sealed by AWS KMS
// (local-kms): round trip, rotation with old ciphertexts readable, rewrap,
// refusal after retirement, a secret rotated and read back.
func TestKeyringDataKeysAndSecrets(t *testing.T) {
	ring, as := dekRing(t, 0)
	ctx := testCtx(t)
	aad := []byte("row=1")
	c1, err := ring.Encrypt(ctx, "data", []byte("payload one"), aad)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	k2, err := ring.Rotate(as("alice", keyring.RoleIssuer), "data")
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if err := ring.Approve(as("bob", keyring.RoleApprover), k2.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := ring.Activate(as("carol", keyring.RoleDeployer), k2.KID); err != nil {
		t.Fatalf("Activate: %v", err)
	}
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
	old := c1[4 : 4+int(c1[3])]
	if err := ring.Retire(as("dave", keyring.RoleSecurityOfficer), string(old)); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	if _, err := ring.Decrypt(ctx, c1, aad); !errors.Is(err, keyring.ErrDataKeyRetired) {
		t.Errorf("Decrypt under the retired key: got %v, want %v", err, keyring.ErrDataKeyRetired)
	}
	if got, err := ring.Decrypt(ctx, r1, aad); err != nil || string(got) != "payload one" {
		t.Errorf("Decrypt(rewrapped): (%q, %v)", got, err)
	}

	if _, err := ring.RotateSecret(as("alice", keyring.RoleIssuer), "db", []byte("pw-1"), ""); err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	if _, err := ring.RotateSecret(as("alice", keyring.RoleIssuer), "db", []byte("pw-2"), ""); err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	reader := as("core", keyring.RoleCore)
	cur, err := ring.Secret(reader, "db")
	if err != nil || string(cur.Reveal()) != "pw-2" {
		t.Errorf("Secret: (%v, %v), want pw-2", cur, err)
	}
	prev, err := ring.PreviousSecret(reader, "db")
	if err != nil || string(prev.Reveal()) != "pw-1" {
		t.Errorf("PreviousSecret: (%v, %v), want pw-1", prev, err)
	}
}

// BenchmarkKeyringDecrypt compares a Decrypt whose data key is cached
// with one that unwraps it through a KMS Decrypt round trip to local-kms.
func BenchmarkKeyringDecrypt(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"kms-round-trip", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			ring, _ := dekRing(b, tc.ttl)
			ctx := testCtx(b)
			ct, err := ring.Encrypt(ctx, "data", make([]byte, 256), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ring.Decrypt(ctx, ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
