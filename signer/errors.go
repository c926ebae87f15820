package signer

import "errors"

// Errors returned by this package and, wrapped, by the KMS adapters.
var (
	// ErrUnsupportedAlgorithm: the algorithm is not one this backend creates
	// or one tokenkms signs with.
	ErrUnsupportedAlgorithm = errors.New("signer: unsupported algorithm")
	// ErrUnwrap: wrapped material failed authentication (wrong KEK, wrong
	// kid or other additional data, or tampering).
	ErrUnwrap = errors.New("signer: cannot unwrap key material")
	// ErrBadReference: a key reference that this provider cannot open.
	ErrBadReference = errors.New("signer: bad key reference")
	// ErrKeyNotFound, ErrKeyDisabled, ErrKeyPendingDeletion,
	// ErrThrottled, ErrUnavailable, ErrPermissionDenied: a backend's
	// answer, mapped by the KMS adapters; the backend's own error stays
	// reachable with errors.As.
	ErrKeyNotFound        = errors.New("signer: key not found in backend")
	ErrKeyDisabled        = errors.New("signer: key disabled in backend")
	ErrKeyPendingDeletion = errors.New("signer: key pending deletion in backend")
	ErrThrottled          = errors.New("signer: backend throttled the request")
	ErrUnavailable        = errors.New("signer: backend unavailable")
	ErrPermissionDenied   = errors.New("signer: backend denied permission")
	// ErrBackendIntegrity: the backend's response failed an integrity
	// check (checksum, resource name, signature that does not verify).
	ErrBackendIntegrity = errors.New("signer: backend response failed integrity check")
	// ErrKeyNotActive: the key stopped being its set's Active key (it was
	// rotated) while the caller held its Signer; ask for the Signer again.
	ErrKeyNotActive = errors.New("signer: key no longer active")
	// ErrDigestSize: a digest whose length is not the algorithm's hash size.
	ErrDigestSize = errors.New("signer: digest has the wrong length")
	// ErrConfig: an IssuerConfig or provider configuration is refused.
	ErrConfig = errors.New("signer: invalid configuration")
	// ErrClaims: the claims given to the Issuer are refused.
	ErrClaims = errors.New("signer: claims refused")
	// ErrWeakKey: a key offered for import is weak (RSA under 2048 bits,
	// the ROCA fingerprint) or does not suit the algorithm (type, curve).
	ErrWeakKey = errors.New("signer: weak or unsuitable key")
	// ErrKeyFormat: key material offered for import does not parse as a
	// private key (PEM or JWK).
	ErrKeyFormat = errors.New("signer: unreadable private key")
)
