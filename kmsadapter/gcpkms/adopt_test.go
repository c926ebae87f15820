package gcpkms_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
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

// coreSigner is Core's own signing with the version through the SDK,
// under the kid its tokens carry, before the migration.
func coreSigner(t *testing.T, c *kms.KeyManagementClient, kid, name string) signer.Signer {
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
	return s
}

// TestAdoptMigration: a Cloud KMS key version Core signed with is adopted
// under the kid its tokens carry; they verify while it is Pending, Active,
// and after a restart that reopens it from the stored reference.
func TestAdoptMigration(t *testing.T) {
	e := newEnv(t)
	name := existingKey(t, e.client, "core-signing", kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256)
	const kid = "core-gcp-2025"
	lifecycletest.Migrate(t, e.prov, coreSigner(t, e.client, kid, name), keyring.KeyImport{KID: kid, Ref: name})
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
