package verifier

import (
	"context"
	"crypto"
	"time"
)

// Key is a public key that may verify tokens, as a KeySource gives it.
type Key struct {
	KID       string
	Set       string
	Algorithm string // the one JWS alg this key verifies
	Public    crypto.PublicKey
}

// KeySource resolves a kid to a verification key. It is implemented by
// *keyring.Keyring (in process) and jwks.RemoteSet (over HTTP).
//
// A kid that names no key gives an error wrapping ErrUnknownKID; a key
// that is known but may no longer verify gives ErrKeyRetired or
// ErrKeyCompromised. VerificationKey is on the hot path: implementations
// answer from memory.
type KeySource interface {
	VerificationKey(ctx context.Context, kid string) (Key, error)
}

// RevocationList records revoked tokens: by jti, until the token would have
// expired anyway, and by kid, every token of that key issued before a
// cutoff (R4.4).
type RevocationList interface {
	RevokeJTI(ctx context.Context, jti string, until time.Time) error
	RevokeKID(ctx context.Context, kid string, issuedBefore time.Time) error
	Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error)
}
