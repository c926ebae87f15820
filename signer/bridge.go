package signer

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// DigestSigner is implemented by Signers that can sign a digest the caller
// computed (every Signer of this module except EdDSA ones, which sign the
// message). The signature is in JWS form.
type DigestSigner interface {
	SignDigest(ctx context.Context, digest []byte) ([]byte, error)
}

// FromCryptoSigner makes a Signer of a crypto.Signer: a key kept in an HSM,
// a KMS through its own SDK, or in memory. The key must suit alg (curve,
// RSA of at least 2048 bits). ECDSA signatures are converted to r||s.
func FromCryptoSigner(kid, alg string, cs crypto.Signer) (Signer, error) {
	a, ok := jose.Lookup(alg)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	if kid == "" {
		return nil, errors.New("signer: empty kid")
	}
	if err := a.CheckKey(cs.Public()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	return &cryptoSigner{kid: kid, alg: a, key: cs}, nil
}

type cryptoSigner struct {
	kid string
	alg *jose.Alg
	key crypto.Signer
}

func (s *cryptoSigner) KID() string              { return s.kid }
func (s *cryptoSigner) Algorithm() string        { return s.alg.Name }
func (s *cryptoSigner) Public() crypto.PublicKey { return s.key.Public() }

func (s *cryptoSigner) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.alg.Sign(s.key, signingInput)
}

func (s *cryptoSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if s.alg.Hash == 0 {
		return nil, fmt.Errorf("%w: %s signs the message, not a digest", ErrUnsupportedAlgorithm, s.alg.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.alg.SignDigest(s.key, digest)
}

// String names the key, never its material.
func (s *cryptoSigner) String() string {
	return fmt.Sprintf("signer(kid=%s alg=%s)", s.kid, s.alg.Name)
}

// GoString keeps %#v from printing the private key.
func (s *cryptoSigner) GoString() string { return s.String() }

// AsCryptoSigner returns a crypto.Signer view of s, for code that wants the
// standard interface (x509 certificate requests, TLS). ECDSA signatures come
// back ASN.1 DER as crypto.Signer requires. The key must be a DigestSigner,
// or EdDSA (whose crypto.Signer form signs the message itself). Sign uses
// ctx for every call.
func AsCryptoSigner(ctx context.Context, s Signer) (crypto.Signer, error) {
	a, ok := jose.Lookup(s.Algorithm())
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, s.Algorithm())
	}
	ds, isDigest := s.(DigestSigner)
	if a.Hash != 0 && !isDigest {
		return nil, fmt.Errorf("%w: signer %s cannot sign a digest", ErrUnsupportedAlgorithm, s.KID())
	}
	return &stdSigner{ctx: ctx, s: s, ds: ds, alg: a}, nil
}

type stdSigner struct {
	ctx context.Context
	s   Signer
	ds  DigestSigner
	alg *jose.Alg
}

func (c *stdSigner) Public() crypto.PublicKey { return c.s.Public() }

func (c *stdSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != c.alg.Hash {
		return nil, fmt.Errorf("%w: %s needs hash %v", ErrUnsupportedAlgorithm, c.alg.Name, c.alg.Hash)
	}
	if c.alg.Hash == 0 {
		return c.s.Sign(c.ctx, digest)
	}
	sig, err := c.ds.SignDigest(c.ctx, digest)
	if err != nil || c.alg.Kind != jose.KindEC {
		return sig, err
	}
	return c.alg.ToDER(sig)
}
