// Package verifiertest holds the conformance suite that every
// verifier.RevocationList implementation passes: the in-memory list of
// package verifier and the PostgreSQL list of keyring/pgstore.
//
// Call TestRevocationList from a test of the implementation's package,
// giving it a constructor that returns an empty list reading the time from
// the clock it is handed.
package verifiertest
