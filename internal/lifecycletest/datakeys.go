package lifecycletest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
)

// DataKeyRing returns a keyring whose Encryption set "data" and secret
// "db" are sealed by w, with the set's first data key Active, and a
// function that makes a context acting as a principal of one role.
// cacheTTL is Config.DEKCacheTTL (negative: every Decrypt unwraps with w).
func DataKeyRing(tb testing.TB, w signer.KeyWrapper, cacheTTL time.Duration) (*keyring.Keyring, func(id string, role keyring.Role) context.Context) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	tb.Cleanup(cancel)
	as := func(id string, role keyring.Role) context.Context {
		return keyring.WithPrincipal(ctx, keyring.Principal{ID: id, Roles: []keyring.Role{role}})
	}
	ring, err := keyring.New(ctx, keyring.Config{
		Wrappers:    map[string]signer.KeyWrapper{Backend: w},
		Sets:        []keyring.SetPolicy{{Name: "data", Purpose: keyring.Encryption, Backend: Backend, Owner: "team-data", PrePublication: time.Nanosecond}},
		Secrets:     []keyring.SecretPolicy{{Name: "db", Owner: "team-db", Backend: Backend}},
		DEKCacheTTL: cacheTTL,
	})
	if err != nil {
		tb.Fatalf("keyring.New: %v", err)
	}
	activateDataKey(tb, ring, as, func() (keyring.Key, error) { return ring.Create(as("alice", keyring.RoleIssuer), "data") })
	return ring, as
}

func activateDataKey(tb testing.TB, ring *keyring.Keyring, as func(string, keyring.Role) context.Context, create func() (keyring.Key, error)) keyring.Key {
	tb.Helper()
	k, err := create()
	if err != nil {
		tb.Fatalf("create data key: %v", err)
	}
	if err := ring.Approve(as("bob", keyring.RoleApprover), k.KID); err != nil {
		tb.Fatalf("Approve: %v", err)
	}
	if err := ring.Activate(as("carol", keyring.RoleDeployer), k.KID); err != nil {
		tb.Fatalf("Activate: %v", err)
	}
	return k
}

// DataKeys runs the keyring's envelope-encryption and secret flow with
// data keys and secrets sealed by w: round trip, rotation with old
// ciphertexts still readable, rewrap onto the new key, refusal after the
// old key's approved retirement, and a secret rotated and read back with its
// previous version.
func DataKeys(t *testing.T, w signer.KeyWrapper) {
	ring, as := DataKeyRing(t, w, -1)
	ctx := as("core", keyring.RoleCore)
	aad := []byte("row=1")
	c1, err := ring.Encrypt(ctx, "data", []byte("payload one"), aad)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	k2 := activateDataKey(t, ring, as, func() (keyring.Key, error) { return ring.Rotate(as("alice", keyring.RoleIssuer), "data") })
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
	old := string(c1[4 : 4+int(c1[3])])
	if err := ring.ApproveRetire(as("bob", keyring.RoleApprover), old); err != nil {
		t.Fatalf("ApproveRetire: %v", err)
	}
	if err := ring.Retire(as("dave", keyring.RoleSecurityOfficer), old); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	if _, err := ring.Decrypt(ctx, c1, aad); !errors.Is(err, keyring.ErrDataKeyRetired) {
		t.Errorf("Decrypt under the retired key: got %v, want %v", err, keyring.ErrDataKeyRetired)
	}
	if got, err := ring.Decrypt(ctx, r1, aad); err != nil || string(got) != "payload one" {
		t.Errorf("Decrypt(rewrapped): (%q, %v)", got, err)
	}

	for _, v := range []string{"pw-1", "pw-2"} {
		if _, err := ring.RotateSecret(as("alice", keyring.RoleIssuer), "db", []byte(v), ""); err != nil {
			t.Fatalf("RotateSecret: %v", err)
		}
	}
	cur, err := ring.Secret(ctx, "db")
	if err != nil || string(cur.Reveal()) != "pw-2" {
		t.Errorf("Secret: (%v, %v), want pw-2", cur, err)
	}
	prev, err := ring.PreviousSecret(ctx, "db")
	if err != nil || string(prev.Reveal()) != "pw-1" {
		t.Errorf("PreviousSecret: (%v, %v), want pw-1", prev, err)
	}
}

// BenchDecrypt compares a Decrypt whose data key is cached with one that
// unwraps it with w each time (a backend round trip).
func BenchDecrypt(b *testing.B, w signer.KeyWrapper) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"unwrap-each-time", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			ring, as := DataKeyRing(b, w, tc.ttl)
			ctx := as("core", keyring.RoleCore)
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
