package gcpkms_test

import (
	"testing"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
)

// TestKeyringDataKeysAndSecrets runs the keyring's envelope-encryption and
// secret flow with data keys and secrets sealed by a Cloud KMS key.
func TestKeyringDataKeysAndSecrets(t *testing.T) {
	lifecycletest.DataKeys(t, newKEK(t, newEnv(t), "dek-kek"))
}
