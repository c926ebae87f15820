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
	ErrForbidden        = errors.New("keyring: forbidden")
	ErrApprovalRequired = errors.New("keyring: approval required")
	ErrSelfApproval     = errors.New("keyring: principal cannot approve own change")
	ErrFrozen           = errors.New("keyring: key frozen")
	ErrOverdue          = errors.New("keyring: key past its rotation date")
	ErrAudit            = errors.New("keyring: audit sink failed; action not taken")
	ErrBackend          = errors.New("keyring: key backend failed")
	ErrWrongPurpose     = errors.New("keyring: wrong key purpose")
)
