// Package gcpkms keeps tokenkms keys in Google Cloud KMS: a
// signer.Provider whose signing keys are created and used inside Cloud KMS,
// and a signer.KeyWrapper (Wrapper) that encrypts key material and data
// keys under a Cloud KMS ENCRYPT_DECRYPT key.
//
// The host builds the Cloud KMS client (cloud.google.com/go/kms/apiv1,
// with its credentials) and hands it over as a Client, the small part of
// the client this package calls:
//
//	c, err := kms.NewKeyManagementClient(ctx)
//	p, err := gcpkms.NewProvider(gcpkms.Config{
//		Client:  c,
//		KeyRing: "projects/P/locations/L/keyRings/tokenkms",
//	})
//	s, ref, err := p.Generate(ctx, kid, "ES256")
//
// Generate creates one CryptoKey per kid (id CryptoKeyID(kid), labels
// LabelKID and LabelManagedBy) with ES256, ES384, RS256 or PS256 (RSA 2048)
// at the HSM protection level unless Config says SOFTWARE, waits for its
// first version to be ENABLED, and returns that version's resource name as
// the reference that Open takes back. Other algorithms are refused with
// signer.ErrUnsupportedAlgorithm.
//
// # Security
//
// Private keys never leave Cloud KMS. Sign hashes the JWS signing input
// locally and sends only the digest. Every answer is checked as Google
// recommends: the resource name, verified_digest_crc32c, signature_crc32c,
// pem_crc32c, verified_plaintext_crc32c,
// verified_additional_authenticated_data_crc32c, ciphertext_crc32c and
// plaintext_crc32c; requests carry digest_crc32c, plaintext_crc32c,
// ciphertext_crc32c and additional_authenticated_data_crc32c. Beyond the
// checksums, which only cover transport, every signature is verified with
// the cached public key before it is returned, so a faulty backend never
// yields a token that does not verify. That check costs 70 to 90 µs per
// ES256 signature on a 2-core server: little against a Cloud KMS round
// trip of milliseconds, but more than 5% of a round trip under about
// 1.5 ms. Config.UnsafeSkipLocalVerify turns it off for hosts that need
// the latency more than that defence; the checksums and name checks stay.
// Open binds a reference to its kid: the CryptoKey id must be
// CryptoKeyID(kid). String and GoString show kid, algorithm and resource
// names only.
//
// # Concurrency
//
// Provider, the Signers it returns and Wrapper are safe for concurrent use;
// the public key is fetched once, at Generate or Open, and each signature
// is one AsymmetricSign call. Every call is bounded by the caller's
// context: give one a deadline, since the client retries UNAVAILABLE for up
// to 60 seconds.
//
// # Errors
//
// Backend answers are mapped to the sentinels of package signer, and the
// client's error stays reachable with errors.As (*apierror.APIError) or
// status.Code: NOT_FOUND gives signer.ErrKeyNotFound; FAILED_PRECONDITION
// on a DISABLED version signer.ErrKeyDisabled, on a DESTROY_SCHEDULED or
// DESTROYED one signer.ErrKeyPendingDeletion; RESOURCE_EXHAUSTED
// signer.ErrThrottled; UNAVAILABLE and DEADLINE_EXCEEDED, or the end of the
// caller's context, signer.ErrUnavailable (and the context's error);
// PERMISSION_DENIED and UNAUTHENTICATED signer.ErrPermissionDenied. A
// ciphertext that fails authentication gives signer.ErrUnwrap; an answer
// that fails a check signer.ErrBackendIntegrity. A malformed reference, or
// one that belongs to another kid, gives signer.ErrBadReference. This
// package's own sentinels are in errors.go.
package gcpkms
