package gcpkms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// Config configures a Provider.
type Config struct {
	// Client reaches Cloud KMS; the host builds it (credentials, endpoint)
	// and closes it. Required.
	Client Client
	// KeyRing is the key ring new keys are created in:
	// "projects/P/locations/L/keyRings/R". Required.
	KeyRing string
	// ProtectionLevel of new keys: kmspb.ProtectionLevel_HSM (the default,
	// chosen by the zero value) or kmspb.ProtectionLevel_SOFTWARE.
	ProtectionLevel kmspb.ProtectionLevel
	// UnsafeSkipLocalVerify turns off the check of every signature against
	// the cached public key before it is returned. The checksums and the
	// resource name are still checked, so corruption in transit is still
	// caught; what is lost is the defence against a backend that signs the
	// wrong digest or with the wrong key: such a signature would reach a
	// token that no verifier accepts, or one that verifies under another
	// key. The check costs 70 to 90 µs per ES256 signature on a 2-core
	// server (about 30 µs for RS256 and PS256), which is more than 5% of a
	// low-latency round trip. Leave it false unless the latency matters
	// more than that defence.
	UnsafeSkipLocalVerify bool
}

// Provider creates and opens signing keys in Cloud KMS. It implements
// signer.Provider.
type Provider struct {
	client     Client
	keyRing    string
	level      kmspb.ProtectionLevel
	skipVerify bool
}

var _ signer.Provider = (*Provider)(nil)

// NewProvider checks cfg and returns a Provider.
func NewProvider(cfg Config) (*Provider, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: no Client", ErrConfig)
	}
	if !validName(cfg.KeyRing, 3) {
		return nil, fmt.Errorf("%w: key ring %q is not projects/P/locations/L/keyRings/R", ErrConfig, cfg.KeyRing)
	}
	level := cfg.ProtectionLevel
	switch level {
	case kmspb.ProtectionLevel_PROTECTION_LEVEL_UNSPECIFIED:
		level = kmspb.ProtectionLevel_HSM
	case kmspb.ProtectionLevel_HSM, kmspb.ProtectionLevel_SOFTWARE:
	default:
		return nil, fmt.Errorf("%w: protection level %v", ErrConfig, level)
	}
	return &Provider{client: cfg.Client, keyRing: cfg.KeyRing, level: level, skipVerify: cfg.UnsafeSkipLocalVerify}, nil
}

// generateAlgs are the algorithms Generate creates keys for.
var generateAlgs = map[string]kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm{
	"ES256": kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256,
	"ES384": kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384,
	"RS256": kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_2048_SHA256,
	"PS256": kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256,
}

// openAlgs are the Cloud KMS algorithms Open accepts, with their JWS name:
// the Generate ones and the larger RSA moduli of the same schemes.
var openAlgs = map[kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm]string{
	kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256:        "ES256",
	kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:        "ES384",
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_2048_SHA256: "RS256",
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_3072_SHA256: "RS256",
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_4096_SHA256: "RS256",
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256:   "PS256",
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_3072_SHA256:   "PS256",
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_4096_SHA256:   "PS256",
}

// CryptoKeyID is the CryptoKey id Generate gives the key of kid: "tk-",
// kid reduced to the characters Cloud KMS allows, and 16 hex digits of the
// SHA-256 of kid, so that two kids never share an id.
func CryptoKeyID(kid string) string {
	var b strings.Builder
	b.WriteString("tk-")
	for _, c := range []byte(kid) {
		if b.Len() == 3+42 {
			break
		}
		if isIDChar(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(kid))
	b.WriteByte('-')
	b.WriteString(hex.EncodeToString(sum[:8]))
	return b.String()
}

// kidLabel is kid as a label value: lowercase letters, digits, '_' and '-',
// at most 63 characters. It is for people reading the console; the
// binding that Open checks is the CryptoKey id.
func kidLabel(kid string) string {
	var b strings.Builder
	for _, c := range []byte(strings.ToLower(kid)) {
		if b.Len() == 63 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Labels set on every CryptoKey that Generate creates.
const (
	LabelKID       = "tokenkms-kid"
	LabelManagedBy = "managed-by"
)

// Generate creates an ASYMMETRIC_SIGN CryptoKey for alg (ES256, ES384,
// RS256 or PS256; RSA keys are 2048 bits) in the configured key ring, with
// id CryptoKeyID(kid) and the kid in its labels, waits until its first
// version is ENABLED (bounded by ctx), fetches its public key once and
// returns its Signer and the version's resource name as reference.
func (p *Provider) Generate(ctx context.Context, kid, alg string) (signer.Signer, string, error) {
	kalg, ok := generateAlgs[alg]
	if !ok {
		return nil, "", fmt.Errorf("%w: %q (gcpkms creates ES256, ES384, RS256, PS256)", signer.ErrUnsupportedAlgorithm, alg)
	}
	if kid == "" {
		return nil, "", fmt.Errorf("%w: empty kid", signer.ErrBadReference)
	}
	ck, err := p.client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{
		Parent:      p.keyRing,
		CryptoKeyId: CryptoKeyID(kid),
		CryptoKey: &kmspb.CryptoKey{
			Purpose: kmspb.CryptoKey_ASYMMETRIC_SIGN,
			VersionTemplate: &kmspb.CryptoKeyVersionTemplate{
				ProtectionLevel: p.level,
				Algorithm:       kalg,
			},
			Labels: map[string]string{LabelKID: kidLabel(kid), LabelManagedBy: "tokenkms"},
		},
	})
	if err != nil {
		if status.Code(err) == codes.AlreadyExists && ctx.Err() == nil {
			return nil, "", fmt.Errorf("%w: %s: %w", ErrKeyExists, kid, err)
		}
		return nil, "", backendErr(ctx, "create crypto key", err)
	}
	want := p.keyRing + "/cryptoKeys/" + CryptoKeyID(kid)
	if ck.GetName() != want {
		return nil, "", fmt.Errorf("%w: created key is named %q, want %q", signer.ErrBackendIntegrity, ck.GetName(), want)
	}
	ref := want + "/cryptoKeyVersions/1"
	if err := p.waitEnabled(ctx, ref, kalg); err != nil {
		return nil, "", err
	}
	s, err := p.open(ctx, kid, ref)
	if err != nil {
		return nil, "", err
	}
	if s.Algorithm() != alg {
		return nil, "", fmt.Errorf("%w: created key signs %s, want %s", signer.ErrBackendIntegrity, s.Algorithm(), alg)
	}
	return s, ref, nil
}

// Generation polling: Cloud KMS creates asymmetric (and HSM) versions in
// PENDING_GENERATION and enables them shortly after.
const (
	pollFirst = 50 * time.Millisecond
	pollMax   = time.Second
)

func (p *Provider) waitEnabled(ctx context.Context, ref string, alg kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm) error {
	wait := pollFirst
	for {
		v, err := p.client.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: ref})
		if err != nil {
			return backendErr(ctx, "get crypto key version", err)
		}
		if v.GetName() != ref {
			return fmt.Errorf("%w: version answer names %q, want %q", signer.ErrBackendIntegrity, v.GetName(), ref)
		}
		if v.GetAlgorithm() != alg {
			return fmt.Errorf("%w: version algorithm %v, want %v", signer.ErrBackendIntegrity, v.GetAlgorithm(), alg)
		}
		switch v.GetState() {
		case kmspb.CryptoKeyVersion_ENABLED:
			return nil
		case kmspb.CryptoKeyVersion_PENDING_GENERATION:
		default:
			return fmt.Errorf("%w: new version %s is %v", signer.ErrKeyDisabled, ref, v.GetState())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: gcpkms: %s still generating: %w", signer.ErrUnavailable, ref, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, pollMax)
	}
}

// Open reopens the key version ref (a name that Generate returned, or a
// reference that Adopt returned) for kid. The version's CryptoKey id must
// be CryptoKeyID(kid), or for an adopted key the binding its reference
// carries: a reference moved to another kid in the key store is refused
// with signer.ErrBadReference. Open
// makes one call, GetPublicKey, whose answer is checked and cached.
func (p *Provider) Open(ctx context.Context, kid, ref string) (signer.Signer, error) {
	return p.open(ctx, kid, ref)
}

func (p *Provider) open(ctx context.Context, kid, ref string) (signer.Signer, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: empty kid", signer.ErrBadReference)
	}
	name, bound, adopted := strings.Cut(ref, adoptedMark)
	if !validName(name, 5) {
		return nil, fmt.Errorf("%w: %q is not a crypto key version name", signer.ErrBadReference, name)
	}
	switch got := strings.Split(name, "/")[7]; {
	case adopted && bound != CryptoKeyID(kid):
		return nil, fmt.Errorf("%w: adopted key %q is bound to %q, kid %q is %q", signer.ErrBadReference, got, bound, kid, CryptoKeyID(kid))
	case !adopted && got != CryptoKeyID(kid):
		return nil, fmt.Errorf("%w: reference is key %q, kid %q is key %q", signer.ErrBadReference, got, kid, CryptoKeyID(kid))
	}
	return p.load(ctx, kid, name)
}

// load fetches and checks the public key of the version name and builds
// its Signer.
func (p *Provider) load(ctx context.Context, kid, ref string) (signer.Signer, error) {
	pk, err := p.client.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: ref, PublicKeyFormat: kmspb.PublicKey_PEM})
	if err != nil {
		return nil, backendErr(ctx, "get public key", err)
	}
	if pk.GetName() != ref {
		return nil, fmt.Errorf("%w: public key answer names %q, want %q", signer.ErrBackendIntegrity, pk.GetName(), ref)
	}
	if err := checkCRC("pem_crc32c", []byte(pk.GetPem()), pk.GetPemCrc32C()); err != nil {
		return nil, err
	}
	name, ok := openAlgs[pk.GetAlgorithm()]
	if !ok {
		return nil, fmt.Errorf("%w: key algorithm %v", signer.ErrUnsupportedAlgorithm, pk.GetAlgorithm())
	}
	alg, _ := jose.Lookup(name)
	pub, err := parsePEM(pk.GetPem())
	if err != nil {
		return nil, err
	}
	if err := alg.CheckKey(pub); err != nil {
		return nil, fmt.Errorf("%w: public key does not match %v: %w", signer.ErrBackendIntegrity, pk.GetAlgorithm(), err)
	}
	return newSigner(p.client, kid, ref, alg, pub, p.skipVerify)
}

func parsePEM(s string) (crypto.PublicKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("%w: public key is not one PEM PUBLIC KEY block", signer.ErrBackendIntegrity)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", signer.ErrBackendIntegrity, err)
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
		return pub, nil
	}
	return nil, fmt.Errorf("%w: public key of type %T", signer.ErrUnsupportedAlgorithm, pub)
}
