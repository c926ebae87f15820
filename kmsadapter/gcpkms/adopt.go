package gcpkms

import (
	"context"
	"fmt"

	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/tokenkms/tokenkms/signer"
)

var _ signer.Adopter = (*Provider)(nil)

// adoptedMark separates an adopted version's name from the kid binding in
// the reference Adopt returns: NAME#adopted-for=CryptoKeyID(kid). An
// existing CryptoKey keeps its id, so the binding that Open checks travels
// in the reference instead.
const adoptedMark = "#adopted-for="

// Adopt takes an existing, enabled Cloud KMS key version (migration,
// through keyring.Keyring.Import): ref is its resource name
// projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V. It
// refuses a version that is not ENABLED, signs another algorithm than
// alg, or has a weak public key (signer.ErrWeakKey), and returns its
// Signer and a reference bound to kid that Open reopens. The key is not
// modified.
func (p *Provider) Adopt(ctx context.Context, kid, alg, ref string) (signer.Signer, string, error) {
	if kid == "" {
		return nil, "", fmt.Errorf("%w: empty kid", signer.ErrBadReference)
	}
	if !validName(ref, 5) {
		return nil, "", fmt.Errorf("%w: %q is not a crypto key version name", signer.ErrBadReference, ref)
	}
	v, err := p.client.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: ref})
	if err != nil {
		return nil, "", backendErr(ctx, "get crypto key version", err)
	}
	if v.GetName() != ref {
		return nil, "", fmt.Errorf("%w: version answer names %q, want %q", signer.ErrBackendIntegrity, v.GetName(), ref)
	}
	if v.GetState() != kmspb.CryptoKeyVersion_ENABLED {
		return nil, "", fmt.Errorf("%w: version %s is %v", signer.ErrKeyDisabled, ref, v.GetState())
	}
	s, err := p.load(ctx, kid, ref)
	if err != nil {
		return nil, "", err
	}
	if s.Algorithm() != alg {
		return nil, "", fmt.Errorf("%w: version %s signs %s, the set signs %s", signer.ErrUnsupportedAlgorithm, ref, s.Algorithm(), alg)
	}
	if err := signer.CheckImportedKey(alg, s.Public()); err != nil {
		return nil, "", err
	}
	return s, ref + adoptedMark + CryptoKeyID(kid), nil
}
