package gcpkmsfake_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenkms/tokenkms/internal/gcpkmsfake"
)

const (
	location = "projects/p/locations/global"
	ring     = location + "/keyRings/r"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// setup starts a server with a key ring, an EC signing key "sig" and an
// encryption key "enc".
func setup(t *testing.T) (*gcpkmsfake.Server, *kms.KeyManagementClient) {
	t.Helper()
	s := gcpkmsfake.Start(t)
	c := s.Client(t)
	ctx := ctxT(t)
	if _, err := c.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: location, KeyRingId: "r"}); err != nil {
		t.Fatal(err)
	}
	for id, ck := range map[string]*kmspb.CryptoKey{
		"sig": {Purpose: kmspb.CryptoKey_ASYMMETRIC_SIGN, VersionTemplate: &kmspb.CryptoKeyVersionTemplate{Algorithm: kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256}},
		"enc": {Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT},
	} {
		if _, err := c.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: id, CryptoKey: ck}); err != nil {
			t.Fatal(err)
		}
	}
	return s, c
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: code = %v (%v), want %v", what, got, err, want)
	}
}

func TestSignAndPublicKey(t *testing.T) {
	_, c := setup(t)
	ctx := ctxT(t)
	name := ring + "/cryptoKeys/sig/cryptoKeyVersions/1"
	pk, err := c.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if pk.GetName() != name || pk.GetAlgorithm() != kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256 {
		t.Fatalf("public key name, algorithm = %q, %v; want %q, EC_SIGN_P256_SHA256", pk.GetName(), pk.GetAlgorithm(), name)
	}
	if got, want := pk.GetPemCrc32C().GetValue(), gcpkmsfake.CRC32C([]byte(pk.GetPem())); got != want {
		t.Fatalf("pem_crc32c = %d, want %d", got, want)
	}
	block, _ := pem.Decode([]byte(pk.GetPem()))
	if block == nil {
		t.Fatal("no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("message"))
	resp, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
		Name:         name,
		Digest:       &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: d[:]}},
		DigestCrc32C: wrapperspb.Int64(gcpkmsfake.CRC32C(d[:])),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetVerifiedDigestCrc32C() || resp.GetName() != name {
		t.Fatalf("verified_digest_crc32c, name = %v, %q; want true, %q", resp.GetVerifiedDigestCrc32C(), resp.GetName(), name)
	}
	if got, want := resp.GetSignatureCrc32C().GetValue(), gcpkmsfake.CRC32C(resp.GetSignature()); got != want {
		t.Fatalf("signature_crc32c = %d, want %d", got, want)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], resp.GetSignature()) {
		t.Fatal("signature does not verify")
	}
}

func TestRequestChecks(t *testing.T) {
	_, c := setup(t)
	sig := ring + "/cryptoKeys/sig/cryptoKeyVersions/1"
	enc := ring + "/cryptoKeys/enc"
	d := sha256.Sum256([]byte("message"))
	digest := &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: d[:]}}
	bad := wrapperspb.Int64(gcpkmsfake.CRC32C(d[:]) ^ 1)
	for _, tc := range []struct {
		name string
		call func(context.Context) error
		want codes.Code
	}{
		{"digest_crc32c mismatch", func(ctx context.Context) error {
			_, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: sig, Digest: digest, DigestCrc32C: bad})
			return err
		}, codes.InvalidArgument},
		{"SHA-384 digest for a P-256 key", func(ctx context.Context) error {
			_, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: sig, Digest: &kmspb.Digest{Digest: &kmspb.Digest_Sha384{Sha384: make([]byte, 48)}}})
			return err
		}, codes.InvalidArgument},
		{"sign with an encryption key", func(ctx context.Context) error {
			_, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: enc + "/cryptoKeyVersions/1", Digest: digest})
			return err
		}, codes.FailedPrecondition},
		{"sign with an unknown version", func(ctx context.Context) error {
			_, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: ring + "/cryptoKeys/sig/cryptoKeyVersions/2", Digest: digest})
			return err
		}, codes.NotFound},
		{"plaintext_crc32c mismatch", func(ctx context.Context) error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: enc, Plaintext: []byte("p"), PlaintextCrc32C: wrapperspb.Int64(1)})
			return err
		}, codes.InvalidArgument},
		{"additional_authenticated_data_crc32c mismatch", func(ctx context.Context) error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: enc, Plaintext: []byte("p"), AdditionalAuthenticatedData: []byte("a"), AdditionalAuthenticatedDataCrc32C: wrapperspb.Int64(1)})
			return err
		}, codes.InvalidArgument},
		{"plaintext too large", func(ctx context.Context) error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: enc, Plaintext: make([]byte, gcpkmsfake.MaxPayload+1)})
			return err
		}, codes.InvalidArgument},
		{"encrypt with a signing key", func(ctx context.Context) error {
			_, err := c.Encrypt(ctx, &kmspb.EncryptRequest{Name: ring + "/cryptoKeys/sig", Plaintext: []byte("p")})
			return err
		}, codes.FailedPrecondition},
		{"ciphertext_crc32c mismatch", func(ctx context.Context) error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{Name: enc, Ciphertext: make([]byte, 40), CiphertextCrc32C: wrapperspb.Int64(1)})
			return err
		}, codes.InvalidArgument},
		{"garbage ciphertext", func(ctx context.Context) error {
			_, err := c.Decrypt(ctx, &kmspb.DecryptRequest{Name: enc, Ciphertext: make([]byte, 40)})
			return err
		}, codes.InvalidArgument},
		{"bad crypto key id", func(ctx context.Context) error {
			_, err := c.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: "a.b", CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
			return err
		}, codes.InvalidArgument},
		{"bad label", func(ctx context.Context) error {
			_, err := c.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: "l", CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT, Labels: map[string]string{"Kid": "x"}}})
			return err
		}, codes.InvalidArgument},
		{"unsupported signing algorithm", func(ctx context.Context) error {
			_, err := c.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: "k1", CryptoKey: &kmspb.CryptoKey{
				Purpose:         kmspb.CryptoKey_ASYMMETRIC_SIGN,
				VersionTemplate: &kmspb.CryptoKeyVersionTemplate{Algorithm: kmspb.CryptoKeyVersion_EC_SIGN_SECP256K1_SHA256},
			}})
			return err
		}, codes.InvalidArgument},
		{"duplicate crypto key", func(ctx context.Context) error {
			_, err := c.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring, CryptoKeyId: "enc", CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
			return err
		}, codes.AlreadyExists},
		{"unknown key ring", func(ctx context.Context) error {
			_, err := c.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: location + "/keyRings/none", CryptoKeyId: "k", CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
			return err
		}, codes.NotFound},
		{"set state DESTROYED by update", func(ctx context.Context) error {
			_, err := c.UpdateCryptoKeyVersion(ctx, &kmspb.UpdateCryptoKeyVersionRequest{
				CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: sig, State: kmspb.CryptoKeyVersion_DESTROYED},
				UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}},
			})
			return err
		}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, tc.call(ctxT(t)), tc.want)
		})
	}
}

func TestStates(t *testing.T) {
	_, c := setup(t)
	ctx := ctxT(t)
	name := ring + "/cryptoKeys/sig/cryptoKeyVersions/1"
	d := sha256.Sum256([]byte("m"))
	sign := func() error {
		_, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: name, Digest: &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: d[:]}}})
		return err
	}
	v, err := c.UpdateCryptoKeyVersion(ctx, &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: name, State: kmspb.CryptoKeyVersion_DISABLED},
		UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.GetState() != kmspb.CryptoKeyVersion_DISABLED {
		t.Fatalf("state = %v, want DISABLED", v.GetState())
	}
	err = sign()
	wantCode(t, "sign when disabled", err, codes.FailedPrecondition)
	if !strings.Contains(status.Convert(err).Message(), "current state is: DISABLED") {
		t.Fatalf("message %q does not name the state", status.Convert(err).Message())
	}
	v, err = c.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if v.GetState() != kmspb.CryptoKeyVersion_DESTROY_SCHEDULED || v.GetDestroyTime() == nil {
		t.Fatalf("state, destroy time = %v, %v; want DESTROY_SCHEDULED and a time", v.GetState(), v.GetDestroyTime())
	}
	err = sign()
	wantCode(t, "sign when destroy scheduled", err, codes.FailedPrecondition)
	if !strings.Contains(status.Convert(err).Message(), "DESTROY_SCHEDULED") {
		t.Fatalf("message %q does not name the state", status.Convert(err).Message())
	}
	_, err = c.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: name})
	wantCode(t, "public key when destroy scheduled", err, codes.FailedPrecondition)
}

func TestEncryptDecrypt(t *testing.T) {
	_, c := setup(t)
	ctx := ctxT(t)
	enc := ring + "/cryptoKeys/enc"
	pt, ad := []byte("data key"), []byte("aad")
	er, err := c.Encrypt(ctx, &kmspb.EncryptRequest{
		Name: enc, Plaintext: pt, AdditionalAuthenticatedData: ad,
		PlaintextCrc32C:                   wrapperspb.Int64(gcpkmsfake.CRC32C(pt)),
		AdditionalAuthenticatedDataCrc32C: wrapperspb.Int64(gcpkmsfake.CRC32C(ad)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if er.GetName() != enc+"/cryptoKeyVersions/1" || !er.GetVerifiedPlaintextCrc32C() || !er.GetVerifiedAdditionalAuthenticatedDataCrc32C() {
		t.Fatalf("encrypt answer name=%q verified=%v,%v; want version 1, true, true", er.GetName(), er.GetVerifiedPlaintextCrc32C(), er.GetVerifiedAdditionalAuthenticatedDataCrc32C())
	}
	if got, want := er.GetCiphertextCrc32C().GetValue(), gcpkmsfake.CRC32C(er.GetCiphertext()); got != want {
		t.Fatalf("ciphertext_crc32c = %d, want %d", got, want)
	}
	dr, err := c.Decrypt(ctx, &kmspb.DecryptRequest{Name: enc, Ciphertext: er.GetCiphertext(), AdditionalAuthenticatedData: ad})
	if err != nil {
		t.Fatal(err)
	}
	if string(dr.GetPlaintext()) != string(pt) || !dr.GetUsedPrimary() {
		t.Fatalf("decrypt = %q (used primary %v), want %q (true)", dr.GetPlaintext(), dr.GetUsedPrimary(), pt)
	}
	if got, want := dr.GetPlaintextCrc32C().GetValue(), gcpkmsfake.CRC32C(pt); got != want {
		t.Fatalf("plaintext_crc32c = %d, want %d", got, want)
	}
	_, err = c.Decrypt(ctx, &kmspb.DecryptRequest{Name: enc, Ciphertext: er.GetCiphertext(), AdditionalAuthenticatedData: []byte("other")})
	wantCode(t, "decrypt with other aad", err, codes.InvalidArgument)
}

func TestFaultCodeAndCalls(t *testing.T) {
	s, c := setup(t)
	s.SetFaults(gcpkmsfake.Faults{Code: codes.PermissionDenied})
	_, err := c.GetCryptoKey(ctxT(t), &kmspb.GetCryptoKeyRequest{Name: ring + "/cryptoKeys/sig"})
	wantCode(t, "injected code", err, codes.PermissionDenied)
	s.SetFaults(gcpkmsfake.Faults{})
	if _, err := c.GetCryptoKey(ctxT(t), &kmspb.GetCryptoKeyRequest{Name: ring + "/cryptoKeys/sig"}); err != nil {
		t.Fatalf("after clearing faults: %v", err)
	}
	if got := s.Calls("GetCryptoKey"); got != 2 {
		t.Fatalf("Calls(GetCryptoKey) = %d, want 2", got)
	}
}
