// Package pgstore keeps the shared key state of several Core replicas in
// PostgreSQL: a keyring.KeyStore (and keyring.BatchUpdater) with optimistic
// concurrency that also keeps the standing approvals (table
// tokenkms_approvals, migration 004), a verifier.RevocationList with an in-memory RevocationCache
// for the verification hot path, a hash-chained audit.Sink, change
// notification for the replicas' in-memory snapshots, and a leader lease so
// that one replica at a time runs the scheduled transitions
// (keyring.Keyring.Tick).
//
// The host applies the schema explicitly with Migrate (idempotent, safe to
// run from every replica at start-up: migrations are serialised by an
// advisory lock and recorded in tokenkms_schema_migrations). Tables are
// created in the connection's current schema, so one database can hold
// several independent stores, one per schema (set search_path).
//
// A replica runs Listen in a goroutine with keyring.Keyring.Refresh as its
// callback, and Refresh on a timer as a backstop; TryLead guards Tick.
//
// Revocations: Store.Revoked queries the database on every call; it is the
// authoritative answer for tools, not for the verify path. A replica builds
// one RevocationCache (Store.RevocationCache), runs its Run method in a
// goroutine and hands the cache to the keyring (keyring.Config.Revocations)
// or the verifier (verifier.WithRevocationList). Its Revoked answers from
// memory; Run reloads the whole list on every revocation change that any
// replica commits (LISTEN/NOTIFY, measured at a few milliseconds on
// loopback) and every ReloadEvery as a backstop; writes go to the database
// and to the local cache at once. A cache that has not loaded, or whose
// last reload started more than MaxStaleness ago, fails closed with
// ErrRevocationsStale, and the verifier rejects the token with
// verifier.ErrRevocationCheck. With CacheConfig.Log the cache also keeps
// the change log that jwks.NewRevocationHandler publishes to verifiers in
// other processes (Since fails closed as Revoked does); each replica's log
// has its own epoch, so serve the feed from one replica or keep each
// client on one.
// A jti stays revoked until its until plus verifier.MaxLeeway
// (verifier.RevocationHorizon), everywhere: Revoked, Purge and the cache's
// reload. keyring.New refuses this store without a Config.Revocations (it
// keeps no default list of its own).
//
// Audit: Store.Emit appends to the tokenkms_audit table a chain built with
// audit.RecordHash, the rule of the file chain (audit.ChainLog), so one
// chain is shared by every replica; VerifyAudit checks it and names the
// first broken row with a *audit.ChainError.
//
// # Security
//
// Rows hold key records only: public keys as PKIX DER and BackendRef, which
// for local keys is the private key sealed under the key-encryption key.
// The database never sees private material in clear. No error or String
// includes a BackendRef, a public key or a token. One partial unique index
// guarantees at most one Active key per set, whatever the replicas'
// snapshots say: a write that would create a second one fails with
// keyring.ErrConflict.
//
// The audit chain detects a changed, removed, reordered or inserted row
// and rows removed from its end (the tip row records the last seq and
// hash); an attacker who can rewrite the rows and the tip together is
// detected only by a head kept elsewhere (AuditHead).
//
// # Concurrency
//
// A Store is safe for concurrent use; every method takes its connection
// from the pool. Update and UpdateBatch are conditional on the stored
// version (UPDATE ... WHERE version = $n), so of concurrent writers of one
// version exactly one wins; a batch is one transaction. Listen holds one
// pool connection for as long as it runs, TryLead one while leading, and
// RevocationCache.Run one for its own listening. Emit locks the chain's
// tip row for its transaction: appends from all replicas are serialised
// into one chain. RevocationCache.Revoked takes no lock.
//
// # Errors
//
// KeyStore methods return keyring.ErrNotFound, keyring.ErrExists and
// keyring.ErrConflict; RevokeJTI and RevokeKID return verifier.ErrArgument
// for an empty jti or kid; Emit returns audit.ErrInvalidEvent for an event
// it refuses; VerifyAudit a *audit.ChainError (audit.ErrChainBroken);
// RevocationCache.Revoked ErrRevocationsStale. Database failures are
// returned wrapped, never with the values that were written.
package pgstore
