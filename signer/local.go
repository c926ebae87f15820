package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// LocalRSABits is the modulus size of RSA keys the local provider creates.
const LocalRSABits = 2048

// localRefPrefix starts every local key reference: "local.v1.<alg>.<blob>".
const localRefPrefix = "local.v1."

// LocalProvider creates software keys inside this process. The private key
// is generated here, used here, and leaves only wrapped by the
// KeyWrapper: the reference that Generate returns (and the KeyStore keeps)
// is the PKCS#8 key sealed under the wrapper's key-encryption key, with the
// kid and the algorithm bound as additional data.
type LocalProvider struct {
	wrapper KeyWrapper
}

// NewLocalProvider returns a provider that wraps its keys with w.
func NewLocalProvider(w KeyWrapper) (*LocalProvider, error) {
	if w == nil {
		return nil, fmt.Errorf("signer: local provider needs a KeyWrapper")
	}
	return &LocalProvider{wrapper: w}, nil
}

// Durable reports whether the keys this provider wraps outlive the
// process: false under NewEphemeralWrapper (keyring.New refuses it next to
// a durable store).
func (p *LocalProvider) Durable() bool {
	d, ok := p.wrapper.(interface{ Durable() bool })
	return !ok || d.Durable()
}

func localAAD(kid, alg string) []byte {
	return []byte("tokenkms local key v1\x00" + alg + "\x00" + kid)
}

// Generate creates a key for alg: ES256, ES384, ES512, EdDSA, or an RS*/PS*
// algorithm (RSA of LocalRSABits bits).
func (p *LocalProvider) Generate(ctx context.Context, kid, alg string) (Signer, string, error) {
	a, ok := jose.Lookup(alg)
	if !ok {
		return nil, "", fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	var key crypto.Signer
	var err error
	switch a.Kind {
	case jose.KindEC:
		key, err = ecdsa.GenerateKey(a.Curve, rand.Reader)
	case jose.KindRSAPKCS1, jose.KindRSAPSS:
		key, err = rsa.GenerateKey(rand.Reader, LocalRSABits)
	case jose.KindEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, "", fmt.Errorf("signer: generate %s key: %w", alg, err)
	}
	return p.seal(ctx, kid, alg, key)
}

// Import takes an existing private key (migration): it refuses a key that
// does not suit alg or is weak (CheckImportedKey, ErrWeakKey), then seals
// it at once as Generate seals a key it made: the reference is the only
// form in which it is stored.
func (p *LocalProvider) Import(ctx context.Context, kid, alg string, key crypto.Signer) (Signer, string, error) {
	if key == nil {
		return nil, "", fmt.Errorf("%w: no key", ErrKeyFormat)
	}
	if err := CheckImportedKey(alg, key.Public()); err != nil {
		return nil, "", err
	}
	return p.seal(ctx, kid, alg, key)
}

// seal wraps key under the KEK, bound to kid and alg, and returns its
// Signer and reference.
func (p *LocalProvider) seal(ctx context.Context, kid, alg string, key crypto.Signer) (Signer, string, error) {
	s, err := FromCryptoSigner(kid, alg, key)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("signer: encode key: %w", err)
	}
	wrapped, err := p.wrapper.Wrap(ctx, der, localAAD(kid, alg))
	clear(der)
	if err != nil {
		return nil, "", fmt.Errorf("signer: wrap key: %w", err)
	}
	return s, localRefPrefix + alg + "." + base64.RawURLEncoding.EncodeToString(wrapped), nil
}

// Open unwraps a key that Generate created for kid.
func (p *LocalProvider) Open(ctx context.Context, kid, ref string) (Signer, error) {
	rest, ok := strings.CutPrefix(ref, localRefPrefix)
	alg, blob, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return nil, fmt.Errorf("%w: not a local key reference", ErrBadReference)
	}
	wrapped, err := base64.RawURLEncoding.DecodeString(blob)
	if err != nil {
		return nil, fmt.Errorf("%w: bad encoding", ErrBadReference)
	}
	der, err := p.wrapper.Unwrap(ctx, wrapped, localAAD(kid, alg))
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("%w: unwrapped material is not a key", ErrBadReference)
	}
	cs, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: unwrapped key cannot sign", ErrBadReference)
	}
	return FromCryptoSigner(kid, alg, cs)
}
