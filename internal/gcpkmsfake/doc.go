// Package gcpkmsfake is an in-process Google Cloud KMS server for tests: the
// real gRPC service (kmspb.KeyManagementServiceServer) served on 127.0.0.1
// with real cryptography, so that the real cloud.google.com/go/kms client
// talks to it exactly as it talks to Google.
//
// It implements what tokenkms uses: key rings; crypto keys for
// ASYMMETRIC_SIGN (EC_SIGN_P256_SHA256, EC_SIGN_P384_SHA384,
// RSA_SIGN_PKCS1_2048_SHA256, RSA_SIGN_PSS_2048_SHA256) and ENCRYPT_DECRYPT
// (GOOGLE_SYMMETRIC_ENCRYPTION, AES-256-GCM); versions, primary version,
// enable/disable and scheduled destruction; GetPublicKey, AsymmetricSign,
// Encrypt and Decrypt with every CRC32C integrity field checked on requests
// and filled on responses, as Cloud KMS does. A version that is not ENABLED
// answers FAILED_PRECONDITION ("<name> is not enabled, current state is:
// DISABLED."), an unknown resource NOT_FOUND.
//
// Faults (SetFaults) corrupt responses after the server has built them
// (checksums, names, payload bytes, the verified_* flags), make the backend
// sign the wrong digest, answer every call with a status code, delay every
// call, or keep new versions in PENDING_GENERATION for a few reads: the
// adapters' tests use them to prove each integrity check.
//
// # Security
//
// This is a test double: keys live in process memory and are lost on Close.
// It listens on 127.0.0.1 only, without TLS or authentication.
//
// # Concurrency
//
// A Server is safe for concurrent use; one mutex guards its state.
package gcpkmsfake
