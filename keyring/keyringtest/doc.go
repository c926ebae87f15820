// Package keyringtest gives Core's unit tests a complete in-memory tokenkms
// and gives key stores their conformance suite.
//
// New returns a Fixture: a keyring with one Active local key (created,
// approved and deployed by three test principals), an Issuer, a Verifier,
// the audit recorder, the revocation list and a fake Clock, wired together.
// Its helpers (Token, Rotate, EndGrace, Compromise) drive the lifecycle
// without real time passing. TestKeyStore is the suite every
// keyring.KeyStore implementation runs.
package keyringtest
