// Package jose holds the narrow compact-JWS code that tokenkms signs and
// verifies with: the algorithm table, signature creation and checking on
// crypto/*, strict base64url, the strict single-pass JSON scanner used for
// headers and claims, and the encoding and decoding of tokenkms.Claims.
// Nothing outside tokenkms may import it.
//
// # Security
//
// Every decoder here is strict: base64url must be canonical and unpadded;
// a header or claims set must be exactly one JSON object with no repeated
// top-level member name (compared after unescaping, so "al\u0067" repeats
// "alg"), valid UTF-8, no lone surrogate escape, bounded nesting, and no
// trailing data; registered claims have strict JSON types. The package
// checks form only: which algorithms, header parameters and claim values are
// acceptable is the verifier's policy.
//
// # Performance
//
// The verify path avoids reflection and map[string]any: ScanObject walks a
// header or claims set once, returning each member's raw text, and
// DecodeClaims turns the registered claims into fields without a second
// parse; strings share memory with the decoded payload. Only claims outside
// the registered set go through encoding/json.
//
// # Concurrency
//
// Everything here is stateless and safe for concurrent use.
//
// # Errors
//
// ErrBase64, ErrSyntax, ErrDuplicate, ErrType and ErrEncode report form
// errors; ErrUnsupportedAlg, ErrKeyMismatch and ErrBadSignature report
// signature errors. Messages may quote a clipped member name, never a
// value.
package jose
