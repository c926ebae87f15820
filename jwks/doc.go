// Package jwks publishes and consumes JSON Web Key Sets (RFC 7517).
//
// NewHandler serves, in process, the public keys that a KeySource lists
// (the keyring gives its Pending, Active and Retiring signing keys, R3.4,
// R5.1) with the caching headers remote verifiers rely on. RemoteSet is the
// other end: a verifier.KeySource for services that verify tokens in
// another process, fed by such an endpoint.
//
// The package never imports the keyring: it declares KeySource, which
// *keyring.Keyring implements.
//
// Rule numbers (R2.4, T5, ...) are those of the key-management standard;
// docs/COMPLIANCE.md in the repository restates each rule and names the
// code that implements it and the tests that prove it.
//
// # Security
//
// The handler publishes only public keys: each JWK is built with jwx from
// the crypto public key and carries kty, the key's public members, kid, alg
// and "use":"sig". A private key, a key without kid, a duplicate kid or a
// key that does not fit its algorithm makes the handler answer 500 (the
// reason goes to WithErrorHandler) rather than publish anything wrong.
//
// RemoteSet fetches over https only (plain http only to 127.0.0.1, ::1 or
// localhost with AllowInsecureLoopback, redirects included), caps the body
// (1 MiB) and bounds each fetch (10 s). It keeps only keys a verifier may
// use: kid set, "use" absent or "sig", "key_ops" absent or with "verify",
// EC P-256/384/521, RSA of at least 2048 bits without the ROCA
// fingerprint, or Ed25519, and an alg that is allowed and fits the key. A
// key without "alg" (RFC 7517 makes it optional; Microsoft Entra ID omits
// it) verifies the allowed algorithms its type fits: ES256, ES384 or ES512
// by curve, EdDSA, or the RSA ones (the verifier's Policy narrows them).
// Every other key is skipped with a SkipReason from a fixed list, reported
// in three places: a log line (WithLogger), Stats and Skipped, and the
// error of a lookup of that kid (verifier.ErrKeyUnusable, "kid present but
// unusable: <reason>", not "unknown kid").
//
// A document is refused as a whole, and the last good set stays in use for
// at most WithMaxStale past its expiry, when it is not a JWK set
// (ErrMalformed), when no key is usable (ErrNoUsableKeys), and when it
// publishes any private or symmetric key material (ErrPrivateMaterial): a
// publisher that leaks one secret makes all its keys suspect. Two usable
// keys with one kid are both skipped. A kid that disappears from the
// document is dropped at the next fetch. Errors and log lines quote a kid
// clipped to 64 bytes, never key material.
//
// A set past its expiry refreshes itself, started or not: the first lookup
// after expiry starts a fetch in the background (at most one per minimum
// refresh interval) and answers from the last good set meanwhile.
//
// A flood of tokens with unknown kids cannot turn into a flood of fetches:
// one fetch per minimum refresh interval at most for unknown kids,
// single-flight, and recent misses are cached. That budget is their own:
// background and expiry fetches do not use it up, so a key published just
// after a background fetch is found on first use. Only the caller that
// triggers the fetch waits for it (bounded by its context; a fetch already
// in flight, which may have read the document before the key was
// published, is awaited first); the others fail at once with
// verifier.ErrUnknownKID.
//
// # Concurrency
//
// The handler and RemoteSet are safe for concurrent use. RemoteSet answers
// VerificationKey from an immutable snapshot without taking a lock on the
// hit path; a fetch builds a new snapshot and swaps it in.
//
// # Errors
//
// The handler's refusals wrap ErrKey (and ErrPrivateKey for private
// material). RemoteSet construction and Refresh return ErrOption,
// ErrInsecureURL, ErrFetch, ErrTooLarge, ErrMalformed, ErrNoUsableKeys or
// ErrPrivateMaterial; VerificationKey returns errors wrapping
// verifier.ErrUnknownKID for a kid it does not know,
// verifier.ErrKeyUnusable for a kid it skipped, and verifier.ErrKeySource
// with ErrStale or ErrClosed when it cannot answer.
package jwks
