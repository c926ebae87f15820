package awskms

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Client is the part of the AWS KMS API that this package calls.
// *kms.Client (github.com/aws/aws-sdk-go-v2/service/kms) implements it; a
// host can pass its own configured client, a wrapper adding metrics, or a
// fake in tests.
//
// The IAM permissions used: kms:CreateKey and kms:TagResource (Generate),
// kms:GetPublicKey and kms:ListResourceTags (Generate, Open), kms:Sign,
// kms:Encrypt, kms:Decrypt, kms:DescribeKey (NewKeyWrapper, and to tell
// apart the states behind a KMSInvalidStateException).
type Client interface {
	CreateKey(ctx context.Context, in *kms.CreateKeyInput, optFns ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// TagClient is what Provider.Adopt needs beyond Client: it tags an
// existing key with its kid and algorithm (kms:TagResource). *kms.Client
// implements it.
type TagClient interface {
	TagResource(ctx context.Context, in *kms.TagResourceInput, optFns ...func(*kms.Options)) (*kms.TagResourceOutput, error)
}
