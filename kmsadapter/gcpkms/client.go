package gcpkms

import (
	"context"
	"fmt"
	"hash/crc32"
	"strings"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenkms/tokenkms/signer"
)

// Client is the part of the Cloud KMS client that this package calls.
// *kms.KeyManagementClient (cloud.google.com/go/kms/apiv1) satisfies it; a
// host may pass its own wrapper (metrics, quotas) or a fake.
type Client interface {
	CreateCryptoKey(ctx context.Context, req *kmspb.CreateCryptoKeyRequest, opts ...gax.CallOption) (*kmspb.CryptoKey, error)
	GetCryptoKeyVersion(ctx context.Context, req *kmspb.GetCryptoKeyVersionRequest, opts ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
	GetPublicKey(ctx context.Context, req *kmspb.GetPublicKeyRequest, opts ...gax.CallOption) (*kmspb.PublicKey, error)
	AsymmetricSign(ctx context.Context, req *kmspb.AsymmetricSignRequest, opts ...gax.CallOption) (*kmspb.AsymmetricSignResponse, error)
	Encrypt(ctx context.Context, req *kmspb.EncryptRequest, opts ...gax.CallOption) (*kmspb.EncryptResponse, error)
	Decrypt(ctx context.Context, req *kmspb.DecryptRequest, opts ...gax.CallOption) (*kmspb.DecryptResponse, error)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the checksum of Cloud KMS integrity fields.
func crc32c(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, castagnoli)))
}

// checkCRC reports whether got carries the CRC32C of data. A missing
// checksum fails: Cloud KMS always sends it.
func checkCRC(field string, data []byte, got *wrapperspb.Int64Value) error {
	if got == nil || got.GetValue() != crc32c(data).GetValue() {
		return fmt.Errorf("%w: %s does not match the response data", signer.ErrBackendIntegrity, field)
	}
	return nil
}

// backendErr maps an error of the client to the signer sentinels, keeping
// the client's error reachable with errors.As and, when the caller's
// context ended, the context's error reachable with errors.Is.
func backendErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: gcpkms %s: %w: %w", signer.ErrUnavailable, op, cerr, err)
	}
	var sentinel error
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound:
		sentinel = signer.ErrKeyNotFound
	case codes.FailedPrecondition:
		sentinel = stateErr(st.Message())
	case codes.ResourceExhausted:
		sentinel = signer.ErrThrottled
	case codes.Unavailable, codes.DeadlineExceeded:
		sentinel = signer.ErrUnavailable
	case codes.PermissionDenied, codes.Unauthenticated:
		sentinel = signer.ErrPermissionDenied
	default:
		return fmt.Errorf("gcpkms %s: %w", op, err)
	}
	return fmt.Errorf("%w: gcpkms %s: %w", sentinel, op, err)
}

// stateErr names the reason of a FAILED_PRECONDITION answer. Cloud KMS
// says "<version> is not enabled, current state is: DISABLED." for a key
// version that cannot be used.
func stateErr(msg string) error {
	switch {
	case strings.Contains(msg, kmspb.CryptoKeyVersion_DESTROY_SCHEDULED.String()),
		strings.Contains(msg, kmspb.CryptoKeyVersion_DESTROYED.String()):
		return signer.ErrKeyPendingDeletion
	case strings.Contains(msg, kmspb.CryptoKeyVersion_PENDING_GENERATION.String()),
		strings.Contains(msg, kmspb.CryptoKeyVersion_PENDING_IMPORT.String()):
		return signer.ErrUnavailable
	}
	return signer.ErrKeyDisabled
}

// Resource names: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V.
var collections = []string{"projects", "locations", "keyRings", "cryptoKeys", "cryptoKeyVersions"}

// validName reports whether name is a resource name of the given depth
// (3: key ring, 4: crypto key, 5: crypto key version).
func validName(name string, depth int) bool {
	parts := strings.Split(name, "/")
	if len(parts) != 2*depth {
		return false
	}
	for i := range depth {
		if parts[2*i] != collections[i] || !validID(parts[2*i+1]) {
			return false
		}
	}
	return true
}

// validID reports whether id matches [a-zA-Z0-9_-]{1,63}, the Cloud KMS
// rule for key ring, crypto key and version ids.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 63 {
		return false
	}
	for _, c := range []byte(id) {
		if !isIDChar(c) {
			return false
		}
	}
	return true
}

func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
