package keyring

import "errors"

// Errors of the keyring and its stores; match with errors.Is.
var (
	ErrNotFound         = errors.New("keyring: key not found")
	ErrExists           = errors.New("keyring: key already exists")
	ErrConflict         = errors.New("keyring: concurrent update (stale version)")
	ErrUnknownSet       = errors.New("keyring: unknown key set")
	ErrIllegalState     = errors.New("keyring: illegal state transition")
	ErrNoActiveKey      = errors.New("keyring: no active key")
	ErrPrePublication   = errors.New("keyring: pre-publication delay not elapsed")
	ErrPolicy           = errors.New("keyring: invalid policy")
	ErrNoOwner          = errors.New("keyring: key owner required")
	ErrNoPrincipal      = errors.New("keyring: no principal in context")
	ErrPrincipalID      = errors.New("keyring: invalid principal id")
	ErrForbidden        = errors.New("keyring: forbidden")
	ErrApprovalRequired = errors.New("keyring: approval required")
	ErrSelfApproval     = errors.New("keyring: principal cannot approve own change")
	ErrFrozen           = errors.New("keyring: key frozen")
	ErrOverdue          = errors.New("keyring: key past its rotation date")
	ErrAudit            = errors.New("keyring: audit sink failed; action not taken")
	ErrBackend          = errors.New("keyring: key backend failed")
	ErrWrongPurpose     = errors.New("keyring: wrong key purpose")
	ErrCorruptRecord    = errors.New("keyring: key record with an unknown state or purpose")
	ErrReviewOverdue    = errors.New("keyring: break-glass key not reviewed in time")
	ErrIncident         = errors.New("keyring: emergency rotation incomplete")
	ErrConfig           = errors.New("keyring: configuration refused")
	ErrNotApproved      = errors.New("keyring: rotation due without a standing approval")

	// Envelope encryption (Encrypt, Decrypt, Rewrap).
	ErrCiphertext         = errors.New("keyring: malformed ciphertext")
	ErrCiphertextVersion  = errors.New("keyring: unknown ciphertext format or version")
	ErrUnknownDataKey     = errors.New("keyring: ciphertext names an unknown data key")
	ErrDecrypt            = errors.New("keyring: ciphertext authentication failed")
	ErrDataKeyRetired     = errors.New("keyring: data key retired")
	ErrDataKeyDestroyed   = errors.New("keyring: data key destroyed")
	ErrDataKeyCompromised = errors.New("keyring: data key compromised")

	// Runtime secrets.
	ErrUnknownSecret = errors.New("keyring: unknown secret")
	ErrSecretUnset   = errors.New("keyring: secret has no such version")
	ErrSecretRevoked = errors.New("keyring: secret version revoked")
	ErrSecretValue   = errors.New("keyring: invalid secret value")
	ErrSecretHook    = errors.New("keyring: secret hook failed")
)

// ErrImport reports a key import that is refused: no key or two, a
// backend that cannot import, a key that does not sign as it should. A weak
// or unsuitable key also wraps signer.ErrWeakKey.
var ErrImport = errors.New("keyring: key import refused")
