package gcpkms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"

	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// kmsSigner signs with one Cloud KMS CryptoKeyVersion. It holds the
// version's name and its public key, never private material.
type kmsSigner struct {
	client Client
	kid    string
	ref    string
	alg    *jose.Alg
	pub    crypto.PublicKey
	// skipVerify is Config.UnsafeSkipLocalVerify.
	skipVerify bool
}

var (
	_ signer.Signer       = (*kmsSigner)(nil)
	_ signer.DigestSigner = (*kmsSigner)(nil)
)

func (s *kmsSigner) KID() string              { return s.kid }
func (s *kmsSigner) Algorithm() string        { return s.alg.Name }
func (s *kmsSigner) Public() crypto.PublicKey { return s.pub }

// Sign hashes signingInput here and has Cloud KMS sign the digest.
func (s *kmsSigner) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	return s.SignDigest(ctx, s.alg.Digest(signingInput))
}

// SignDigest has Cloud KMS sign digest and returns the JWS signature (r||s
// for ECDSA). The answer must name this version, confirm the digest's
// checksum, carry the signature's checksum, and the signature must verify
// under the cached public key (unless Config.UnsafeSkipLocalVerify);
// otherwise the error wraps signer.ErrBackendIntegrity. An ECDSA signature
// that is not well-formed DER is refused in any case.
func (s *kmsSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != s.alg.Hash.Size() {
		return nil, fmt.Errorf("%w: %d bytes, %s needs %d", ErrDigestSize, len(digest), s.alg.Name, s.alg.Hash.Size())
	}
	d := &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: digest}}
	if s.alg.Hash == crypto.SHA384 {
		d = &kmspb.Digest{Digest: &kmspb.Digest_Sha384{Sha384: digest}}
	}
	resp, err := s.client.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
		Name:         s.ref,
		Digest:       d,
		DigestCrc32C: crc32c(digest),
	})
	if err != nil {
		return nil, backendErr(ctx, "asymmetric sign", err)
	}
	if resp.GetName() != s.ref {
		return nil, fmt.Errorf("%w: signature answer names %q, want %q", signer.ErrBackendIntegrity, resp.GetName(), s.ref)
	}
	if !resp.GetVerifiedDigestCrc32C() {
		return nil, fmt.Errorf("%w: backend did not verify digest_crc32c", signer.ErrBackendIntegrity)
	}
	sig := resp.GetSignature()
	if err := checkCRC("signature_crc32c", sig, resp.GetSignatureCrc32C()); err != nil {
		return nil, err
	}
	if !s.skipVerify && !verifyDigest(s.alg, s.pub, digest, sig) {
		return nil, fmt.Errorf("%w: signature does not verify under the key's public key", signer.ErrBackendIntegrity)
	}
	if s.alg.Kind == jose.KindEC {
		out, err := s.alg.ToP1363(sig)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", signer.ErrBackendIntegrity, err)
		}
		return out, nil
	}
	return sig, nil
}

// verifyDigest checks a signature as Cloud KMS returns it (ASN.1 DER for
// ECDSA) over digest.
func verifyDigest(a *jose.Alg, pub crypto.PublicKey, digest, sig []byte) bool {
	switch a.Kind {
	case jose.KindEC:
		return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, sig)
	case jose.KindRSAPKCS1:
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), a.Hash, digest, sig) == nil
	case jose.KindRSAPSS:
		return rsa.VerifyPSS(pub.(*rsa.PublicKey), a.Hash, digest, sig,
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.Hash}) == nil
	}
	return false
}

// String names the key: kid, algorithm and version resource name.
func (s *kmsSigner) String() string {
	return fmt.Sprintf("gcpkms.Signer(kid=%s alg=%s ref=%s)", s.kid, s.alg.Name, s.ref)
}

// GoString keeps %#v to the same.
func (s *kmsSigner) GoString() string { return s.String() }
