package pgstore

import "errors"

// Errors of the PostgreSQL store; match with errors.Is. Key conflicts are
// reported with the keyring's sentinels (keyring.ErrNotFound, ErrExists,
// ErrConflict) and refused revocation arguments with verifier.ErrArgument.
var (
	ErrMigration  = errors.New("pgstore: schema migration failed")
	ErrSchema     = errors.New("pgstore: database schema newer than this build")
	ErrInvalidKey = errors.New("pgstore: invalid key record")
	ErrCorrupt    = errors.New("pgstore: stored record does not decode")
)
