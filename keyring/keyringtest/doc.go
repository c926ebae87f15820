// Package keyringtest gives Core's unit tests a complete in-memory tokenkms
// and gives key stores their conformance suite.
//
// New (or NewT in a test) returns a Fixture: a keyring with one Active
// local key (created, approved and deployed by three test principals), an
// Issuer, a Verifier, the audit recorder, the revocation list and a fake
// Clock, wired together. Options set the key set's policy and the issuer's
// lifetimes. Its helpers drive the lifecycle without real time passing
// (Rotate, EndGrace, Compromise), issue tokens (Token, TokenFor) and give a
// handler test the context Middleware would (Context). TestKeyStore is the suite every
// keyring.KeyStore implementation runs.
package keyringtest
