//go:build cgo

package pkcs11

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ThalesGroup/crypto11"

	"github.com/tokenkms/tokenkms/signer"
)

var _ signer.Adopter = (*Provider)(nil)

// adoptedPrefix starts the reference of an adopted key:
// "pkcs11:adopted:v1:<alg>:<hex id>:<hex kid>:<token label>". An existing
// object keeps its CKA_LABEL (the host may still find it by it), so the
// kid binding that Open checks travels in the reference instead.
const adoptedPrefix = "pkcs11:adopted:v1:"

// Adopt takes an existing key pair of the Provider's token (migration,
// through keyring.Keyring.Import): ref is the hex CKA_ID the pair shares.
// It refuses a pair whose private half is extractable or not sensitive
// (ErrKeyPolicy, also signer.ErrWeakKey), whose public key does not suit alg or is weak, and
// returns its Signer and a reference bound to kid that Open reopens. The
// objects are not modified.
func (p *Provider) Adopt(ctx context.Context, kid, alg, ref string) (signer.Signer, string, error) {
	if err := checkLabel("kid", kid); err != nil {
		return nil, "", err
	}
	a, err := supported(alg)
	if err != nil {
		return nil, "", err
	}
	id, err := hex.DecodeString(ref)
	if err != nil || len(id) == 0 {
		return nil, "", fmt.Errorf("%w: pkcs11: adopt takes the key pair's CKA_ID in hex", signer.ErrBadReference)
	}
	key, err := call(ctx, "adopt "+kid, func() (crypto11.Signer, error) { return p.findPair(id, "") }, nil)
	if errors.Is(err, ErrKeyPolicy) {
		return nil, "", fmt.Errorf("%w: %w", signer.ErrWeakKey, err)
	}
	if err != nil {
		return nil, "", mapErr("adopt "+kid, err)
	}
	if err := signer.CheckImportedKey(alg, key.Public()); err != nil {
		return nil, "", err
	}
	bound := adoptedPrefix + alg + ":" + hex.EncodeToString(id) + ":" + hex.EncodeToString([]byte(kid)) + ":" + p.label
	s, err := p.newSigner(kid, a, bound, key, signer.ErrUnsupportedAlgorithm)
	if err != nil {
		return nil, "", err
	}
	return s, bound, nil
}
