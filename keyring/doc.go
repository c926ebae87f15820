// Package keyring manages signing and data-encryption keys through their
// life, as the key-management standard requires: every key has a unique
// kid, an owner, a creation date and a target rotation date (R2.1, R2.4);
// rotation follows the four steps of R3.4; compromise triggers emergency
// rotation (R4); every action is audited (R2.5) and authorised (R6).
//
// Rule numbers (R2.4, T5, ...) are those of the key-management standard;
// docs/COMPLIANCE.md in the repository restates each rule and names the
// code that implements it and the tests that prove it.
//
// # Lifecycle
//
//	Pending --activate--> Active --rotate--> Retiring --grace over--> Retired --> Destroyed
//	   \________________________\_____________\______compromise______> Compromised
//
// Create generates a Pending key, signing nothing; it is published in the
// JWKS (and trusted by VerificationKey) once a second principal has
// approved it, and its pre-publication delay counts from that approval.
// Approve records that approval, Activate makes the key
// its set's one Active key and moves the previous one to Retiring until
// now + grace; Tick retires it then. Rotate starts the same procedure for
// an Active key: the successor is published at once and Tick activates it
// when its pre-publication delay is over. Tick also starts scheduled
// rotations (at RotateAfter of the rotation period, for sets with a
// standing ApproveSchedule) and reports keys past their RotateBy.
//
// # Standing approvals and deadlines
//
// ApproveSchedule is an approver's standing approval of a set's scheduled
// rotation under its current timing policy; WithdrawSchedule (any
// approver) withdraws it. The KeyStore keeps it (ApprovalStore), so it
// holds across restarts and for every replica: Run keeps rotating after a
// restart with no host code. A changed timing policy voids it. A set whose
// Active key passes RotateAfter without one is reported, at most once a
// day, through Tick's error (ErrNotApproved, hence Config.OnTickError)
// and an audit event (rotation.unapproved). Report shows each set's
// approval. Past its RotateBy a signing key signs nothing and a data key
// encrypts nothing (ErrOverdue; decryption goes on), unless
// Config.UnsafeAllowOverdue, which is audited (config.unsafe) when the
// keyring starts and shown in Report.
//
// # Durable configuration
//
// New refuses, next to a durable store (one that does not say otherwise
// through Durable), parts that a restart would lose: an in-memory
// revocation list (unless Config.UnsafeEphemeralRevocations, audited), and
// a provider or key wrapper used by a set or secret whose key-encryption
// key lives only in this process (signer.NewEphemeralWrapper, the
// defaults). With Config.Revocations nil, a store that keeps its own
// durable list (RevocationStore: filestore) provides it.
//
// # Emergency rotation
//
// Under the same standing approval, Tick keeps one standby key per signing
// set (SetPolicy.NoStandby opts out): approved and published ahead of
// time, replaced when it ages. EmergencyRotate validates its input, then,
// each step audited in the order it happens, declares the incident,
// freezes the key, marks it compromised, activates the standby (or,
// without one, a break-glass key flagged until a second principal calls
// Review; Report and Tick surface it), links old and new kid, revokes
// every token of the old kid (and the recorded jtis, as one event) and
// calls the incident hooks outside the administrative lock. A data key
// can be compromised too: its ciphertexts then open only for Rewrap, each
// call audited (or not at all under NoRewrapAfterCompromise), and Report
// lists it until it is destroyed.
//
// # Data-encryption keys
//
// A set of Purpose Encryption holds AES-256-GCM data keys (R1.2, R3.2).
// Create draws 32 random bytes and keeps them only sealed by the set's
// KeyWrapper (Config.Wrappers: local KEK, AWS KMS, GCP KMS, HSM), with
// the kid, set and purpose as additional data; the sealed blob, base64,
// is the key's BackendRef. Encrypt seals under the set's Active key;
// Decrypt picks the key named in the ciphertext header. After rotation the
// previous key (Retiring) only decrypts, never stopping on a schedule: the
// set's Grace is the target by which the host moves its data to the Active
// key (Rewrap), and Report shows each rotated key's RewrapPendingSince.
// Once the data is rewrapped, an approver's ApproveRetire and a second
// principal's Retire end the key; a Retired key refuses to decrypt
// (ErrDataKeyRetired) and a Destroyed one has lost its sealed material
// (ErrDataKeyDestroyed). Unwrapped keys are cached in memory, as ready
// ciphers, for DEKCacheTTL after their unwrap and at most DEKCacheSize of
// them, so Decrypt does not call the KMS for every message.
//
// A ciphertext is, version 1:
//
//	offset  size  field
//	0       2     magic "TK" (0x54 0x4B)
//	2       1     format version, 0x01
//	3       1     n = length of the kid, 1..255
//	4       n     kid of the data key (ASCII)
//	4+n     12    nonce, random per message
//	16+n    ...   AES-256-GCM ciphertext, then its 16-byte tag
//
// The GCM additional data is the header (bytes 0 to 4+n, magic to kid)
// followed by the caller's aad, so neither the kid nor the version can be
// changed without failing authentication. testdata/ciphertext-v1.json is
// a test vector with a fixed key and nonce.
//
// # Runtime secrets
//
// A SecretPolicy (Config.Secrets) declares a named secret (R1.3). Its
// versions are key records of Purpose Secret in the KeyStore, Set
// "secret:"+name, sealed by a KeyWrapper; Secret reads the current one
// into a SecretValue, which prints, logs and marshals redacted and gives
// its value only through Reveal. RotateSecret replaces it at once (R3.3)
// and calls the SecretHooks; the previous version stays readable
// (PreviousSecret, SecretVersion) for the policy's PreviousWindow, or not
// at all when the reason is ReasonLeak. TickSecrets revokes expired
// previous versions in the store and reports overdue secrets.
//
// # Timing rules
//
// A SetPolicy is refused when the rotation period exceeds 90 days (signing)
// or 180 days (data keys, or a shorter legal limit), when pre-publication is
// shorter than the JWKS max-age plus leeway, or when grace is shorter than
// the longest token lifetime plus JWKS max-age plus leeway.
//
// # Access control
//
// Every administrative call reads a Principal from its context
// (WithPrincipal), refuses an id that is not canonical (Principal.Validate:
// no look-alike forms) and asks the Authorizer (RoleAuthorizer by default),
// naming the set it applies to: the key's set for an action on a kid, so
// that an Authorizer can confine a principal to its sets. A call without a
// principal is refused before any lookup; a kid of another set and an
// unknown kid get the same refusal, audited alike. The creator of a key
// cannot approve it, its approver cannot also deploy it, and the officer
// who ran an emergency rotation cannot Review its break-glass key, under
// any case of their ids (Principal.Is). Denials are audited and return
// ErrNoPrincipal, ErrPrincipalID, ErrForbidden,
// ErrApprovalRequired or ErrSelfApproval. Signer, VerificationKey and
// PublicKeys need no principal: they are Core's everyday work.
//
// # Security
//
// The keyring holds no private key material: the KeyStore keeps each key's
// backend reference (for local keys, the key sealed under the host's
// key-encryption key, with its kid as additional data). Signers are opened
// from their backend on first use and never expose the key. Every action
// emits its audit event before it takes effect (Create before the backend
// generates anything); if the sink fails, nothing changes (ErrAudit), and
// an action refused after some of its events were written ends its trail
// with a failure event. A backend key generated for a creation that could
// not complete is destroyed, and that audited. Only an allow-list of
// states verifies (approved Pending, Active, Retiring within grace); a
// store refuses a record with an unknown state or purpose as corrupt.
//
// # Observability
//
// Config.TracerProvider and Config.MeterProvider (otel's global providers
// when nil; the library uses the OpenTelemetry API only, the host installs
// the SDK) trace every administrative action as "tokenkms.keyring.<action>"
// with its audit events as span events, and every call to a key backend
// ("tokenkms.backend.<op>") and to the store ("tokenkms.store.<op>"), with
// their durations and errors as metrics; key age, time to RotateBy per
// kid, Active and overdue keys per set are read from the snapshot when the
// host collects. With no provider installed this costs a few loads per
// signature and allocates nothing. Config.Logger receives the operational
// events (failed actions and ticks, refused audit events, failed hooks,
// overdue keys, the scheduler's transitions). Neither carries a secret, a
// token or key material. A provider that is a nil pointer is refused by
// New (ErrPolicy).
//
// # Concurrency
//
// A Keyring is safe for concurrent use. Lookups read an immutable snapshot
// without locks; administrative calls are serialised within the process,
// and the store's versions (ErrConflict) serialise them across replicas.
// A signer frozen by EmergencyRotate refuses every Sign from the moment
// the freeze returns, including calls that were already waiting.
//
// # Errors
//
// Errors wrap the sentinels of errors.go; match them with errors.Is.
// VerificationKey returns the verifier package's ErrUnknownKID,
// ErrKeyRetired and ErrKeyCompromised.
package keyring
