package gcpkms

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenkms/tokenkms/signer"
)

// MaxWrapSize is the largest plaintext, and the largest additional data,
// that Wrap accepts: the Cloud KMS limit for Encrypt (64 KiB).
const MaxWrapSize = 64 * 1024

// Wrapper is a signer.KeyWrapper under a Cloud KMS ENCRYPT_DECRYPT
// CryptoKey: Wrap encrypts with the key's primary version, aad going as
// additional_authenticated_data; the blob is the Cloud KMS ciphertext,
// which names the version, so Unwrap works across rotations of the
// CryptoKey while the old versions stay enabled.
type Wrapper struct {
	client Client
	key    string
}

var _ signer.KeyWrapper = (*Wrapper)(nil)

// NewWrapper returns a Wrapper under the CryptoKey named key
// ("projects/P/locations/L/keyRings/R/cryptoKeys/K").
func NewWrapper(client Client, key string) (*Wrapper, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: no Client", ErrConfig)
	}
	if !validName(key, 4) {
		return nil, fmt.Errorf("%w: %q is not projects/P/locations/L/keyRings/R/cryptoKeys/K", ErrConfig, key)
	}
	return &Wrapper{client: client, key: key}, nil
}

// Wrap encrypts plaintext with aad bound. The answer must come from a
// version of this key, confirm the checksums of plaintext and aad, and
// carry the ciphertext's checksum; otherwise the error wraps
// signer.ErrBackendIntegrity.
func (w *Wrapper) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if len(plaintext) > MaxWrapSize || len(aad) > MaxWrapSize {
		return nil, fmt.Errorf("%w: %d bytes of plaintext, %d of aad, limit %d", ErrTooLarge, len(plaintext), len(aad), MaxWrapSize)
	}
	resp, err := w.client.Encrypt(ctx, &kmspb.EncryptRequest{
		Name:                              w.key,
		Plaintext:                         plaintext,
		PlaintextCrc32C:                   crc32c(plaintext),
		AdditionalAuthenticatedData:       aad,
		AdditionalAuthenticatedDataCrc32C: crc32c(aad),
	})
	if err != nil {
		return nil, backendErr(ctx, "encrypt", err)
	}
	name := resp.GetName()
	if !strings.HasPrefix(name, w.key+"/cryptoKeyVersions/") || !validName(name, 5) {
		return nil, fmt.Errorf("%w: encrypt answer names %q, not a version of %s", signer.ErrBackendIntegrity, name, w.key)
	}
	if !resp.GetVerifiedPlaintextCrc32C() {
		return nil, fmt.Errorf("%w: backend did not verify plaintext_crc32c", signer.ErrBackendIntegrity)
	}
	if !resp.GetVerifiedAdditionalAuthenticatedDataCrc32C() {
		return nil, fmt.Errorf("%w: backend did not verify additional_authenticated_data_crc32c", signer.ErrBackendIntegrity)
	}
	if err := checkCRC("ciphertext_crc32c", resp.GetCiphertext(), resp.GetCiphertextCrc32C()); err != nil {
		return nil, err
	}
	return resp.GetCiphertext(), nil
}

// Unwrap decrypts a blob that Wrap returned, with the same aad. A blob
// that fails authentication (other aad, other key, tampering) gives
// signer.ErrUnwrap; a plaintext whose checksum does not match gives
// signer.ErrBackendIntegrity.
func (w *Wrapper) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) == 0 {
		return nil, fmt.Errorf("%w: empty blob", signer.ErrUnwrap)
	}
	resp, err := w.client.Decrypt(ctx, &kmspb.DecryptRequest{
		Name:                              w.key,
		Ciphertext:                        wrapped,
		CiphertextCrc32C:                  crc32c(wrapped),
		AdditionalAuthenticatedData:       aad,
		AdditionalAuthenticatedDataCrc32C: crc32c(aad),
	})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: gcpkms decrypt: %w", signer.ErrUnwrap, err)
		}
		return nil, backendErr(ctx, "decrypt", err)
	}
	pt := resp.GetPlaintext()
	if err := checkCRC("plaintext_crc32c", pt, resp.GetPlaintextCrc32C()); err != nil {
		clear(pt)
		return nil, err
	}
	return pt, nil
}

// String names the key, never data.
func (w *Wrapper) String() string { return "gcpkms.Wrapper(key=" + w.key + ")" }

// GoString keeps %#v to the same.
func (w *Wrapper) GoString() string { return w.String() }
