// Package lifecycletest runs the same end-to-end checks against every key
// backend: a keyring whose signing key set lives in a signer.Provider
// (AWS KMS, Cloud KMS, a PKCS#11 token, or the local provider) goes
// through the whole life of its keys, and a benchmark compares a token
// issued through the library with a bare SDK signature of the same digest.
//
// Run is the lifecycle test. From the first key to an emergency rotation
// it drives the keyring as its operators would, each step by the principal
// whose role allows it (keyringtest's Issuer, Approver, Deployer,
// SecurityOfficer, Core), on a fake clock, and checks the tokens that a
// signer.Issuer mints with verifier.New on the keyring, and the JWKS that
// jwks.NewHandler serves against the public keys the backend itself gives
// for each key (Provider.Open on the key's reference).
//
// Bench is the benchmark: per iteration, one bare SDK signature (given by
// the adapter's test as a Direct), one signature through the adapter's
// Signer and one token through signer.Issuer, interleaved so that load
// from elsewhere hits all three alike; then throughput with 1, 8 and 32
// goroutines, for the SDK and for the Issuer.
//
// Each adapter calls Run and Bench from its own tests; this package holds
// the one copy of both. It is test support: it imports package testing.
package lifecycletest
