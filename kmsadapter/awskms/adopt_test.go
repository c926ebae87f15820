package awskms_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
)

// preMigrationSigner is Core's own signing with the KMS key through the
// SDK, under the kid its tokens carry, before the migration.
func preMigrationSigner(t *testing.T, c *kms.Client, kid, arn string) signer.Signer {
	t.Helper()
	out, err := c.GetPublicKey(testCtx(t), &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetPublicKey: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.NewRemoteSigner(signer.RemoteKey{
		KID: kid, Algorithm: "ES256", Backend: "core", Ref: arn, Public: pub,
		SignDigest: func(ctx context.Context, digest []byte) ([]byte, error) {
			out, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: digest,
				MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			if err != nil {
				return nil, err
			}
			return out.Signature, nil
		},
	})
	if err != nil {
		t.Fatalf("NewRemoteSigner: %v", err)
	}
	return s
}

// TestAdoptMigration: a KMS key Core signed with before the migration is
// adopted under the kid its tokens carry; those tokens verify while it is
// Pending, once Active, and after a restart, when the keyring reopens the
// key from the store; new tokens carry the same kid.
func TestAdoptMigration(t *testing.T) {
	c := localKMS(t)
	arn := createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	const kid = "core-kms-2025"
	lifecycletest.Migrate(t, newProvider(t, c, nil), preMigrationSigner(t, c, kid, arn), keyring.KeyImport{KID: kid, Ref: arn})
}

// TestAdoptRefused: keys that cannot serve the set, or are bound to
// another kid, are refused and left untagged.
func TestAdoptRefused(t *testing.T) {
	c := localKMS(t)
	tests := []struct {
		name   string
		arn    func(t *testing.T) string
		client func() awskms.Client
		want   error
	}{
		{name: "P-384 key for ES256", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecEccNistP384, types.KeyUsageTypeSignVerify)
		}, want: signer.ErrUnsupportedAlgorithm},
		{name: "RSA key for ES256", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
		}, want: signer.ErrUnsupportedAlgorithm},
		{name: "encryption key", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
		}, want: signer.ErrUnsupportedAlgorithm},
		{name: "bound to another kid", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify, tag(awskms.TagKID, "other"))
		}, want: signer.ErrBadReference},
		{name: "alias instead of ARN", arn: func(*testing.T) string { return "alias/core" }, want: signer.ErrBadReference},
		{name: "client without TagResource", arn: func(t *testing.T) string {
			return createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
		}, client: func() awskms.Client { return &fakeClient{inner: c} }, want: awskms.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var client awskms.Client = c
			if tc.client != nil {
				client = tc.client()
			}
			arn := tc.arn(t)
			_, _, err := newProvider(t, client, nil).Adopt(testCtx(t), "kid-1", "ES256", arn)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Adopt: got %v, want %v", err, tc.want)
			}
			if len(arn) < 4 || arn[:4] != "arn:" {
				return
			}
			out, err := c.ListResourceTags(testCtx(t), &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
			if err != nil {
				t.Fatalf("ListResourceTags: %v", err)
			}
			for _, tg := range out.Tags {
				if aws.ToString(tg.TagKey) == awskms.TagKID && aws.ToString(tg.TagValue) == "kid-1" {
					t.Fatal("refused key was tagged with the kid")
				}
			}
		})
	}
}
