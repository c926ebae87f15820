//go:build cgo

package pkcs11

import (
	"context"
	"crypto"

	"github.com/ThalesGroup/crypto11"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// newTokenSigner returns the Signer of a key pair kept in the token, whose
// public key pub was read once and checked against alg. Each signature is
// one C_Sign of the digest, bounded by the caller's context; the answer is
// checked by signer.NewRemoteSigner as the package documentation says
// (ECDSA signatures verified only with Options.VerifyECDSA). The Signer
// has a method Ref() string returning ref, from which Provider.Open
// reopens the key.
func newTokenSigner(kid string, alg *jose.Alg, ref string, key crypto11.Signer, pub crypto.PublicKey, verifyECDSA bool) (signer.Signer, error) {
	policy := signer.VerifyRSAOnly
	if verifyECDSA {
		policy = signer.VerifyAll
	}
	op := "sign " + kid
	opts := alg.SignerOpts()
	return signer.NewRemoteSigner(signer.RemoteKey{
		KID:           kid,
		Algorithm:     alg.Name,
		Backend:       "pkcs11",
		Ref:           ref,
		Public:        pub,
		Verify:        policy,
		DigestSizeErr: ErrInvalidArgument,
		SignDigest: func(ctx context.Context, digest []byte) ([]byte, error) {
			sig, err := call(ctx, op, func() ([]byte, error) {
				return key.Sign(nil, digest, opts)
			}, nil)
			if err != nil {
				return nil, mapErr(op, err)
			}
			return sig, nil
		},
	})
}
