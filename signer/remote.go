package signer

import (
	"context"
	"crypto"
	"crypto/rsa"
	"fmt"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// VerifyPolicy says which signatures a remote signer checks against the
// key's public key before returning them. The zero value, VerifyAll, is
// the safe default.
type VerifyPolicy int

// The verification policies. Whatever the policy, every signature is also
// checked for form: an ECDSA signature must be strict DER with r and s in
// [1, n-1], an RSA signature exactly as long as the modulus.
const (
	// VerifyAll verifies every signature.
	VerifyAll VerifyPolicy = iota
	// VerifyRSAOnly verifies RSA signatures (a faulty RSA-CRT signature
	// would reveal the private key; a PSS salt other than the hash length
	// would be refused by JWS verifiers) and takes ECDSA signatures on the
	// backend's word: an ECDSA signature made with another key, or over
	// another digest, passes.
	VerifyRSAOnly
	// UnsafeVerifyNone verifies nothing: a backend that returns the
	// signature of another key or message mints tokens that no verifier
	// accepts, and a faulty RSA signature leaves the process.
	UnsafeVerifyNone
)

// String names the policy.
func (p VerifyPolicy) String() string {
	switch p {
	case VerifyAll:
		return "VerifyAll"
	case VerifyRSAOnly:
		return "VerifyRSAOnly"
	case UnsafeVerifyNone:
		return "UnsafeVerifyNone"
	}
	return fmt.Sprintf("VerifyPolicy(%d)", int(p))
}

// RemoteKey describes a key kept in a backend (a KMS, an HSM) that signs
// digests. NewRemoteSigner turns it into a Signer. Every field but Verify
// is required.
type RemoteKey struct {
	KID       string
	Algorithm string // a JWS algorithm with a digest form: not EdDSA
	// Backend names the backend in String and errors: "awskms".
	Backend string
	// Ref is the backend's name for the key (an ARN, a resource name, a
	// provider reference). It is shown in String and errors.
	Ref string
	// Public is the key's public key, read once from the backend.
	Public crypto.PublicKey
	// SignDigest asks the backend to sign digest, which has the length of
	// the algorithm's hash, and returns the backend's raw signature: ASN.1
	// DER for ECDSA, the PKCS#1 v1.5 or PSS signature for RSA. It is bound
	// by ctx and maps the backend's errors itself: they are returned as
	// they are.
	SignDigest func(ctx context.Context, digest []byte) ([]byte, error)
	// Verify says which signatures are verified with Public before they
	// are returned; VerifyAll when zero.
	Verify VerifyPolicy
	// DigestSizeErr, when set, is a backend's own sentinel that the error
	// for a digest of the wrong length wraps besides ErrDigestSize
	// (awskms.ErrDigestSize, pkcs11.ErrInvalidArgument).
	DigestSizeErr error
}

// NewRemoteSigner returns the Signer (and DigestSigner) of a remote key.
// Sign hashes the signing input in this process and sends the backend only
// the digest. Each signature the backend returns is checked before it is
// returned, as k.Verify says; an ECDSA signature is converted to r||s. A
// signature that fails a check is refused with an error wrapping
// ErrBackendIntegrity. The signer also has a method Ref() string that
// returns k.Ref, and its String and GoString show backend, kid, algorithm
// and reference only.
//
// It refuses a RemoteKey with a missing field or an unknown policy
// (ErrConfig), or whose algorithm is unknown, has no digest form or does
// not suit the public key (ErrUnsupportedAlgorithm).
func NewRemoteSigner(k RemoteKey) (Signer, error) {
	switch {
	case k.KID == "":
		return nil, fmt.Errorf("%w: remote key: empty KID", ErrConfig)
	case k.Backend == "":
		return nil, fmt.Errorf("%w: remote key %s: empty Backend", ErrConfig, k.KID)
	case k.Ref == "":
		return nil, fmt.Errorf("%w: remote key %s: empty Ref", ErrConfig, k.KID)
	case k.Public == nil:
		return nil, fmt.Errorf("%w: remote key %s: no Public key", ErrConfig, k.KID)
	case k.SignDigest == nil:
		return nil, fmt.Errorf("%w: remote key %s: no SignDigest function", ErrConfig, k.KID)
	case k.Verify < VerifyAll || k.Verify > UnsafeVerifyNone:
		return nil, fmt.Errorf("%w: remote key %s: unknown %v", ErrConfig, k.KID, k.Verify)
	}
	a, ok := jose.Lookup(k.Algorithm)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, k.Algorithm)
	}
	if a.Hash == 0 {
		return nil, fmt.Errorf("%w: %s signs the message, not a digest", ErrUnsupportedAlgorithm, a.Name)
	}
	if err := a.CheckKey(k.Public); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
	}
	verify := k.Verify == VerifyAll || k.Verify == VerifyRSAOnly && a.Kind != jose.KindEC
	return &remoteSigner{key: k, alg: a, verify: verify}, nil
}

// remoteSigner is the Signer of a RemoteKey. It is immutable and safe for
// concurrent use if the backend's SignDigest is.
type remoteSigner struct {
	key    RemoteKey
	alg    *jose.Alg
	verify bool // the policy, resolved for this algorithm
}

var (
	_ Signer       = (*remoteSigner)(nil)
	_ DigestSigner = (*remoteSigner)(nil)
)

func (s *remoteSigner) KID() string              { return s.key.KID }
func (s *remoteSigner) Algorithm() string        { return s.alg.Name }
func (s *remoteSigner) Public() crypto.PublicKey { return s.key.Public }

// Ref returns the backend's name for the key.
func (s *remoteSigner) Ref() string { return s.key.Ref }

// String shows backend, kid, algorithm and reference: there is no secret
// to show, and nothing else is shown either.
func (s *remoteSigner) String() string {
	return fmt.Sprintf("%s.Signer(kid=%s alg=%s ref=%s)", s.key.Backend, s.key.KID, s.alg.Name, s.key.Ref)
}

// GoString keeps %#v to the same fields.
func (s *remoteSigner) GoString() string { return s.String() }

// Sign hashes signingInput here and has the backend sign the digest.
func (s *remoteSigner) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	return s.SignDigest(ctx, s.alg.Digest(signingInput))
}

// SignDigest has the backend sign digest, computed with the algorithm's
// hash, and returns the checked JWS signature (r||s for ECDSA).
func (s *remoteSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != s.alg.Hash.Size() {
		err := fmt.Errorf("%w: %d-byte digest, %s needs %d", ErrDigestSize, len(digest), s.alg.Name, s.alg.Hash.Size())
		if s.key.DigestSizeErr != nil {
			err = fmt.Errorf("%w: %w", s.key.DigestSizeErr, err)
		}
		return nil, err
	}
	raw, err := s.key.SignDigest(ctx, digest)
	if err != nil {
		return nil, err
	}
	sig := raw
	if s.alg.Kind == jose.KindEC {
		if sig, err = s.alg.ToP1363(raw); err != nil {
			return nil, s.integrityError(err.Error())
		}
	} else if n := s.key.Public.(*rsa.PublicKey).Size(); len(sig) != n {
		return nil, s.integrityError(fmt.Sprintf("RSA signature of %d bytes, want %d", len(sig), n))
	}
	if s.verify {
		if err := s.alg.VerifyDigest(s.key.Public, digest, sig); err != nil {
			return nil, s.integrityError("signature does not verify with the key's public key")
		}
	}
	return sig, nil
}

func (s *remoteSigner) integrityError(what string) error {
	return fmt.Errorf("%w: %s: sign %s: %s", ErrBackendIntegrity, s.key.Backend, s.key.Ref, what)
}
