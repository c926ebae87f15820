package gcpkms

import "errors"

// Errors of this package. Backend failures are reported with the sentinels
// of package signer (signer.ErrKeyNotFound, signer.ErrKeyDisabled,
// signer.ErrBackendIntegrity, ...), wrapping the client's own error.
var (
	// ErrConfig: a Config or a key name that this package refuses.
	ErrConfig = errors.New("gcpkms: invalid configuration")
	// ErrKeyExists: Generate found a CryptoKey already created for this
	// kid (kids are never reused; a CryptoKey is never deleted).
	ErrKeyExists = errors.New("gcpkms: a crypto key already exists for this kid")
	// ErrDigestSize: SignDigest was given a digest whose length is not the
	// output size of the algorithm's hash.
	ErrDigestSize = errors.New("gcpkms: digest size does not match the algorithm")
	// ErrTooLarge: Wrap was given more than MaxWrapSize bytes of plaintext
	// or additional data.
	ErrTooLarge = errors.New("gcpkms: plaintext or additional data too large")
)
