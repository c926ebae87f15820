// Package jwks publishes and consumes JSON Web Key Sets (RFC 7517).
//
// NewHandler serves, in process, the public keys that a KeySource lists
// (the keyring gives its Pending, Active and Retiring signing keys, R3.4,
// R5.1) with the caching headers remote verifiers rely on. RemoteSet is the
// other end: a verifier.KeySource for services that verify tokens in
// another process, fed by such an endpoint.
//
// NewRevocationHandler and RevocationFeed do the same for revocations:
// the handler publishes the issuer's revoked jtis and kid policies as a
// signed feed, and a RevocationFeed is the verifier.RevocationList of a
// service in another process, so that it rejects a revoked token, or the
// tokens of a compromised key, within milliseconds of the issuer's
// RevokeJTI or EmergencyRotate, and refuses every token when it has lost
// the feed for longer than its MaxAge.
//
// The package never imports the keyring: it declares KeySource, which
// *keyring.Keyring implements.
//
// Rule numbers (R2.4, T5, ...) are those of the key-management standard;
// docs/COMPLIANCE.md in the repository restates each rule and names the
// code that implements it and the tests that prove it.
//
// # Revocation feed
//
// The issuer makes its revocation list with verifier.NewLoggedRevocationList
// (given as keyring.Config.Revocations), which numbers every change, and
// serves NewRevocationHandler beside the JWKS:
//
//	list := verifier.NewLoggedRevocationList(nil)
//	ring, _ := keyring.New(ctx, keyring.Config{Revocations: list, ...})
//	feed, _ := jwks.NewRevocationHandler(jwks.RevocationHandlerConfig{Log: list, Keys: ring, Set: "access-tokens", Issuer: iss})
//	mux.Handle("GET /revocations", feed)
//
// A verifying service in another process:
//
//	keys, _ := jwks.NewRemoteSet(ctx, iss+"/.well-known/jwks.json")
//	revs, _ := jwks.NewRevocationFeed(ctx, jwks.RevocationFeedConfig{URL: iss + "/revocations", Keys: keys, Issuer: iss})
//	keys.Start(ctx); revs.Start(ctx)
//	v, _ := verifier.New(keys, policy, verifier.WithRevocationList(revs)) // no Unsafe option
//
// A document is a compact JWS, a line feed, and a binary payload. The JWS
// (typ "tokenkms-revocations+jws", signed by the set's Active key) signs a
// small manifest: the list's epoch, the range of changes (from, to], the
// signing time, and the size and SHA-256 of the payload. The payload lists
// the kid policies (kid, cutoff) and the jtis, each as the first 8 bytes of
// its SHA-256 (verifier.DigestJTI) and its until: 12 bytes a jti, so a
// million revoked jtis are a 12 MB first sync. A request without a cursor
// gets the full content; with "cursor" (the client's last epoch and
// change), the changes since, so a steady-state poll moves only what
// changed (an empty document is under 500 bytes); with "wait", a request at
// the head is held until the next change (long-polling) or the wait ends.
// Documents carry a strong ETag and Cache-Control max-age of the handler's
// Refresh (1 s), and the handler answers If-None-Match with 304.
//
// The client checks the signature with a key of the issuer's JWKS (its
// KeySource, refreshed when the kid is new, as after an emergency
// rotation) before it reads anything else; then the manifest, the payload
// against its digest and the range against its cursor. It merges (a later
// until or cutoff wins, nothing is forgotten before it expires), so a
// document applied twice, an issuer that restarted with a new epoch, or a
// full snapshot after a gap cannot undo a revocation. A kid policy whose
// cutoff lies beyond any iat a verifier accepts revokes the key whole: the
// RemoteSet stops serving it at once (RemoteSet.Exclude), whatever a cached
// JWKS still says, and documents it signs are refused from then on. The
// client's freshness is the signing time of the newest document it
// verified; past MaxAge (default 30 s) Revoked fails with ErrFeedStale and
// the verifier refuses every token with verifier.ErrRevocationCheck.
//
// # Thousands of verifiers
//
// Long-polling costs the issuer one idle connection and one parked
// goroutine per verifier (a few KiB each: ten thousand verifiers are tens
// of MiB), and nothing while nothing changes but one heartbeat per verifier
// per Wait (MaxAge/3, 10 s by default). A change wakes every waiting
// request; they all ask for the changes since the same cursor, and the
// handler signs that document once and serves the same bytes to all (it
// keeps one document per distinct cursor at the current head, and signs
// one again only when it is older than Refresh), so the cost of a change is
// one signature plus, per verifier, the delta's bytes: about 500 bytes and
// a write. A KMS-backed signer costs one KMS call per change and per
// second of heartbeats, not per verifier. The documents are signed and
// carry their own freshness, so nothing between issuer and verifier needs
// to be trusted: with tens of thousands of verifiers, put a CDN or a
// caching reverse proxy in front (the URL names the cursor; Cache-Control
// max-age is Refresh) and let verifiers poll through it (PollInterval
// instead of Wait, since caches do not hold requests): the issuer then
// answers one request per distinct cursor per Refresh, whatever the number
// of verifiers, and a change reaches them within Refresh plus
// PollInterval. A new or restarted verifier's full sync (12 MB per million
// jtis) is served from the cache too.
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
// with ErrStale or ErrClosed when it cannot answer, and
// verifier.ErrKeyCompromised for a kid a revocation feed excluded.
// NewRevocationHandler returns ErrOption; NewRevocationFeed and Sync return
// ErrOption, ErrInsecureURL, ErrFetch, ErrTooLarge, ErrFeedDocument or
// ErrFeedSignature; its Revoked fails with ErrFeedStale (the verifier's
// ErrRevocationCheck) or ErrClosed, and its RevokeJTI and RevokeKID with
// ErrReadOnly.
package jwks
