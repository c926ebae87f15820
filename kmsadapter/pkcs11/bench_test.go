//go:build cgo

package pkcs11_test

import (
	"context"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
)

// BenchmarkIssue compares, in one run against SoftHSM2, a token issued
// through signer.Issuer with a key in the token and the direct crypto11
// call on the same key and digest (no adapter, no context), and measures
// throughput with 1, 8 and 32 concurrent issuers (lifecycletest.Bench).
func BenchmarkIssue(b *testing.B) {
	p := newProvider(b, pkcs11.Options{})
	raw := rawToken(b)
	for _, alg := range []string{"ES256", "PS256"} {
		a, _ := jose.Lookup(alg)
		b.Run(alg, func(b *testing.B) {
			lifecycletest.Bench(b, p, alg, func(tb testing.TB, ref string) func(context.Context, []byte) error {
				keys, err := raw.FindKeyPairs(refID(tb, ref), nil)
				if err != nil || len(keys) != 1 {
					tb.Fatalf("FindKeyPairs: %d keys, %v", len(keys), err)
				}
				opts := a.SignerOpts()
				return func(_ context.Context, digest []byte) error {
					_, err := keys[0].Sign(nil, digest, opts)
					return err
				}
			})
		})
	}
}
