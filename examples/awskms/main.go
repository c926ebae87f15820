// Command awskms shows the AWS KMS adapter against a KMS emulator: it
// creates an ES256 signing key inside KMS, signs a JWS signing input with
// it, verifies the signature with the public key, and wraps and unwraps a
// data key with a symmetric KMS key.
//
// It needs an endpoint and never reaches AWS on its own: give -endpoint or
// set AWS_ENDPOINT_URL_KMS, for example to the local-kms emulator:
//
//	PORT=4599 KMS_DATA_PATH=$(mktemp -d) KMS_REGION=us-east-1 KMS_ACCOUNT_ID=111122223333 local-kms &
//	AWS_ENDPOINT_URL_KMS=http://127.0.0.1:4599 go run ./examples/awskms
//
// It signs requests with the fixed credentials test/test, which only an
// emulator accepts.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
)

var errNoEndpoint = errors.New("no KMS endpoint: set AWS_ENDPOINT_URL_KMS or pass -endpoint (for example http://127.0.0.1:4599 for local-kms); this example never calls AWS itself")

func main() {
	endpoint := flag.String("endpoint", os.Getenv("AWS_ENDPOINT_URL_KMS"), "KMS endpoint URL (default $AWS_ENDPOINT_URL_KMS)")
	region := flag.String("region", "us-east-1", "region the emulator answers for")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline for the whole run")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, *endpoint, *region); err != nil {
		fmt.Fprintln(os.Stderr, "awskms:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, endpoint, region string) error {
	if endpoint == "" {
		return errNoEndpoint
	}
	client := kms.New(kms.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	})
	fmt.Fprintf(out, "KMS endpoint: %s\n", endpoint)

	provider, err := awskms.NewProvider(client, nil)
	if err != nil {
		return err
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	kid := "example-" + base64.RawURLEncoding.EncodeToString(suffix)
	s, ref, err := provider.Generate(ctx, kid, "ES256")
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	fmt.Fprintf(out, "created signing key in KMS: kid=%s alg=%s\n  ref=%s\n", s.KID(), s.Algorithm(), ref)

	// The JWS signing input: base64url(header) "." base64url(payload).
	enc := base64.RawURLEncoding
	header := fmt.Sprintf(`{"alg":"%s","kid":"%s","typ":"at+jwt"}`, s.Algorithm(), s.KID())
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(`{"sub":"example"}`))
	sig, err := s.Sign(ctx, []byte(input))
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintf(out, "signed (digest sent to KMS, %d-byte r||s back):\n  %s.%s\n", len(sig), input, enc.EncodeToString(sig))

	// Verify with the standard library alone, as any JWS verifier would.
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || len(sig) != 64 {
		return fmt.Errorf("unexpected key %T or signature length %d", s.Public(), len(sig))
	}
	digest := sha256.Sum256([]byte(input))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("the signature does not verify")
	}
	fmt.Fprintln(out, "verified the signature with crypto/ecdsa and the public key fetched once from KMS")

	// Reopen the key from its reference, as another replica would.
	if _, err := provider.Open(ctx, kid, ref); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	fmt.Fprintln(out, "reopened the key from its reference")

	// Envelope encryption: a data key sealed by a symmetric KMS key.
	kek, err := client.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
		Description: aws.String("tokenkms example key-encryption key"),
	})
	if err != nil {
		return fmt.Errorf("create key-encryption key: %w", err)
	}
	w, err := awskms.NewKeyWrapper(ctx, client, aws.ToString(kek.KeyMetadata.Arn))
	if err != nil {
		return err
	}
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	aad := []byte("kid=" + kid + "-data")
	blob, err := w.Wrap(ctx, dataKey, aad)
	if err != nil {
		return fmt.Errorf("wrap: %w", err)
	}
	back, err := w.Unwrap(ctx, blob, aad)
	if err != nil || !bytes.Equal(back, dataKey) {
		return fmt.Errorf("unwrap: %v", err)
	}
	fmt.Fprintf(out, "wrapped a 32-byte data key with %s (%d-byte blob) and unwrapped it\n", w, len(blob))
	if _, err := w.Unwrap(ctx, blob, []byte("another aad")); err == nil {
		return errors.New("unwrap with another aad succeeded")
	}
	fmt.Fprintln(out, "unwrap with another aad was refused")
	return nil
}
