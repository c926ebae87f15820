//go:build cgo

package pkcs11

import (
	"crypto/elliptic"
	"fmt"

	"github.com/ThalesGroup/crypto11"
)

// Token is the part of *crypto11.Context that this package uses. New opens a
// *crypto11.Context; NewFromToken takes one the host opened itself, or a
// fake that wraps one (tests inject faults through it).
type Token interface {
	GenerateECDSAKeyPairWithAttributes(public, private crypto11.AttributeSet, curve elliptic.Curve) (crypto11.Signer, error)
	GenerateRSAKeyPairWithAttributes(public, private crypto11.AttributeSet, bits int) (crypto11.SignerDecrypter, error)
	FindKeyPairs(id, label []byte) ([]crypto11.Signer, error)
	GenerateSecretKeyWithAttributes(template crypto11.AttributeSet, bits int, cipher *crypto11.SymmetricCipher) (*crypto11.SecretKey, error)
	FindKeys(id, label []byte) ([]*crypto11.SecretKey, error)
	GetAttributes(key any, attributes []crypto11.AttributeType) (crypto11.AttributeSet, error)
}

var _ Token = (*crypto11.Context)(nil)

// DefaultRSABits is the modulus size of RSA keys when Options.RSABits is 0.
const DefaultRSABits = 2048

// Options tune a Provider, whichever way its token was opened.
type Options struct {
	// RSABits is the modulus size of the RSA keys Generate creates for RS256
	// and PS256: 0 (DefaultRSABits), or at least 2048.
	RSABits int
	// VerifyECDSA verifies every ECDSA signature under the cached public key
	// before returning it. RSA signatures are always verified.
	VerifyECDSA bool
}

// Config says how New reaches the token.
type Config struct {
	// Module is the path of the PKCS#11 library, such as
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel selects the token (slot numbers change; labels do not).
	TokenLabel string
	// PIN is the user PIN. It is never printed, returned, logged or
	// marshalled to JSON.
	PIN string `json:"-"`
	// MaxSessions bounds the PKCS#11 sessions kept open: 0 for crypto11's
	// default, otherwise at least 2.
	MaxSessions int
	Options
}

// String shows the module and the token, never the PIN.
func (c Config) String() string {
	return fmt.Sprintf("pkcs11.Config(module=%s token=%s pin=<redacted>)", c.Module, c.TokenLabel)
}

// GoString keeps %#v from printing the PIN.
func (c Config) GoString() string { return c.String() }

// gcmNonceSize is the GCM nonce length the Wrapper uses (96 bits, the
// standard size; crypto11 defaults to 16 bytes).
const gcmNonceSize = 12

// New opens the token cfg names and logs in. The Provider owns the
// connection: Close releases it.
func New(cfg Config) (*Provider, error) {
	switch {
	case cfg.Module == "":
		return nil, fmt.Errorf("%w: module path is empty", ErrConfig)
	case cfg.TokenLabel == "":
		return nil, fmt.Errorf("%w: token label is empty", ErrConfig)
	case cfg.PIN == "":
		return nil, fmt.Errorf("%w: PIN is empty", ErrConfig)
	case cfg.MaxSessions < 0 || cfg.MaxSessions == 1:
		return nil, fmt.Errorf("%w: MaxSessions must be 0 or at least 2", ErrConfig)
	}
	if err := cfg.Options.check(); err != nil {
		return nil, err
	}
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path:        cfg.Module,
		TokenLabel:  cfg.TokenLabel,
		Pin:         cfg.PIN,
		MaxSessions: cfg.MaxSessions,
		GCMIVLength: gcmNonceSize,
	})
	if err != nil {
		return nil, mapErr("open token "+cfg.TokenLabel, err)
	}
	p, err := NewFromToken(ctx, cfg.TokenLabel, cfg.Options)
	if err != nil {
		ctx.Close()
		return nil, err
	}
	p.owned = ctx
	return p, nil
}

// NewFromToken returns a Provider over a token the caller opened and
// closes. tokenLabel is the label of that token; it goes into every
// reference, and Open refuses references to another token. A
// *crypto11.Context must be configured with GCMIVLength 12 for Wrappers to
// work.
func NewFromToken(tok Token, tokenLabel string, opts Options) (*Provider, error) {
	if tok == nil {
		return nil, fmt.Errorf("%w: nil Token", ErrConfig)
	}
	if tokenLabel == "" {
		return nil, fmt.Errorf("%w: token label is empty", ErrConfig)
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.RSABits == 0 {
		opts.RSABits = DefaultRSABits
	}
	return &Provider{tok: tok, label: tokenLabel, opts: opts}, nil
}

func (o Options) check() error {
	if o.RSABits != 0 && o.RSABits < DefaultRSABits {
		return fmt.Errorf("%w: RSABits %d is below %d", ErrConfig, o.RSABits, DefaultRSABits)
	}
	return nil
}
