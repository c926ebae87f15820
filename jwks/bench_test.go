package jwks_test

import (
	"context"
	"testing"
)

// BenchmarkRemoteSetHit measures VerificationKey for a kid of the set, the
// verify hot path.
func BenchmarkRemoteSetHit(b *testing.B) {
	rs := newRemote(b, newServer().start(b))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rs.VerificationKey(ctx, "k-ec"); err != nil {
			b.Fatal(err)
		}
	}
}
