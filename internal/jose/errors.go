package jose

import "errors"

// Errors of this package. Callers map them to their own vocabulary.
var (
	ErrUnsupportedAlg = errors.New("jose: unsupported algorithm")
	ErrKeyMismatch    = errors.New("jose: key does not match algorithm")
	ErrBadSignature   = errors.New("jose: signature does not verify")
	// ErrBase64: a segment that is not canonical unpadded base64url.
	ErrBase64 = errors.New("jose: invalid base64url")
	// ErrSyntax: not one well-formed JSON object (or not a compact JWS).
	ErrSyntax = errors.New("jose: invalid JSON")
	// ErrDuplicate: an object repeats a member name at the top level.
	ErrDuplicate = errors.New("jose: duplicate member name")
	// ErrType: a registered member holds a value of the wrong JSON type or
	// range.
	ErrType = errors.New("jose: member of the wrong type")
	// ErrEncode: a value that cannot be encoded (invalid UTF-8, a
	// registered claim name in Extra, a value encoding/json refuses).
	ErrEncode = errors.New("jose: cannot encode")
)
