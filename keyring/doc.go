// Package keyring manages signing and data-encryption keys through their
// life, as the key-management standard requires: every key has a unique
// kid, an owner, a creation date and a target rotation date (R2.1, R2.4);
// rotation follows the four steps of R3.4; compromise triggers emergency
// rotation (R4); every action is audited (R2.5) and authorised (R6).
//
// # Lifecycle
//
//	Pending --activate--> Active --rotate--> Retiring --grace over--> Retired --> Destroyed
//	   \________________________\_____________\______compromise______> Compromised
//
// Create generates a Pending key: published in the JWKS, signing nothing.
// Approve records a second principal's approval, Activate makes the key
// its set's one Active key and moves the previous one to Retiring until
// now + grace; Tick retires it then. Rotate starts the same procedure for
// an Active key: the successor is published at once and Tick activates it
// when its pre-publication delay is over. Tick also starts scheduled
// rotations (at RotateAfter of the rotation period, for sets with a
// standing ApproveSchedule) and reports keys past their RotateBy.
// EmergencyRotate freezes a compromised key, activates a fresh one at once,
// revokes every token of the old one and calls the incident hooks.
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
// (WithPrincipal) and asks the Authorizer (RoleAuthorizer by default). The
// creator of a key cannot approve it, and its approver cannot also deploy
// it. Denials are audited and return ErrNoPrincipal, ErrForbidden,
// ErrApprovalRequired or ErrSelfApproval. Signer, VerificationKey and
// PublicKeys need no principal: they are Core's everyday work.
//
// # Security
//
// The keyring holds no private key material: the KeyStore keeps each key's
// backend reference (for local keys, the key sealed under the host's
// key-encryption key, with its kid as additional data). Signers are opened
// from their backend on first use and never expose the key. Every action
// emits its audit event before it takes effect; if the sink fails, nothing
// changes (ErrAudit).
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
