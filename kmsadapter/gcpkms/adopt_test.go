package gcpkms_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// existingKey creates a CryptoKey the way Core made its own before the
// migration (any id) and returns the name of its first version.
func existingKey(t *testing.T, c *kms.KeyManagementClient, id string, alg kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm) string {
	t.Helper()
	ck, err := c.CreateCryptoKey(ctxT(t), &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: id, CryptoKey: &kmspb.CryptoKey{
		Purpose: kmspb.CryptoKey_ASYMMETRIC_SIGN, VersionTemplate: &kmspb.CryptoKeyVersionTemplate{Algorithm: alg},
	}})
	if err != nil {
		t.Fatalf("CreateCryptoKey: %v", err)
	}
	return ck.GetName() + "/cryptoKeyVersions/1"
}

type staticKeys struct{ s signer.Signer }

func (k staticKeys) Signer(context.Context, string) (signer.Signer, error) { return k.s, nil }

// coreToken is a token Core signed with the version through the SDK
// before the migration, under kid.
func coreToken(t *testing.T, c *kms.KeyManagementClient, kid, name string, now func() time.Time) string {
	t.Helper()
	pk, err := c.GetPublicKey(ctxT(t), &kmspb.GetPublicKeyRequest{Name: name})
	if err != nil {
		t.Fatalf("GetPublicKey: %v", err)
	}
	block, _ := pem.Decode([]byte(pk.GetPem()))
	if block == nil {
		t.Fatal("public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.NewRemoteSigner(signer.RemoteKey{KID: kid, Algorithm: "ES256", Backend: "core", Ref: name, Public: pub,
		SignDigest: func(ctx context.Context, digest []byte) ([]byte, error) {
			out, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: name, Digest: &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: digest}}})
			if err != nil {
				return nil, err
			}
			return out.GetSignature(), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return issueWith(t, staticKeys{s}, now)
}

func issueWith(t *testing.T, keys signer.ActiveKeys, now func() time.Time) string {
	t.Helper()
	iss, err := signer.NewIssuer(keys, signer.IssuerConfig{Set: "access-tokens", Issuer: "https://core.test",
		Audience: []string{"api"}, DefaultLifetime: 30 * time.Minute, MaxLifetime: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue(ctxT(t), tokenkms.Claims{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

// TestAdoptMigration: a Cloud KMS key version Core signed with is adopted
// under the kid its tokens carry; they verify while it is Pending, Active,
// and after a restart that reopens it from the stored reference.
func TestAdoptMigration(t *testing.T) {
	e := newEnv(t)
	name := existingKey(t, e.client, "core-signing", kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256)
	const kid = "core-gcp-2025"
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	oldToken := coreToken(t, e.client, kid, name, now)
	path := filepath.Join(t.TempDir(), "keys.json")
	open := func() (*keyring.Keyring, *filestore.Store) {
		t.Helper()
		store, err := filestore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := keyring.New(ctxT(t), keyring.Config{Store: store, Providers: map[string]signer.Provider{"gcpkms": e.prov},
			Audit: audit.NewRecorder(), Now: now,
			Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity", Backend: "gcpkms"}}})
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
		if _, err := v.Verify(ctxT(t), tok); err != nil {
			t.Fatalf("%s: token rejected: %v", stage, err)
		}
	}
	as := func(id string, role keyring.Role) context.Context {
		return keyring.WithPrincipal(ctxT(t), keyring.Principal{ID: id, Roles: []keyring.Role{role}})
	}
	r, store := open()
	if _, err := r.Import(as("alice", keyring.RoleIssuer), "access-tokens", keyring.KeyImport{KID: kid, Ref: name}); err != nil {
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
}

// TestAdoptRefused: versions that cannot serve the set are refused, and a
// reference an adoption returned opens for its kid only.
func TestAdoptRefused(t *testing.T) {
	e := newEnv(t)
	good := existingKey(t, e.client, "good", kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256)
	p384 := existingKey(t, e.client, "p384", kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384)
	disabled := existingKey(t, e.client, "disabled", kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256)
	setState(t, e.client, disabled, kmspb.CryptoKeyVersion_DISABLED)
	tests := []struct {
		name, ref string
		want      error
	}{
		{name: "P-384 for ES256", ref: p384, want: signer.ErrUnsupportedAlgorithm},
		{name: "disabled version", ref: disabled, want: signer.ErrKeyDisabled},
		{name: "crypto key, no version", ref: strings.TrimSuffix(good, "/cryptoKeyVersions/1"), want: signer.ErrBadReference},
		{name: "no such version", ref: strings.TrimSuffix(good, "1") + "9", want: signer.ErrKeyNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := e.prov.Adopt(ctxT(t), "kid-1", "ES256", tc.ref); !errors.Is(err, tc.want) {
				t.Fatalf("Adopt: got %v, want %v", err, tc.want)
			}
		})
	}
	_, ref, err := e.prov.Adopt(ctxT(t), "kid-1", "ES256", good)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if _, err := e.prov.Open(ctxT(t), "kid-1", ref); err != nil {
		t.Fatalf("Open of the adopted reference: %v", err)
	}
	if _, err := e.prov.Open(ctxT(t), "kid-2", ref); !errors.Is(err, signer.ErrBadReference) {
		t.Fatalf("Open under another kid: got %v, want ErrBadReference", err)
	}
	if _, err := e.prov.Open(ctxT(t), "kid-1", good); !errors.Is(err, signer.ErrBadReference) {
		t.Fatalf("Open of the bare version name: got %v, want ErrBadReference", err)
	}
}
