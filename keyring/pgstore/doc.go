// Package pgstore keeps the shared key state of several Core replicas in
// PostgreSQL: a keyring.KeyStore (and keyring.BatchUpdater) with optimistic
// concurrency, a verifier.RevocationList, change notification for the
// replicas' in-memory snapshots, and a leader lease so that one replica at
// a time runs the scheduled transitions (keyring.Keyring.Tick).
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
// # Concurrency
//
// A Store is safe for concurrent use; every method takes its connection
// from the pool. Update and UpdateBatch are conditional on the stored
// version (UPDATE ... WHERE version = $n), so of concurrent writers of one
// version exactly one wins; a batch is one transaction. Listen holds one
// pool connection for as long as it runs, TryLead one while leading.
//
// # Errors
//
// KeyStore methods return keyring.ErrNotFound, keyring.ErrExists and
// keyring.ErrConflict; RevokeJTI and RevokeKID return verifier.ErrArgument
// for an empty jti or kid. Database failures are returned wrapped, never
// with the values that were written.
package pgstore
