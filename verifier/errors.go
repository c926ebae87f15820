package verifier

import "errors"

// Errors returned by Verify, each wrapped with detail that never includes
// the token. Match them with errors.Is.
var (
	ErrMalformed       = errors.New("verifier: malformed token")
	ErrTooLarge        = errors.New("verifier: token too large")
	ErrAlgorithm       = errors.New("verifier: algorithm refused")
	ErrHeaderParam     = errors.New("verifier: header parameter refused") // jku, x5u, x5c, jwk, b64
	ErrCrit            = errors.New("verifier: critical header parameter not understood")
	ErrType            = errors.New("verifier: wrong token type")
	ErrMissingKID      = errors.New("verifier: missing kid")
	ErrUnknownKID      = errors.New("verifier: unknown kid")
	ErrKeyUnusable     = errors.New("verifier: kid present but unusable") // the KeySource names why
	ErrKeyRetired      = errors.New("verifier: key retired")
	ErrKeyCompromised  = errors.New("verifier: key compromised")
	ErrKeySet          = errors.New("verifier: key set not trusted")
	ErrSignature       = errors.New("verifier: bad signature")
	ErrExpired         = errors.New("verifier: token expired")
	ErrNotYetValid     = errors.New("verifier: token not yet valid")
	ErrTooOld          = errors.New("verifier: token older than maximum age")
	ErrLifetime        = errors.New("verifier: token lifetime exceeds maximum")
	ErrIssuedInFuture  = errors.New("verifier: token issued in the future")
	ErrMissingClaim    = errors.New("verifier: required claim missing")
	ErrClaimType       = errors.New("verifier: claim of the wrong type")
	ErrIssuer          = errors.New("verifier: wrong issuer")
	ErrAudience        = errors.New("verifier: wrong audience")
	ErrMissingJTI      = errors.New("verifier: missing jti")
	ErrRevoked         = errors.New("verifier: token revoked")
	ErrScope           = errors.New("verifier: insufficient scope")
	ErrPrincipalType   = errors.New("verifier: principal type refused")
	ErrClientID        = errors.New("verifier: client id refused")
	ErrRevocationCheck = errors.New("verifier: revocation list unavailable")
	ErrKeySource       = errors.New("verifier: key source unavailable")
	ErrPolicy          = errors.New("verifier: invalid policy")

	// ErrArgument: a RevocationList call with an empty jti or kid.
	ErrArgument = errors.New("verifier: invalid argument")

	// ErrNotLogged: Since, Wait or Cursor on a MemoryRevocationList that
	// keeps no change log (make it with NewLoggedRevocationList).
	ErrNotLogged = errors.New("verifier: revocation list keeps no change log")
)

// reasons labels each sentinel for telemetry (the tokenkms.reason
// attribute of rejections): a fixed word, never the detail, which may
// quote a claim.
var reasons = []struct {
	err   error
	label string
}{
	{ErrMalformed, "malformed"}, {ErrTooLarge, "too_large"}, {ErrAlgorithm, "algorithm"},
	{ErrHeaderParam, "header_param"}, {ErrCrit, "crit"}, {ErrType, "type"},
	{ErrMissingKID, "missing_kid"}, {ErrUnknownKID, "unknown_kid"}, {ErrKeyUnusable, "key_unusable"}, {ErrKeyRetired, "key_retired"},
	{ErrKeyCompromised, "key_compromised"}, {ErrSignature, "signature"}, {ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"}, {ErrTooOld, "too_old"}, {ErrLifetime, "lifetime"},
	{ErrIssuedInFuture, "issued_in_future"}, {ErrMissingClaim, "missing_claim"},
	{ErrClaimType, "claim_type"}, {ErrIssuer, "issuer"}, {ErrAudience, "audience"},
	{ErrMissingJTI, "missing_jti"}, {ErrRevoked, "revoked"}, {ErrScope, "scope"},
	{ErrPrincipalType, "principal_type"}, {ErrClientID, "client_id"},
	{ErrRevocationCheck, "revocation_check"}, {ErrKeySource, "key_source"},
}

// reason is the label of the sentinel err wraps, "other" if none.
func reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}
