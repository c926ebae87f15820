// Package pkcs11 keeps tokenkms signing keys and key-encryption keys in a
// hardware security module reached over PKCS#11 (tested on SoftHSM2), through
// github.com/ThalesGroup/crypto11.
//
// A *Provider is a signer.Provider: Generate creates an ECDSA P-256/P-384 key
// pair (ES256, ES384) or an RSA key pair (RS256, PS256; 2048 bits or more)
// inside the token, labelled with the kid (CKA_LABEL) under a random CKA_ID,
// and returns a reference "pkcs11:v1:<alg>:<hex CKA_ID>:<token label>" from
// which Open finds it again; Destroy deletes it. The reference names no
// secret: the PIN lives in Config only. The Provider is also a KeyWrapper
// factory: GenerateWrapper creates an AES-256 key in the token and returns
// a *Wrapper (signer.KeyWrapper) that seals with CKM_AES_GCM inside the HSM,
// the caller's aad bound as GCM additional data; OpenWrapper reopens it.
//
// The code that talks to the HSM needs cgo (crypto11 is a cgo package) and
// is built only when cgo is enabled; without cgo this package holds only its
// documentation and error values, so that a CGO_ENABLED=0 build of the
// module still succeeds.
//
// # Security
//
// Private keys and AES keys are generated in the token with CKA_SENSITIVE
// true, CKA_EXTRACTABLE false and CKA_PRIVATE true; private signing keys may
// sign only (no decrypt, derive or unwrap) and AES keys may encrypt and
// decrypt only (no wrap of other token keys). Open and OpenWrapper refuse a
// key that is extractable or not sensitive, and refuse a key pair whose
// CKA_LABEL is not the kid the caller names, so a swapped reference cannot
// make one kid sign with another kid's key.
//
// Sign hashes the JWS signing input in this process and sends only the
// digest to the HSM. The public key is read once, at Generate or Open, and
// cached. Every answer is checked before it is returned: an ECDSA signature
// must be well-formed DER with r and s in [1, n-1] (converted to the JWS
// form r||s); an RSA signature must have the modulus length and verify
// under the cached public key (always: a verification costs a few percent
// of an RSA private-key operation and it stops a faulty RSA-CRT signature,
// which would reveal the key, from leaving the process). Options.VerifyECDSA
// also verifies each ECDSA signature; it is off by default because it costs
// about as much as the HSM round trip on a software token. A response that
// fails a check is reported as signer.ErrBackendIntegrity.
//
// The Wrapper's blob is version(1) || nonce(12) || ciphertext || tag(16).
// The 96-bit nonce is drawn from crypto/rand for every Wrap; under one AES
// key, keep the number of Wraps well below 2^32 (NIST SP 800-38D) by
// rotating the key-encryption key. Wrap and Unwrap accept at most
// MaxWrapSize bytes.
//
// No String, GoString, error or log line of this package contains the PIN,
// key material, plaintext or wrapped blobs: Config.String and the signers'
// String show the module, the token label, the kid, the algorithm and the
// reference only.
//
// # Concurrency
//
// A Provider, its Signers and its Wrappers are safe for concurrent use;
// crypto11 keeps a pool of PKCS#11 sessions (Config.MaxSessions). Every call
// is bounded by the caller's context: a PKCS#11 call cannot be interrupted,
// so when the context ends first the call returns the context's error at
// once and the HSM operation finishes in the background, its result
// discarded (a key pair or AES key created after the caller gave up is
// destroyed). That hand-off to a goroutine costs a scheduler round trip per
// call (tens of microseconds); it is skipped for a context that can never
// end (context.Background), which then runs the PKCS#11 call directly.
// Close the Provider when no call is in flight.
//
// # Errors
//
// PKCS#11 return values are mapped onto the signer package's sentinels:
// object or key handle invalid, or no key with the reference's id and kid,
// give signer.ErrKeyNotFound; CKR_KEY_FUNCTION_NOT_PERMITTED (an operator
// turned CKA_SIGN off: the HSM's way to disable a key) gives
// signer.ErrKeyDisabled; a wrong, locked or expired PIN, or user not logged
// in, gives signer.ErrPermissionDenied; device, token, session and memory
// errors, a closed Provider, and anything unrecognised give
// signer.ErrUnavailable; an unsupported mechanism, curve or key size gives
// signer.ErrUnsupportedAlgorithm; an Unwrap that fails authentication gives
// signer.ErrUnwrap (SoftHSM2 reports a bad GCM tag as CKR_GENERAL_ERROR, so
// during Unwrap that code means authentication failure); a reference that
// cannot be parsed, names another token or an algorithm its key does not
// suit gives signer.ErrBadReference. A key that is extractable or not
// sensitive gives ErrKeyPolicy, bad arguments ErrInvalidArgument, a bad
// Config ErrConfig.
// Context expiry is returned as the context's own error, wrapped.
package pkcs11
