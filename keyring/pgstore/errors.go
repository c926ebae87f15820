package pgstore

import "errors"

// Errors of the PostgreSQL store; match with errors.Is. Key conflicts are
// reported with the keyring's sentinels (keyring.ErrNotFound, ErrExists,
// ErrConflict), refused revocation arguments with verifier.ErrArgument,
// refused audit events with audit.ErrInvalidEvent and a broken audit chain
// with a *audit.ChainError (audit.ErrChainBroken).
var (
	ErrMigration  = errors.New("pgstore: schema migration failed")
	ErrSchema     = errors.New("pgstore: database schema newer than this build")
	ErrInvalidKey = errors.New("pgstore: invalid key record")
	ErrCorrupt    = errors.New("pgstore: stored record does not decode")
	// ErrRevocationsStale: a RevocationCache that has not been loaded, or
	// whose last reload is older than its maximum staleness, refuses to
	// answer (fail closed).
	ErrRevocationsStale = errors.New("pgstore: revocation cache not loaded or stale")
	// ErrCacheConfig: a CacheConfig that contradicts itself.
	ErrCacheConfig = errors.New("pgstore: invalid revocation cache configuration")
)
