// Package filestore is a keyring.KeyStore for a single-node Core without a
// database: the whole key state (key records and standing approvals)
// lives in one JSON file, rewritten atomically on every change, and the
// revocations in a journal beside it (Revocations, path+".revoked"), which
// keyring.New uses by default with this store.
//
// # Security
//
// The file holds key records only. Private material never appears in
// clear: a record's BackendRef is what the key's provider gave the keyring
// (for local keys, the key sealed under the key-encryption key). Public
// keys are stored as PKIX DER. The file is created with mode 0600 and Open
// refuses a file (or a directory entry that is not a regular file) whose
// mode grants any access to group or others, and a file written by a newer
// format version than this package knows.
//
// Every change writes the complete new state to a temporary file in the
// same directory, syncs it, renames it over the store file and syncs the
// directory. A crash (even SIGKILL or power loss after the rename's sync)
// leaves either the old state or the new one, never a mix; a failed write
// leaves the in-memory state unchanged too. A revocation is appended to
// the journal and synced before its call returns; Open replays it into a
// verifier.MemoryRevocationList that answers lookups, drops a last line
// torn by a crash (its call never returned), and rewrites the journal
// without jtis past their until plus verifier.MaxLeeway. Both files are
// opened the same way: never through a symbolic link, mode 0600.
//
// # Concurrency
//
// A Store is safe for concurrent use by goroutines. Only one process may
// have the file open: Open takes an exclusive advisory lock (flock) on a
// sibling file path+".lock" and fails with ErrLocked if another process
// holds it. The lock is released by Close, or by the kernel when the
// process dies.
//
// # Errors
//
// Open fails with ErrPermissions, ErrFormatVersion, ErrCorrupt or
// ErrLocked; the KeyStore methods return keyring.ErrNotFound,
// keyring.ErrExists and keyring.ErrConflict as the interface requires, and
// ErrClosed after Close.
package filestore
