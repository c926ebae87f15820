package gcpkms_test

import (
	"context"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenkms/tokenkms/internal/gcpkmsfake"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/gcpkms"
)

// BenchmarkIssue compares, in one run against the in-process fake over
// loopback gRPC, a token issued through signer.Issuer with a Cloud KMS key
// and the bare SDK call the adapter wraps (AsymmetricSign of the same
// digest with digest_crc32c, no checks), and measures throughput with 1, 8
// and 32 concurrent issuers (lifecycletest.Bench). "verify" is the default
// adapter, which checks every signature under the cached public key;
// "skip-local-verify" sets Config.UnsafeSkipLocalVerify.
func BenchmarkIssue(b *testing.B) {
	e := newEnv(b)
	skip, err := gcpkms.NewProvider(gcpkms.Config{Client: e.client, KeyRing: ring, UnsafeSkipLocalVerify: true})
	if err != nil {
		b.Fatal(err)
	}
	direct := func(_ testing.TB, ref string) func(context.Context, []byte) error {
		return func(ctx context.Context, digest []byte) error {
			_, err := e.client.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
				Name:         ref,
				Digest:       &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: digest}},
				DigestCrc32C: wrapperspb.Int64(gcpkmsfake.CRC32C(digest)),
			})
			return err
		}
	}
	for _, alg := range []string{"ES256", "PS256"} {
		b.Run(alg+"/verify", func(b *testing.B) { lifecycletest.Bench(b, e.prov, alg, direct) })
		b.Run(alg+"/skip-local-verify", func(b *testing.B) { lifecycletest.Bench(b, skip, alg, direct) })
	}
}

// BenchmarkLocalVerify measures alone the check that
// Config.UnsafeSkipLocalVerify turns off: one signature verified under the
// cached public key.
func BenchmarkLocalVerify(b *testing.B) {
	e := newEnv(b)
	for _, alg := range []string{"ES256", "PS256"} {
		s, _ := e.generate(b, "bench-"+alg, alg)
		sig, err := s.Sign(ctxT(b), []byte(input))
		if err != nil {
			b.Fatal(err)
		}
		a, _ := jose.Lookup(alg)
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				if err := a.Verify(s.Public(), []byte(input), sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
