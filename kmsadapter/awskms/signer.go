package awskms

import (
	"context"
	"crypto"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/signer"
)

// newSigner returns the Signer of the asymmetric KMS key arn, whose public
// key pub was fetched once and checked against alg. Each signature is one
// KMS Sign call of the digest; the response must echo the key ARN and the
// signing algorithm, and is then checked by signer.NewRemoteSigner: form
// and range always, the signature itself for RSA always and for ECDSA
// with Options.VerifyECDSA.
func newSigner(client Client, kid, arn, alg string, spec algSpec, pub crypto.PublicKey, verifyECDSA bool) (signer.Signer, error) {
	policy := signer.VerifyRSAOnly
	if verifyECDSA {
		policy = signer.VerifyAll
	}
	return signer.NewRemoteSigner(signer.RemoteKey{
		KID:           kid,
		Algorithm:     alg,
		Backend:       "awskms",
		Ref:           arn,
		Public:        pub,
		Verify:        policy,
		DigestSizeErr: ErrDigestSize,
		SignDigest: func(ctx context.Context, digest []byte) ([]byte, error) {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("awskms: sign %s: %w", arn, err)
			}
			out, err := client.Sign(ctx, &kms.SignInput{
				KeyId:            aws.String(arn),
				Message:          digest,
				MessageType:      types.MessageTypeDigest,
				SigningAlgorithm: spec.signing,
			})
			if err != nil {
				return nil, mapError(ctx, client, "sign", arn, err)
			}
			if out == nil || aws.ToString(out.KeyId) != arn {
				return nil, integrityError("sign", arn, "response names another key")
			}
			if out.SigningAlgorithm != spec.signing {
				return nil, integrityError("sign", arn, fmt.Sprintf("response signed with %s", out.SigningAlgorithm))
			}
			return out.Signature, nil
		},
	})
}
