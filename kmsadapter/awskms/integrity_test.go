package awskms_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
)

// TestCorruptedSignResponse corrupts the real backend's Sign responses and
// checks that the adapter refuses each one.
func TestCorruptedSignResponse(t *testing.T) {
	c := localKMS(t)
	n256 := elliptic.P256().Params().N
	for _, tc := range []struct {
		name string
		alg  string
		opts *awskms.Options
		edit func(*kms.SignOutput)
	}{
		{name: "other key", alg: "ES256", edit: func(o *kms.SignOutput) { o.KeyId = aws.String(fakeARN) }},
		{name: "no key", alg: "ES256", edit: func(o *kms.SignOutput) { o.KeyId = nil }},
		{name: "other algorithm", alg: "ES256", edit: func(o *kms.SignOutput) { o.SigningAlgorithm = types.SigningAlgorithmSpecEcdsaSha384 }},
		{name: "empty signature", alg: "ES256", edit: func(o *kms.SignOutput) { o.Signature = nil }},
		{name: "DER cut short", alg: "ES256", edit: func(o *kms.SignOutput) { o.Signature = o.Signature[:len(o.Signature)-1] }},
		{name: "DER trailing byte", alg: "ES256", edit: func(o *kms.SignOutput) { o.Signature = append(o.Signature, 0) }},
		{name: "raw r||s instead of DER", alg: "ES256", edit: func(o *kms.SignOutput) { o.Signature = make([]byte, 64) }},
		{name: "r = n", alg: "ES256", edit: func(o *kms.SignOutput) { o.Signature = lifecycletest.DERSig(n256, big.NewInt(1)) }},
		{name: "s = n", alg: "ES256", edit: func(o *kms.SignOutput) { o.Signature = lifecycletest.DERSig(big.NewInt(1), n256) }},
		{name: "r too large for P-256", alg: "ES256", edit: func(o *kms.SignOutput) {
			o.Signature = lifecycletest.DERSig(new(big.Int).Lsh(big.NewInt(1), 300), big.NewInt(1))
		}},
		{name: "zero s", alg: "ES256", edit: func(o *kms.SignOutput) { o.Signature = lifecycletest.DERSig(big.NewInt(1), big.NewInt(0)) }},
		{name: "ECDSA signature of another digest", alg: "ES256", opts: &awskms.Options{VerifyECDSA: true},
			edit: func(o *kms.SignOutput) { o.Signature = lifecycletest.DERSig(big.NewInt(12345), big.NewInt(67890)) }},
		{name: "ES384 signature of another digest", alg: "ES384", opts: &awskms.Options{VerifyECDSA: true},
			edit: func(o *kms.SignOutput) { o.Signature = lifecycletest.DERSig(big.NewInt(12345), big.NewInt(67890)) }},
		{name: "RSA bit flipped", alg: "RS256", edit: func(o *kms.SignOutput) { o.Signature[10] ^= 1 }},
		{name: "RSA cut short", alg: "RS256", edit: func(o *kms.SignOutput) { o.Signature = o.Signature[1:] }},
		{name: "RSA other key", alg: "RS256", edit: func(o *kms.SignOutput) { o.KeyId = aws.String(fakeARN) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			f := &fakeClient{inner: c}
			s, _, err := newProvider(t, f, tc.opts).Generate(ctx, "kid-corrupt", tc.alg)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if _, err := s.Sign(ctx, []byte(input)); err != nil {
				t.Fatalf("Sign before the fault: %v", err)
			}
			f.editSign = tc.edit
			sig, err := s.Sign(ctx, []byte(input))
			if !errors.Is(err, signer.ErrBackendIntegrity) {
				t.Fatalf("Sign: got (%x, %v), want %v", sig, err, signer.ErrBackendIntegrity)
			}
		})
	}
}

// TestCorruptedKeyResponse corrupts the responses Generate and Open rely on.
func TestCorruptedKeyResponse(t *testing.T) {
	c := localKMS(t)
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherDER, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    *fakeClient
		want error
	}{
		{name: "create: no ARN", want: signer.ErrBackendIntegrity,
			f: &fakeClient{editCreate: func(o *kms.CreateKeyOutput) { o.KeyMetadata.Arn = nil }}},
		{name: "create: alias ARN", want: signer.ErrBackendIntegrity,
			f: &fakeClient{editCreate: func(o *kms.CreateKeyOutput) {
				o.KeyMetadata.Arn = aws.String("arn:aws:kms:us-east-1:111122223333:alias/x")
			}}},
		{name: "create: other spec", want: signer.ErrBackendIntegrity,
			f: &fakeClient{editCreate: func(o *kms.CreateKeyOutput) { o.KeyMetadata.KeySpec = types.KeySpecEccNistP384 }}},
		{name: "create: other usage", want: signer.ErrBackendIntegrity,
			f: &fakeClient{editCreate: func(o *kms.CreateKeyOutput) { o.KeyMetadata.KeyUsage = types.KeyUsageTypeEncryptDecrypt }}},
		{name: "public key: other key id", want: signer.ErrBackendIntegrity,
			f: &fakeClient{editPub: func(o *kms.GetPublicKeyOutput) { o.KeyId = aws.String(fakeARN) }}},
		{name: "public key: garbage", want: signer.ErrBackendIntegrity,
			f: &fakeClient{editPub: func(o *kms.GetPublicKeyOutput) { o.PublicKey = []byte("garbage") }}},
		{name: "public key: other curve than spec", want: signer.ErrBackendIntegrity,
			f: &fakeClient{editPub: func(o *kms.GetPublicKeyOutput) { o.PublicKey = otherDER }}},
		{name: "public key: no signing algorithm", want: signer.ErrUnsupportedAlgorithm,
			f: &fakeClient{editPub: func(o *kms.GetPublicKeyOutput) { o.SigningAlgorithms = nil }}},
		{name: "public key: other usage", want: signer.ErrUnsupportedAlgorithm,
			f: &fakeClient{editPub: func(o *kms.GetPublicKeyOutput) { o.KeyUsage = types.KeyUsageTypeEncryptDecrypt }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.inner = c
			if _, _, err := newProvider(t, f, nil).Generate(testCtx(t), "kid-corrupt-key", "ES256"); !errors.Is(err, tc.want) {
				t.Fatalf("Generate: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCorruptedTagsResponse(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	_, ref, err := newProvider(t, c, nil).Generate(ctx, "kid-tags-corrupt", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*kms.ListResourceTagsOutput)
		want error
	}{
		{name: "truncated without marker", want: signer.ErrBackendIntegrity,
			edit: func(o *kms.ListResourceTagsOutput) { o.Truncated, o.NextMarker = true, nil }},
		{name: "endless pages", want: signer.ErrBackendIntegrity,
			edit: func(o *kms.ListResourceTagsOutput) { o.Truncated, o.NextMarker = true, aws.String("next") }},
		{name: "kid tag removed", want: signer.ErrBadReference,
			edit: func(o *kms.ListResourceTagsOutput) { o.Tags = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeClient{inner: c, editTags: tc.edit}
			if _, err := newProvider(t, f, nil).Open(ctx, "kid-tags-corrupt", ref); !errors.Is(err, tc.want) {
				t.Fatalf("Open: got %v, want %v", err, tc.want)
			}
		})
	}
}
