package pkcs11

import "errors"

// Errors of this package. Backend failures are reported with the signer
// package's sentinels (signer.ErrKeyNotFound, signer.ErrPermissionDenied,
// signer.ErrUnavailable, ...), wrapping the PKCS#11 error so that
// errors.As(err, new(pkcs11.Error)) of github.com/miekg/pkcs11 still finds
// the CKR_ code. Match all of them with errors.Is.
var (
	// ErrConfig: a Config or Options value that New or NewFromToken refuses
	// (missing module path, token label or PIN, RSA smaller than 2048 bits).
	ErrConfig = errors.New("pkcs11: invalid configuration")
	// ErrInvalidArgument: a call argument that is refused before the HSM is
	// asked (empty kid or label, digest of the wrong length, plaintext
	// larger than MaxWrapSize).
	ErrInvalidArgument = errors.New("pkcs11: invalid argument")
	// ErrKeyPolicy: Open or OpenWrapper found the key but refuses it because
	// its attributes would let its value leave the token (CKA_EXTRACTABLE
	// true or CKA_SENSITIVE false).
	ErrKeyPolicy = errors.New("pkcs11: key attributes refused")
)
