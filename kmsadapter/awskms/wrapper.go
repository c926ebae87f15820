package awskms

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/signer"
)

// MaxPlaintext is the most that Wrap seals in one call: KMS Encrypt's limit.
const MaxPlaintext = 4096

// The encryption context of every Wrap: KMS binds it to the ciphertext,
// logs it in CloudTrail, and refuses to decrypt without the same one.
const (
	contextPurposeKey = "tokenkms:purpose"
	contextPurpose    = "keywrap.v1"
	contextAADKey     = "tokenkms:aad-sha256"
)

// blobVersion is the first byte of every blob Wrap returns, before the KMS
// ciphertext.
const blobVersion = 1

// KeyWrapper is a signer.KeyWrapper over a symmetric KMS key: Wrap is KMS
// Encrypt, Unwrap is KMS Decrypt, both pinned to one key ARN. The aad is
// bound through the encryption context as the base64url SHA-256 of aad
// (the hash, not aad itself, because KMS logs encryption contexts and
// limits their size). A KeyWrapper is safe for concurrent use.
type KeyWrapper struct {
	client Client
	arn    string
}

var _ signer.KeyWrapper = (*KeyWrapper)(nil)

// NewKeyWrapper checks with DescribeKey that keyID (key id, key ARN or
// alias) names an enabled SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key, and pins
// the wrapper to that key's ARN: an alias moved later does not change the
// key that blobs are decrypted with.
func NewKeyWrapper(ctx context.Context, client Client, keyID string) (*KeyWrapper, error) {
	if client == nil || keyID == "" {
		return nil, fmt.Errorf("%w: nil client or empty key id", ErrConfig)
	}
	out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return nil, mapError(ctx, client, "describe key", keyID, err)
	}
	if out == nil || out.KeyMetadata == nil || parseKeyARN(aws.ToString(out.KeyMetadata.Arn)) != nil {
		return nil, integrityError("describe key", keyID, "response has no valid key ARN")
	}
	md := out.KeyMetadata
	arn := aws.ToString(md.Arn)
	if md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.KeySpec != types.KeySpecSymmetricDefault {
		return nil, fmt.Errorf("%w: awskms: key %s (%s, %s) is not a symmetric encryption key", signer.ErrUnsupportedAlgorithm, arn, md.KeySpec, md.KeyUsage)
	}
	switch md.KeyState {
	case types.KeyStateEnabled:
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		return nil, fmt.Errorf("%w: awskms: key %s", signer.ErrKeyPendingDeletion, arn)
	default:
		return nil, fmt.Errorf("%w: awskms: key %s is %s", signer.ErrKeyDisabled, arn, md.KeyState)
	}
	return &KeyWrapper{client: client, arn: arn}, nil
}

// KeyARN returns the ARN of the key-encryption key.
func (w *KeyWrapper) KeyARN() string { return w.arn }

// String names the key-encryption key only.
func (w *KeyWrapper) String() string { return "awskms.KeyWrapper(" + w.arn + ")" }

// GoString keeps %#v to the same.
func (w *KeyWrapper) GoString() string { return w.String() }

func encryptionContext(aad []byte) map[string]string {
	sum := sha256.Sum256(aad)
	return map[string]string{
		contextPurposeKey: contextPurpose,
		contextAADKey:     base64.RawURLEncoding.EncodeToString(sum[:]),
	}
}

// Wrap encrypts plaintext (1 to MaxPlaintext bytes) under the KMS key with
// aad bound. The blob is version(1) || KMS ciphertext blob.
func (w *KeyWrapper) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if len(plaintext) == 0 || len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("%w: %d bytes (1 to %d)", ErrPlaintextSize, len(plaintext), MaxPlaintext)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("awskms: encrypt %s: %w", w.arn, err)
	}
	out, err := w.client.Encrypt(ctx, &kms.EncryptInput{
		KeyId:               aws.String(w.arn),
		Plaintext:           plaintext,
		EncryptionContext:   encryptionContext(aad),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
	})
	if err != nil {
		return nil, mapError(ctx, w.client, "encrypt", w.arn, err)
	}
	if out == nil || aws.ToString(out.KeyId) != w.arn || len(out.CiphertextBlob) == 0 {
		return nil, integrityError("encrypt", w.arn, "response names another key or holds no ciphertext")
	}
	return append([]byte{blobVersion}, out.CiphertextBlob...), nil
}

// Unwrap decrypts a blob that Wrap produced with the same aad. A wrong aad,
// another key's blob or a tampered blob gives signer.ErrUnwrap.
func (w *KeyWrapper) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < 2 || wrapped[0] != blobVersion {
		return nil, fmt.Errorf("%w: awskms: malformed blob", signer.ErrUnwrap)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("awskms: decrypt %s: %w", w.arn, err)
	}
	out, err := w.client.Decrypt(ctx, &kms.DecryptInput{
		KeyId:               aws.String(w.arn),
		CiphertextBlob:      wrapped[1:],
		EncryptionContext:   encryptionContext(aad),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
	})
	if err != nil {
		return nil, mapError(ctx, w.client, "decrypt", w.arn, err)
	}
	if out == nil || aws.ToString(out.KeyId) != w.arn {
		return nil, integrityError("decrypt", w.arn, "response names another key")
	}
	return out.Plaintext, nil
}
