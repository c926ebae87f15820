package awskms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// kmsSigner signs with one asymmetric KMS key. It is immutable after Open
// and safe for concurrent use; the public key is fetched once.
type kmsSigner struct {
	client      Client
	kid         string
	arn         string
	alg         *jose.Alg
	spec        algSpec
	pub         crypto.PublicKey
	verifyECDSA bool
}

var (
	_ signer.Signer       = (*kmsSigner)(nil)
	_ signer.DigestSigner = (*kmsSigner)(nil)
)

func (s *kmsSigner) KID() string              { return s.kid }
func (s *kmsSigner) Algorithm() string        { return s.alg.Name }
func (s *kmsSigner) Public() crypto.PublicKey { return s.pub }

// String names the key by kid, algorithm and ARN; there is no secret to
// show, but nothing else is shown either.
func (s *kmsSigner) String() string {
	return fmt.Sprintf("awskms.Signer(kid=%s alg=%s ref=%s)", s.kid, s.alg.Name, s.arn)
}

// GoString keeps %#v to the same three fields.
func (s *kmsSigner) GoString() string { return s.String() }

// Sign hashes the JWS signing input here and has KMS sign the digest.
func (s *kmsSigner) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	return s.SignDigest(ctx, s.alg.Digest(signingInput))
}

// SignDigest has KMS sign a digest computed with the algorithm's hash and
// returns the JWS signature (r||s for ECDSA). The response is checked: the
// key ARN and signing algorithm echoed, the signature's form and range,
// and, for RSA (and ECDSA with Options.VerifyECDSA), the signature itself.
func (s *kmsSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != s.alg.Hash.Size() {
		return nil, fmt.Errorf("%w: %d bytes for %s", ErrDigestSize, len(digest), s.alg.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("awskms: sign %s: %w", s.arn, err)
	}
	out, err := s.client.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(s.arn),
		Message:          digest,
		MessageType:      types.MessageTypeDigest,
		SigningAlgorithm: s.spec.signing,
	})
	if err != nil {
		return nil, mapError(ctx, s.client, "sign", s.arn, err)
	}
	if out == nil || aws.ToString(out.KeyId) != s.arn {
		return nil, integrityError("sign", s.arn, "response names another key")
	}
	if out.SigningAlgorithm != s.spec.signing {
		return nil, integrityError("sign", s.arn, fmt.Sprintf("response signed with %s", out.SigningAlgorithm))
	}
	switch s.alg.Kind {
	case jose.KindEC:
		return s.checkECDSA(digest, out.Signature)
	default:
		return s.checkRSA(digest, out.Signature)
	}
}

func (s *kmsSigner) checkECDSA(digest, der []byte) ([]byte, error) {
	sig, err := s.alg.ToP1363(der)
	if err != nil {
		return nil, integrityError("sign", s.arn, err.Error())
	}
	n := s.alg.Curve.Params().N
	r := new(big.Int).SetBytes(sig[:s.alg.Size])
	v := new(big.Int).SetBytes(sig[s.alg.Size:])
	if r.Cmp(n) >= 0 || v.Cmp(n) >= 0 {
		return nil, integrityError("sign", s.arn, "ECDSA signature out of range")
	}
	if s.verifyECDSA && !ecdsa.Verify(s.pub.(*ecdsa.PublicKey), digest, r, v) {
		return nil, integrityError("sign", s.arn, "signature does not verify with the key's public key")
	}
	return sig, nil
}

func (s *kmsSigner) checkRSA(digest, sig []byte) ([]byte, error) {
	pub := s.pub.(*rsa.PublicKey)
	if len(sig) != pub.Size() {
		return nil, integrityError("sign", s.arn, fmt.Sprintf("RSA signature of %d bytes, want %d", len(sig), pub.Size()))
	}
	var err error
	if s.alg.Kind == jose.KindRSAPSS {
		err = rsa.VerifyPSS(pub, s.alg.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: s.alg.Hash})
	} else {
		err = rsa.VerifyPKCS1v15(pub, s.alg.Hash, digest, sig)
	}
	if err != nil {
		return nil, integrityError("sign", s.arn, "signature does not verify with the key's public key (PSS needs salt = hash length)")
	}
	return sig, nil
}
