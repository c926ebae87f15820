package verifier

import (
	"context"
	"crypto"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key is a public key that may verify tokens, as a KeySource gives it.
type Key struct {
	KID       string
	Set       string
	Algorithm string // the one JWS alg this key verifies
	// Algorithms lists the JWS algs of a key that may verify several, when
	// Algorithm is empty: a JWK published without "alg" (RFC 7517 §4.4),
	// e.g. an RSA key that verifies RS256 and PS256. A token's alg must
	// still be in the Policy's allowlist.
	Algorithms []string
	Public     crypto.PublicKey
}

// Allows reports whether the key may verify a token signed with alg.
func (k Key) Allows(alg string) bool {
	return alg != "" && (k.Algorithm == alg || slices.Contains(k.Algorithms, alg))
}

// algorithms names the key's algs for an error.
func (k Key) algorithms() string {
	if k.Algorithm != "" {
		return strconv.Quote(k.Algorithm)
	}
	return strconv.Quote(strings.Join(k.Algorithms, " "))
}

// KeySource resolves a kid to a verification key. It is implemented by
// *keyring.Keyring (in process) and jwks.RemoteSet (over HTTP).
//
// A kid that names no key gives an error wrapping ErrUnknownKID; a kid
// whose key is published but cannot be used (jwks.RemoteSet: a key of a
// type, alg or strength it refuses) ErrKeyUnusable; a key that is known but
// may no longer verify gives ErrKeyRetired or ErrKeyCompromised. VerificationKey is on the hot path: implementations
// answer from memory.
type KeySource interface {
	VerificationKey(ctx context.Context, kid string) (Key, error)
}

// SetLister is implemented by a KeySource whose keys belong to named key
// sets (*keyring.Keyring): New checks Policy.KeySets against the sets it
// names. A KeySource that is not a SetLister names no sets.
type SetLister interface {
	// SigningSets names the key sets whose keys VerificationKey may give.
	SigningSets() []string
}

// RevocationList records revoked tokens: by jti, until the token would have
// expired anyway, and by kid, every token of that key issued before a
// cutoff (R4.4).
//
// A jti revoked until a time stays revoked until RevocationHorizon of it
// (until + MaxLeeway): a verifier accepts a token up to its exp plus its
// leeway, and a revoked token must not verify again in that window. Both
// RevokeJTI and RevokeKID refuse a time outside the range
// CheckRevocationTime accepts (ErrArgument).
type RevocationList interface {
	RevokeJTI(ctx context.Context, jti string, until time.Time) error
	RevokeKID(ctx context.Context, kid string, issuedBefore time.Time) error
	Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error)
}

// The range of times a RevocationList accepts: from the Unix epoch to the
// end of year 9999 (what RFC 3339, JSON and every store represent).
var (
	MinRevocationTime = time.Unix(0, 0).UTC()
	MaxRevocationTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// CheckRevocationTime refuses a revocation time outside
// [MinRevocationTime, MaxRevocationTime] (the zero time included), with an
// error wrapping ErrArgument that names the argument.
func CheckRevocationTime(name string, t time.Time) error {
	if t.Before(MinRevocationTime) || t.After(MaxRevocationTime) {
		return fmt.Errorf("%w: %s %s is outside the representable range [%s, %s]", ErrArgument, name,
			t.UTC().Format(time.RFC3339Nano), MinRevocationTime.Format(time.RFC3339), MaxRevocationTime.Format(time.RFC3339))
	}
	return nil
}

// RevocationHorizon is how long a jti revoked until until stays revoked:
// until + MaxLeeway, the latest a verifier with the largest leeway
// accepts a token whose exp is until.
func RevocationHorizon(until time.Time) time.Time { return until.Add(MaxLeeway) }
