package gcpkms

import (
	"context"
	"crypto"
	"fmt"

	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// newSigner returns the Signer of the Cloud KMS CryptoKeyVersion ref, whose
// public key pub was fetched once and checked against alg. Each signature
// is one AsymmetricSign call of the digest; the answer must name this
// version, confirm the digest's checksum and carry the signature's
// checksum. signer.NewRemoteSigner then checks the signature's form and
// verifies it under pub, unless skipVerify (Config.UnsafeSkipLocalVerify).
func newSigner(client Client, kid, ref string, alg *jose.Alg, pub crypto.PublicKey, skipVerify bool) (signer.Signer, error) {
	policy := signer.VerifyAll
	if skipVerify {
		policy = signer.UnsafeVerifyNone
	}
	return signer.NewRemoteSigner(signer.RemoteKey{
		KID:           kid,
		Algorithm:     alg.Name,
		Backend:       "gcpkms",
		Ref:           ref,
		Public:        pub,
		Verify:        policy,
		DigestSizeErr: ErrDigestSize,
		SignDigest: func(ctx context.Context, digest []byte) ([]byte, error) {
			d := &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: digest}}
			if alg.Hash == crypto.SHA384 {
				d = &kmspb.Digest{Digest: &kmspb.Digest_Sha384{Sha384: digest}}
			}
			resp, err := client.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
				Name:         ref,
				Digest:       d,
				DigestCrc32C: crc32c(digest),
			})
			if err != nil {
				return nil, backendErr(ctx, "asymmetric sign", err)
			}
			if resp.GetName() != ref {
				return nil, fmt.Errorf("%w: signature answer names %q, want %q", signer.ErrBackendIntegrity, resp.GetName(), ref)
			}
			if !resp.GetVerifiedDigestCrc32C() {
				return nil, fmt.Errorf("%w: backend did not verify digest_crc32c", signer.ErrBackendIntegrity)
			}
			if err := checkCRC("signature_crc32c", resp.GetSignature(), resp.GetSignatureCrc32C()); err != nil {
				return nil, err
			}
			return resp.GetSignature(), nil
		},
	})
}
