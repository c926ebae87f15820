package keyring_test

import (
	"testing"

	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
)

func TestMemStore(t *testing.T) {
	keyringtest.TestKeyStore(t, func(*testing.T) keyring.KeyStore { return keyring.NewMemStore() })
}
