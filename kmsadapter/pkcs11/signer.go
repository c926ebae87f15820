//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/ThalesGroup/crypto11"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// Signer is a signing key kept in the token. It implements signer.Signer
// and signer.DigestSigner. Its public key was read once, when the key was
// generated or opened.
type Signer struct {
	kid      string
	alg      *jose.Alg
	ref      string
	key      crypto11.Signer
	pub      crypto.PublicKey
	verifyEC bool
}

var (
	_ signer.Signer       = (*Signer)(nil)
	_ signer.DigestSigner = (*Signer)(nil)
)

// KID returns the key's kid (its CKA_LABEL).
func (s *Signer) KID() string { return s.kid }

// Algorithm returns the JWS algorithm the key signs with.
func (s *Signer) Algorithm() string { return s.alg.Name }

// Public returns the cached public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Ref returns the reference from which Provider.Open reopens the key.
func (s *Signer) Ref() string { return s.ref }

// String shows kid, algorithm and reference only.
func (s *Signer) String() string {
	return fmt.Sprintf("pkcs11.Signer(kid=%s alg=%s ref=%s)", s.kid, s.alg.Name, s.ref)
}

// GoString keeps %#v from printing the fields.
func (s *Signer) GoString() string { return s.String() }

// Sign hashes signingInput here and has the token sign the digest; it
// returns the JWS signature (r||s for ECDSA).
func (s *Signer) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	return s.SignDigest(ctx, s.alg.Digest(signingInput))
}

// SignDigest has the token sign a digest computed with the algorithm's hash
// and returns the JWS signature, checked as the package documentation says.
func (s *Signer) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != s.alg.Hash.Size() {
		return nil, fmt.Errorf("%w: %s needs a %d-byte digest, got %d", ErrInvalidArgument, s.alg.Name, s.alg.Hash.Size(), len(digest))
	}
	op := "sign " + s.kid
	raw, err := call(ctx, op, func() ([]byte, error) {
		return s.key.Sign(nil, digest, s.alg.SignerOpts())
	}, nil)
	if err != nil {
		return nil, mapErr(op, err)
	}
	if s.alg.Kind == jose.KindEC {
		return s.checkEC(digest, raw)
	}
	return s.checkRSA(digest, raw)
}

// checkEC converts the token's DER signature to r||s, refusing one that is
// malformed or whose r or s is outside [1, n-1], and verifies it if asked.
func (s *Signer) checkEC(digest, der []byte) ([]byte, error) {
	sig, err := s.alg.ToP1363(der)
	if err != nil {
		return nil, fmt.Errorf("%w: pkcs11: sign %s: %w", signer.ErrBackendIntegrity, s.kid, err)
	}
	n := s.alg.Curve.Params().N
	r := new(big.Int).SetBytes(sig[:s.alg.Size])
	v := new(big.Int).SetBytes(sig[s.alg.Size:])
	if r.Cmp(n) >= 0 || v.Cmp(n) >= 0 {
		return nil, fmt.Errorf("%w: pkcs11: sign %s: ECDSA r or s out of range", signer.ErrBackendIntegrity, s.kid)
	}
	if s.verifyEC && !ecdsa.Verify(s.pub.(*ecdsa.PublicKey), digest, r, v) {
		return nil, fmt.Errorf("%w: pkcs11: sign %s: signature does not verify", signer.ErrBackendIntegrity, s.kid)
	}
	return sig, nil
}

// checkRSA refuses an RSA signature of the wrong length or one that does
// not verify under the cached public key.
func (s *Signer) checkRSA(digest, sig []byte) ([]byte, error) {
	pub := s.pub.(*rsa.PublicKey)
	if len(sig) != pub.Size() {
		return nil, fmt.Errorf("%w: pkcs11: sign %s: RSA signature of %d bytes, want %d", signer.ErrBackendIntegrity, s.kid, len(sig), pub.Size())
	}
	var err error
	if s.alg.Kind == jose.KindRSAPSS {
		err = rsa.VerifyPSS(pub, s.alg.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: s.alg.Hash})
	} else {
		err = rsa.VerifyPKCS1v15(pub, s.alg.Hash, digest, sig)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: pkcs11: sign %s: signature does not verify", signer.ErrBackendIntegrity, s.kid)
	}
	return sig, nil
}
