package jwks

import "errors"

// Errors of this package. Match them with errors.Is.
var (
	// ErrKey: the KeySource gave a key the handler will not publish: a
	// private key (never published), a key without kid, a duplicate kid, an
	// algorithm outside the JWS table or a key that does not fit its
	// algorithm (RSA under 2048 bits, wrong curve).
	ErrKey = errors.New("jwks: key refused")
	// ErrPrivateKey: the KeySource gave private key material. It also
	// matches ErrKey.
	ErrPrivateKey = errors.New("jwks: private key refused")
	// ErrInsecureURL: a RemoteSet URL that is not https (plain http is
	// allowed only to a loopback host with AllowInsecureLoopback), or a
	// redirect to such a URL.
	ErrInsecureURL = errors.New("jwks: insecure or invalid URL")
	// ErrFetch: the JWKS could not be fetched (network error, timeout,
	// status other than 200 or 304).
	ErrFetch = errors.New("jwks: fetch failed")
	// ErrTooLarge: the JWKS document exceeds the body size limit.
	ErrTooLarge = errors.New("jwks: document too large")
	// ErrMalformed: the document is not a JWK set (not JSON, or no "keys"
	// array).
	ErrMalformed = errors.New("jwks: malformed document")
	// ErrPrivateMaterial: the document publishes private or symmetric key
	// material (a "d", "p", "q", "dp", "dq", "qi", "oth" or "k" member, or
	// kty "oct"). Its publisher leaks secrets, so none of its keys is
	// trusted: the whole document is refused and never replaces the last
	// good set.
	ErrPrivateMaterial = errors.New("jwks: key set publishes private or symmetric key material")
	// ErrNoUsableKeys: every key of the document was skipped (the error
	// names the first few with their SkipReason). The last good set stays
	// in use.
	ErrNoUsableKeys = errors.New("jwks: no usable key in the set")
	// ErrStale: the last good set expired longer ago than the maximum
	// staleness and no refresh has succeeded since. It is returned wrapped
	// together with verifier.ErrKeySource.
	ErrStale = errors.New("jwks: key set stale")
	// ErrClosed: the RemoteSet was closed.
	ErrClosed = errors.New("jwks: remote set closed")
	// ErrOption: an option of NewRemoteSet out of range.
	ErrOption = errors.New("jwks: invalid option")
	// ErrFeedRequest: a revocation feed request with a malformed cursor
	// or wait (the handler answers 400).
	ErrFeedRequest = errors.New("jwks: bad revocation feed request")
	// ErrFeedDocument: a revocation feed document that is not one: no
	// payload, a bad header, manifest or payload, a payload that does
	// not match its signed digest, a range that does not follow the
	// client's cursor, a timestamp in the future.
	ErrFeedDocument = errors.New("jwks: malformed revocation feed document")
	// ErrFeedSignature: a revocation feed document whose signature does
	// not verify with a key of the issuer's JWKS (unknown or revoked kid,
	// wrong algorithm, bad signature).
	ErrFeedSignature = errors.New("jwks: revocation feed signature refused")
	// ErrFeedStale: the newest revocation feed document a RevocationFeed
	// verified is older than its MaxAge. The verifier turns it into
	// verifier.ErrRevocationCheck: tokens are refused, not accepted
	// unchecked.
	ErrFeedStale = errors.New("jwks: revocation feed stale")
	// ErrReadOnly: RevokeJTI or RevokeKID on a RevocationFeed, which only
	// follows the issuer's revocations: revoke on the issuer.
	ErrReadOnly = errors.New("jwks: revocation feed is read-only: revoke on the issuer")
	// ErrStarted: Start called twice.
	ErrStarted = errors.New("jwks: remote set already started")
)
