package filestore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
)

// A single-node Core keeps its keys in one file: the private keys in it
// are sealed under a key-encryption key that the host keeps elsewhere (its
// secret store), and the audit trail goes to a hash-chained file. After a
// restart, the same file and KEK give back the same Active key. One
// process at a time holds the file.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tokenkms-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	kek := make([]byte, 32) // in production: read from the host's secret store
	rand.Read(kek)

	// start opens the store and the audit chain and builds the keyring.
	start := func() (*keyring.Keyring, func()) {
		store, err := filestore.Open(filepath.Join(dir, "keys.json"))
		if err != nil {
			panic(err)
		}
		chain, err := audit.OpenChain(filepath.Join(dir, "audit.log"))
		if err != nil {
			panic(err)
		}
		wrapper, err := signer.NewAESWrapper(kek)
		if err != nil {
			panic(err)
		}
		local, err := signer.NewLocalProvider(wrapper)
		if err != nil {
			panic(err)
		}
		ring, err := keyring.New(ctx, keyring.Config{
			Store:     store,
			Providers: map[string]signer.Provider{"local": local},
			Audit:     chain,
			Sets:      []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
		})
		if err != nil {
			panic(err)
		}
		return ring, func() { chain.Close(); store.Close() }
	}

	ring, stop := start()
	first, err := keyringtest.ActivateFirst(ctx, ring, "access-tokens")
	if err != nil {
		panic(err)
	}
	_, err = filestore.Open(filepath.Join(dir, "keys.json"))
	fmt.Println("second open refused:", errors.Is(err, filestore.ErrLocked))
	stop()

	ring, stop = start() // the restart
	defer stop()
	s, err := ring.Signer(ctx, "access-tokens")
	if err != nil {
		panic(err)
	}
	fmt.Println("same Active key after restart:", s.KID() == first.KID)
	if _, err := s.Sign(ctx, []byte("signing input")); err != nil {
		panic(err)
	}
	log, err := os.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		panic(err)
	}
	defer log.Close()
	n, err := audit.Verify(log)
	fmt.Println("audit records:", n, "chain intact:", err == nil)
	// Output:
	// second open refused: true
	// same Active key after restart: true
	// audit records: 3 chain intact: true
}
