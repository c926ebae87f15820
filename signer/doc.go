// Package signer holds the signing side of tokenkms: the Signer and
// Provider interfaces that every key backend implements, the local
// software provider, the KeyWrapper interface with its AES-256-GCM
// implementation, bridges to and from crypto.Signer, and the Issuer that
// mints RFC 9068 access tokens with a key set's Active key.
//
// Rule numbers (R2.4, T5, ...) are those of the key-management standard;
// docs/COMPLIANCE.md in the repository restates each rule and names the
// code that implements it and the tests that prove it.
//
// # Security
//
// A Signer never returns its private key: no method, String, %v or error
// shows it (R2.3). LocalProvider generates keys in process and hands the
// keyring only a reference that is the PKCS#8 key sealed under the host's
// key-encryption key, with the kid and algorithm bound as additional data:
// a reference moved to another kid does not open. The KMS and HSM
// providers of kmsadapter keep the key in its backend and send it only
// digests; they share NewRemoteSigner, which checks every signature a
// backend returns (form, range, and by default the signature itself:
// skipping that check is named UnsafeVerifyNone). Callers never choose alg
// or kid: the Issuer takes both from the Active key, so rotation never
// touches caller code.
//
// # Concurrency
//
// Signers, providers, wrappers and the Issuer are safe for concurrent use.
//
// # Errors
//
// Errors wrap the sentinels of errors.go. The KMS adapters map their
// backend's errors to ErrKeyNotFound, ErrKeyDisabled, ErrKeyPendingDeletion,
// ErrThrottled, ErrUnavailable and ErrPermissionDenied, keeping the
// backend's own error reachable with errors.As. The Issuer refuses claims
// with ErrClaims and configurations with ErrConfig.
package signer
