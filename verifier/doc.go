// Package verifier checks RFC 9068 JWT access tokens: one Verifier enforces
// one Policy (every check in one place), against keys from a KeySource and
// revocations from a RevocationList. It also holds an in-memory
// RevocationList, the net/http Middleware that answers RFC 6750 (503 with
// Retry-After when the key source or the revocation list is down, never
// invalid_token), and NewIntrospectionHandler, an RFC 7662 introspection
// endpoint that answers from a Verifier for callers the host
// authenticates.
//
// Rule numbers (R2.4, T5, ...) are those of the key-management standard;
// docs/COMPLIANCE.md in the repository restates each rule and names the
// code that implements it and the tests that prove it.
//
//	v, err := verifier.New(keys, verifier.Policy{Issuer: iss, Audience: []string{"api"}})
//	claims, err := v.Verify(ctx, token)
//	mux.Handle("/", verifier.Middleware(v)(handler))
//
// # Security
//
// Strict by default (RFC 8725): compact JWS only; a size cap before any
// decoding; canonical base64url; one JSON object per header and claims set,
// with no repeated member name; "alg" from an allowlist of asymmetric
// algorithms (never "none" or HS*) and equal to the key's own algorithm;
// RSA keys of at least 2048 bits; "typ" at+jwt; the key chosen by "kid"
// through the KeySource only ("jku", "x5u", "x5c", "jwk" and "b64" are
// refused, and so is any "crit") and trusted only if its key set is one
// the Policy names (KeySets: required when the keyring holds several
// signing sets, so that one set's key cannot sign for another's APIs); the
// signature checked before any claim is
// decoded; exp, iat, iss, aud, sub, client_id and jti required; nbf, iat and
// exp with a bounded leeway; a maximum age and lifetime; revocation by jti
// and by kid, failing closed. Errors quote at most a clipped kid, alg, typ
// or claim value, never the token; the Middleware's bodies say nothing.
//
// ECDSA signatures are malleable: if (r, s) verifies, so does (r, n−s),
// and JOSE does not forbid either (RFC 7518 §3.4), so one token may be
// presented in two byte forms. Key replay detection on the jti (Claims.ID),
// as revocation does, never on the token's bytes or their hash; the
// verified-token cache keeps the two forms as two entries, each checked
// against revocation on every hit.
//
// # Verified-token cache
//
// WithCache (off by default) remembers tokens that passed every check,
// keyed by the SHA-256 of their exact bytes (the token itself is never
// stored), in a bounded cache. A hit skips only the decoding and the
// signature: the key is looked up again (retired, compromised or replaced
// keys fail), and exp, nbf, age, lifetime, revocation by jti and by kid
// and the rest of the Policy are checked again. Callers get a copy of the
// claims.
//
// # Observability
//
// WithTracerProvider and WithMeterProvider (otel's global providers when
// not given) trace each Verify as "tokenkms.verify" and record its
// duration, the rejections by reason (the sentinel's label: "expired",
// "signature", "revoked", ...; never the detail, which may quote a claim),
// the token cache's hits and misses, and the size and staleness of the
// RevocationList when it reports them (RevocationSizer,
// RevocationFreshness, through a RevocationSource such as the keyring).
// With no provider installed, Verify asks its tracer and its two
// instruments whether they record, and allocates nothing more. The gRPC
// counterpart of Middleware is the grpcauth subpackage.
//
// # Concurrency
//
// A Verifier is immutable and Verify takes no lock of its own (except the
// per-shard locks of the WithCache token cache): it is safe for concurrent
// use, and as fast as its KeySource and RevocationList.
// MemoryRevocationList is safe for concurrent use; its lookups take no
// lock (they read atomic snapshots of per-shard tables and of the kid
// policies). One made by NewLoggedRevocationList also numbers its changes
// (Cursor, Since, Wait under a mutex of their own, never on the lookup
// path), which jwks.NewRevocationHandler publishes to verifiers in other
// processes.
//
// # Errors
//
// Verify wraps exactly one sentinel of errors.go per rejection (ErrMalformed,
// ErrTooLarge, ErrAlgorithm, ErrHeaderParam, ErrCrit, ErrType,
// ErrMissingKID, ErrUnknownKID, ErrKeyUnusable, ErrKeyRetired,
// ErrKeyCompromised, ErrKeySet, ErrSignature, ErrExpired, ErrNotYetValid,
// ErrIssuedInFuture, ErrTooOld, ErrLifetime, ErrMissingClaim, ErrClaimType,
// ErrIssuer, ErrAudience, ErrMissingJTI, ErrRevoked, ErrRevocationCheck,
// ErrScope, ErrPrincipalType, ErrClientID, ErrKeySource): match with
// errors.Is. New reports an invalid Policy with ErrPolicy, naming the field.
package verifier
