// Package awskms plugs AWS KMS into tokenkms: a signer.Provider whose keys
// are created and used inside KMS, and a signer.KeyWrapper that seals key
// material and data keys with a symmetric KMS key (envelope encryption).
//
// The host builds the SDK client (credentials, region, retries, endpoint)
// and passes it in; this package only calls the methods listed in Client:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	p, err := awskms.NewProvider(kms.NewFromConfig(cfg), nil)
//	s, ref, err := p.Generate(ctx, kid, "ES256") // keep ref (the key ARN) in the key record
//	s, err = p.Open(ctx, kid, ref)               // later, in any replica
//
// Algorithms: ES256 (ECC_NIST_P256), ES384 (ECC_NIST_P384), RS256 and
// PS256 (RSA_2048 by default, RSA_3072 or RSA_4096 by Options.RSABits).
// Others are refused with signer.ErrUnsupportedAlgorithm.
//
// # Security
//
// Private keys never leave KMS: Sign hashes the JWS signing input locally
// and sends only the digest (MessageType DIGEST). Every key that Generate
// creates is tagged with its kid (TagKID) and algorithm (TagAlg); Open
// takes only a key ARN (never an alias, which could be moved to another
// key) and refuses a key not tagged with the kid it is asked for.
//
// Responses are checked before use: the key ARN and algorithm echoed by
// KMS, the form and range of ECDSA signatures, the public key against the
// key spec. Every RSA signature is verified with the cached public key
// before it is returned (this also refuses a PSS signature whose salt is
// not the hash length, which JWS verifiers would reject; the local-kms
// emulator signs PSS with the maximum salt, so PS256 fails there with
// signer.ErrBackendIntegrity while it works against AWS KMS). ECDSA
// signatures are verified too with Options.VerifyECDSA.
//
// KeyWrapper binds aad through the KMS encryption context, as the SHA-256
// of aad, and pins one key ARN for Encrypt and Decrypt. Plaintext sizes
// are checked before any call, so a plaintext never reaches a KMS error
// message. String, GoString and errors show kids, algorithms and ARNs,
// never digests, plaintexts or signatures.
//
// # Concurrency
//
// Provider, the Signers it returns and KeyWrapper are immutable after
// construction and safe for concurrent use; concurrency is bounded only by
// the SDK client's HTTP transport and the KMS request quotas. The public
// key is fetched once, at Generate or Open: Sign is one KMS call.
//
// # Errors
//
// Every call is bounded by the caller's context; a call cut short by it
// returns an error matching context.DeadlineExceeded or context.Canceled.
// KMS answers are mapped to the signer package's sentinels, with the SDK
// error still reachable through errors.As:
//
//	NotFoundException                      signer.ErrKeyNotFound
//	DisabledException                      signer.ErrKeyDisabled
//	KMSInvalidStateException               signer.ErrKeyPendingDeletion, ErrKeyDisabled or ErrUnavailable, from DescribeKey's KeyState
//	LimitExceeded, Throttling, HTTP 429    signer.ErrThrottled
//	AccessDenied, bad credentials, 401/403 signer.ErrPermissionDenied
//	KMSInternal, DependencyTimeout, KeyUnavailable, HTTP 5xx, network  signer.ErrUnavailable
//	InvalidCiphertext, IncorrectKey        signer.ErrUnwrap
//	InvalidKeyUsage, UnsupportedOperation  signer.ErrUnsupportedAlgorithm
//	InvalidArn                             signer.ErrBadReference
//	any other KMS refusal                  ErrRequestRejected
//
// A response that fails a check gives signer.ErrBackendIntegrity.
package awskms
