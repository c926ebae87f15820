//go:build cgo

package pkcs11_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
)

// TestKeyringDataKeysAndSecrets runs the keyring's envelope-encryption and
// secret flow with data keys and secrets sealed by an AES key in SoftHSM2.
func TestKeyringDataKeysAndSecrets(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, _, err := p.GenerateWrapper(ctx, "dek-kek")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	lifecycletest.DataKeys(t, w)
}
