package awskms_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
)

// BenchmarkIssue compares, in one run against local-kms, a token issued
// through signer.Issuer with an AWS KMS key and the bare SDK call the
// adapter makes (Sign with MessageType DIGEST on the same digest), and
// measures throughput with 1, 8 and 32 concurrent issuers
// (lifecycletest.Bench).
func BenchmarkIssue(b *testing.B) {
	c := localKMS(b)
	for _, tc := range []struct {
		name    string
		alg     string
		opts    *awskms.Options
		signing types.SigningAlgorithmSpec
	}{
		{name: "ES256", alg: "ES256", signing: types.SigningAlgorithmSpecEcdsaSha256},
		{name: "ES256-verify", alg: "ES256", opts: &awskms.Options{VerifyECDSA: true}, signing: types.SigningAlgorithmSpecEcdsaSha256},
		{name: "RS256", alg: "RS256", signing: types.SigningAlgorithmSpecRsassaPkcs1V15Sha256},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lifecycletest.Bench(b, newProvider(b, c, tc.opts), tc.alg, func(_ testing.TB, ref string) func(context.Context, []byte) error {
				return func(ctx context.Context, digest []byte) error {
					_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(ref), Message: digest,
						MessageType: types.MessageTypeDigest, SigningAlgorithm: tc.signing})
					return err
				}
			})
		})
	}
}

// BenchmarkAdapterLocalWork measures what the adapter adds around the SDK
// call on its own: a client that answers at once with a real response
// recorded from the backend leaves only hashing, the request, the checks
// and the DER to r||s conversion.
func BenchmarkAdapterLocalWork(b *testing.B) {
	c := localKMS(b)
	ctx := testCtx(b)
	for _, tc := range []struct {
		name string
		alg  string
		opts *awskms.Options
	}{
		{name: "ES256", alg: "ES256"},
		{name: "ES256-verify", alg: "ES256", opts: &awskms.Options{VerifyECDSA: true}},
		{name: "ES384", alg: "ES384"},
		{name: "ES384-verify", alg: "ES384", opts: &awskms.Options{VerifyECDSA: true}},
		{name: "RS256", alg: "RS256"},
	} {
		var recorded *kms.SignOutput
		f := &fakeClient{inner: c, editSign: func(o *kms.SignOutput) { recorded = o }}
		s, _, err := newProvider(b, f, tc.opts).Generate(ctx, "kid-bench-local-"+tc.name, tc.alg)
		if err != nil {
			b.Fatalf("Generate: %v", err)
		}
		if _, err := s.Sign(ctx, []byte(input)); err != nil {
			b.Fatalf("Sign: %v", err)
		}
		f.inner = replay{Client: c, out: recorded}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Sign(ctx, []byte(input)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// replay answers Sign with one recorded response.
type replay struct {
	awskms.Client
	out *kms.SignOutput
}

func (r replay) Sign(context.Context, *kms.SignInput, ...func(*kms.Options)) (*kms.SignOutput, error) {
	return r.out, nil
}
