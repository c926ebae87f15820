package awskms_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
)

// The SDK client satisfies the adapter's interface.
var _ awskms.Client = (*kms.Client)(nil)

// fakeARN is well formed but names no key of the emulator.
const fakeARN = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"

// clientFor returns an SDK client for a KMS endpoint on loopback, with
// static credentials so that nothing looks for cloud credentials.
func clientFor(endpoint string, retries int) *kms.Client {
	return kms.New(kms.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: retries,
	})
}

// localKMS returns a client of the local-kms emulator that ./scripts/test
// starts.
func localKMS(t testing.TB) *kms.Client {
	t.Helper()
	return clientFor(testenv.Require(t, testenv.LocalKMS), 0)
}

// testCtx bounds every backend call of a test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newProvider(t testing.TB, c awskms.Client, opts *awskms.Options) *awskms.Provider {
	t.Helper()
	p, err := awskms.NewProvider(c, opts)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

// createKey makes a key directly with the SDK and returns its ARN.
func createKey(t testing.TB, c *kms.Client, spec types.KeySpec, usage types.KeyUsageType, tags ...types.Tag) string {
	t.Helper()
	out, err := c.CreateKey(testCtx(t), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Tags: tags})
	if err != nil {
		t.Fatalf("CreateKey(%s): %v", spec, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

func tag(k, v string) types.Tag { return types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)} }

var errNoBackend = errors.New("fake: no backend behind this client")

// fakeClient injects faults around an optional real client: fail makes a
// call fail before it reaches the backend, the edit functions corrupt a
// response, state answers DescribeKey when there is no backend.
type fakeClient struct {
	inner      awskms.Client
	fail       func(op string) error
	state      types.KeyState
	editCreate func(*kms.CreateKeyOutput)
	editPub    func(*kms.GetPublicKeyOutput)
	editTags   func(*kms.ListResourceTagsOutput)
	editSign   func(*kms.SignOutput)
	editEnc    func(*kms.EncryptOutput)
	editDec    func(*kms.DecryptOutput)
	calls      atomic.Int64
}

func (f *fakeClient) start(op string) error {
	f.calls.Add(1)
	if f.fail != nil {
		if err := f.fail(op); err != nil {
			return err
		}
	}
	if f.inner == nil {
		return errNoBackend
	}
	return nil
}

func call[O any](f *fakeClient, op string, do func() (O, error), edit func(O)) (O, error) {
	var zero O
	if err := f.start(op); err != nil {
		return zero, err
	}
	out, err := do()
	if err == nil && edit != nil {
		edit(out)
	}
	return out, err
}

func (f *fakeClient) CreateKey(ctx context.Context, in *kms.CreateKeyInput, _ ...func(*kms.Options)) (*kms.CreateKeyOutput, error) {
	return call(f, "CreateKey", func() (*kms.CreateKeyOutput, error) { return f.inner.CreateKey(ctx, in) }, f.editCreate)
}

func (f *fakeClient) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	return call(f, "GetPublicKey", func() (*kms.GetPublicKeyOutput, error) { return f.inner.GetPublicKey(ctx, in) }, f.editPub)
}

func (f *fakeClient) ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, _ ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error) {
	return call(f, "ListResourceTags", func() (*kms.ListResourceTagsOutput, error) { return f.inner.ListResourceTags(ctx, in) }, f.editTags)
}

func (f *fakeClient) Sign(ctx context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	return call(f, "Sign", func() (*kms.SignOutput, error) { return f.inner.Sign(ctx, in) }, f.editSign)
}

func (f *fakeClient) Encrypt(ctx context.Context, in *kms.EncryptInput, _ ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	return call(f, "Encrypt", func() (*kms.EncryptOutput, error) { return f.inner.Encrypt(ctx, in) }, f.editEnc)
}

func (f *fakeClient) Decrypt(ctx context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	return call(f, "Decrypt", func() (*kms.DecryptOutput, error) { return f.inner.Decrypt(ctx, in) }, f.editDec)
}

func (f *fakeClient) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	f.calls.Add(1)
	if f.state != "" {
		return &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{
			Arn:      in.KeyId,
			KeyId:    in.KeyId,
			KeyState: f.state,
			KeySpec:  types.KeySpecSymmetricDefault,
			KeyUsage: types.KeyUsageTypeEncryptDecrypt,
		}}, nil
	}
	if f.inner == nil {
		return nil, errNoBackend
	}
	return f.inner.DescribeKey(ctx, in)
}
