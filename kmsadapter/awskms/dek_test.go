package awskms_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
)

func kmsWrapper(tb testing.TB) *awskms.KeyWrapper {
	tb.Helper()
	c := localKMS(tb)
	w, err := awskms.NewKeyWrapper(testCtx(tb), c, createKey(tb, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt))
	if err != nil {
		tb.Fatalf("NewKeyWrapper: %v", err)
	}
	return w
}

// TestKeyringDataKeysAndSecrets runs the keyring's envelope-encryption and
// secret flow with data keys and secrets sealed by AWS KMS (local-kms).
func TestKeyringDataKeysAndSecrets(t *testing.T) {
	lifecycletest.DataKeys(t, kmsWrapper(t))
}

// BenchmarkKeyringDecrypt compares a Decrypt whose data key is cached with
// one that unwraps it through a KMS Decrypt round trip to local-kms.
func BenchmarkKeyringDecrypt(b *testing.B) {
	lifecycletest.BenchDecrypt(b, kmsWrapper(b))
}
