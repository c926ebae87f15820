package signer

import (
	"context"
	"crypto"
)

// Signer produces JWS signatures with one key whose private part stays in
// its home (memory of this process, a KMS, an HSM). It looks like
// crypto.Signer with a context first and the JWS conventions built in: Sign
// takes the JWS signing input (not a digest) and returns the JWS signature
// bytes (r||s for ECDSA).
type Signer interface {
	KID() string
	Algorithm() string // "ES256", "ES384", "EdDSA", "RS256", "PS256"
	Public() crypto.PublicKey
	Sign(ctx context.Context, signingInput []byte) ([]byte, error)
}

// Provider creates and reopens signing keys in one backend. The key is
// generated inside the backend and never leaves it in clear.
//
// Generate takes the kid that the keyring chose for the new key: backends
// bind it to the key (the local provider uses it as additional data of the
// wrapped key; KMS backends tag or label the key with it). It returns the
// Signer and an opaque reference from which Open reopens the same key.
type Provider interface {
	Generate(ctx context.Context, kid, alg string) (Signer, string, error)
	Open(ctx context.Context, kid, ref string) (Signer, error)
}

// ActiveKeys gives the Signer of the one Active key of a key set. It is
// implemented by *keyring.Keyring and keeps this package free of the keyring.
type ActiveKeys interface {
	Signer(ctx context.Context, set string) (Signer, error)
}

// KeyWrapper encrypts key material under a key-encryption key kept
// elsewhere: a local AES key, AWS KMS, Google Cloud KMS or an HSM. aad is
// bound to the ciphertext: Unwrap fails unless it is given the same aad.
type KeyWrapper interface {
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}
