package filestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/verifier"
)

// BenchmarkRevokeJTI measures a durable revocation: one journal append
// and fsync per call.
func BenchmarkRevokeJTI(b *testing.B) {
	s, err := filestore.Open(filepath.Join(b.TempDir(), "keys.json"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	i := 0
	for b.Loop() {
		if err := s.Revocations().RevokeJTI(ctx, fmt.Sprintf("jti-%d", i), until); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRevoked measures a lookup through the store's list (the
// verifier.MemoryRevocationList it feeds) with 100,000 jtis revoked (put
// straight into the memory list: the journal plays no part in lookups),
// half the lookups hits; against the memory list alone, the same lookups.
func BenchmarkRevoked(b *testing.B) {
	dir := b.TempDir()
	s, err := filestore.Open(filepath.Join(dir, "keys.json"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	const n = 100_000
	jtis := make([]string, 2*n)
	for i := range jtis {
		jtis[i] = fmt.Sprintf("jti-%d", i)
	}
	for _, jti := range jtis[:n] {
		if err := s.Revocations().Memory().RevokeJTI(ctx, jti, until); err != nil {
			b.Fatal(err)
		}
	}
	defer s.Close()
	iat := time.Now()
	for _, bc := range []struct {
		name string
		list verifier.RevocationList
	}{
		{name: "filestore", list: s.Revocations()},
		{name: "memory-list-alone", list: s.Revocations().Memory()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := bc.list.Revoked(ctx, "kid", jtis[i%len(jtis)], iat); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
