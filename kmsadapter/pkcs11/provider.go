//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// Provider creates and opens signing keys and key-encryption keys in one
// PKCS#11 token. It implements signer.Provider.
type Provider struct {
	tok   Token
	label string
	opts  Options
	owned *crypto11.Context // closed by Close when New opened it
}

var _ signer.Provider = (*Provider)(nil)

// refPrefix starts every reference: "pkcs11:v1:<alg>:<hex id>:<token label>".
// The token label comes last because it may itself contain ':'.
const refPrefix = "pkcs11:v1:"

// wrapAlg is the algorithm field of a Wrapper's reference.
const wrapAlg = "A256GCM"

// idSize is the length of the random CKA_ID given to every new key.
const idSize = 16

// maxLabel bounds kids and wrapper labels written into CKA_LABEL.
const maxLabel = 255

// String names the token, never the PIN.
func (p *Provider) String() string { return "pkcs11.Provider(token=" + p.label + ")" }

// GoString keeps %#v from printing the fields.
func (p *Provider) GoString() string { return p.String() }

// Close releases the token connection if New opened it; keys and Signers
// of the Provider are unusable afterwards (signer.ErrUnavailable). It does
// nothing for a Provider made by NewFromToken, whose caller owns the token.
func (p *Provider) Close() error {
	if p.owned == nil {
		return nil
	}
	return p.owned.Close()
}

func (p *Provider) ref(alg string, id []byte) string {
	return refPrefix + alg + ":" + hex.EncodeToString(id) + ":" + p.label
}

// parseRef returns the algorithm and the CKA_ID a reference names, after
// checking that it names this Provider's token and, for an adopted key,
// that it is bound to kid. label is the CKA_LABEL the key must carry: kid
// for a key Generate made, none ("") for an adopted one, whose binding the
// reference carries instead.
func (p *Provider) parseRef(ref, kid string) (alg string, id []byte, label string, err error) {
	rest, ok := strings.CutPrefix(ref, refPrefix)
	n, label := 3, kid
	if !ok {
		rest, ok = strings.CutPrefix(ref, adoptedPrefix)
		n, label = 4, ""
	}
	parts := strings.SplitN(rest, ":", n)
	if !ok || len(parts) != n || parts[0] == "" {
		return "", nil, "", fmt.Errorf("%w: not a pkcs11 v1 reference", signer.ErrBadReference)
	}
	id, err = hex.DecodeString(parts[1])
	if err != nil || len(id) == 0 {
		return "", nil, "", fmt.Errorf("%w: bad key id", signer.ErrBadReference)
	}
	if n == 4 {
		if kid == "" || parts[2] != hex.EncodeToString([]byte(kid)) {
			return "", nil, "", fmt.Errorf("%w: adopted key is bound to another kid than %q", signer.ErrBadReference, kid)
		}
		parts = append(parts[:2], parts[3])
	}
	if parts[2] != p.label {
		return "", nil, "", fmt.Errorf("%w: key is on token %q, this provider uses %q", signer.ErrBadReference, parts[2], p.label)
	}
	return parts[0], id, label, nil
}

func checkLabel(what, s string) error {
	if s == "" || len(s) > maxLabel {
		return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrInvalidArgument, what, maxLabel)
	}
	return nil
}

func newID() ([]byte, error) {
	id := make([]byte, idSize)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("pkcs11: key id: %w", err)
	}
	return id, nil
}

// attrs builds an AttributeSet; every value is of a type crypto11 accepts.
func attrs(kv map[crypto11.AttributeType]any) crypto11.AttributeSet {
	s := crypto11.NewAttributeSet()
	for k, v := range kv {
		s[k] = p11.NewAttribute(k, v)
	}
	return s
}

// Generate creates a key pair for alg (ES256, ES384, RS256, PS256) in the
// token, CKA_LABEL kid, CKA_ID random, the private half sensitive,
// non-extractable and sign-only, and returns its Signer and reference.
func (p *Provider) Generate(ctx context.Context, kid, alg string) (signer.Signer, string, error) {
	if err := checkLabel("kid", kid); err != nil {
		return nil, "", err
	}
	a, err := supported(alg)
	if err != nil {
		return nil, "", err
	}
	id, err := newID()
	if err != nil {
		return nil, "", err
	}
	label := []byte(kid)
	public := attrs(map[crypto11.AttributeType]any{
		p11.CKA_ID: id, p11.CKA_LABEL: label, p11.CKA_TOKEN: true,
		p11.CKA_VERIFY: true, p11.CKA_ENCRYPT: false, p11.CKA_WRAP: false,
	})
	private := attrs(map[crypto11.AttributeType]any{
		p11.CKA_ID: id, p11.CKA_LABEL: label, p11.CKA_TOKEN: true, p11.CKA_PRIVATE: true,
		p11.CKA_SIGN: true, p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false,
		p11.CKA_DECRYPT: false, p11.CKA_UNWRAP: false, p11.CKA_DERIVE: false,
	})
	if a.Kind == jose.KindEC {
		// CKA_ENCRYPT/DECRYPT/WRAP/UNWRAP are not EC key attributes.
		delete(public, p11.CKA_ENCRYPT)
		delete(public, p11.CKA_WRAP)
		delete(private, p11.CKA_DECRYPT)
		delete(private, p11.CKA_UNWRAP)
	}
	gen := func() (crypto11.Signer, error) {
		if a.Kind == jose.KindEC {
			return p.tok.GenerateECDSAKeyPairWithAttributes(public, private, a.Curve)
		}
		return p.tok.GenerateRSAKeyPairWithAttributes(public, private, p.opts.RSABits)
	}
	key, err := call(ctx, "generate "+alg, gen, func(k crypto11.Signer) { _ = k.Delete() })
	if err != nil {
		return nil, "", mapErr("generate "+alg, err)
	}
	ref := p.ref(alg, id)
	s, err := p.newSigner(kid, a, ref, key, signer.ErrBackendIntegrity)
	if err != nil {
		_ = key.Delete()
		return nil, "", err
	}
	return s, ref, nil
}

// Open finds the key pair ref names, checks that its CKA_LABEL is kid and
// that its private half is sensitive and not extractable, and returns its
// Signer.
func (p *Provider) Open(ctx context.Context, kid, ref string) (signer.Signer, error) {
	if err := checkLabel("kid", kid); err != nil {
		return nil, err
	}
	alg, id, label, err := p.parseRef(ref, kid)
	if err != nil {
		return nil, err
	}
	a, err := supported(alg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", signer.ErrBadReference, err)
	}
	key, err := call(ctx, "open "+kid, func() (crypto11.Signer, error) { return p.findPair(id, label) }, nil)
	if err != nil {
		return nil, mapErr("open "+kid, err)
	}
	s, err := p.newSigner(kid, a, ref, key, signer.ErrBadReference)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}

// Destroy deletes the key pair ref names from the token (the keyring's
// Destroyed state). The same checks as Open apply first.
func (p *Provider) Destroy(ctx context.Context, kid, ref string) error {
	if err := checkLabel("kid", kid); err != nil {
		return err
	}
	_, id, label, err := p.parseRef(ref, kid)
	if err != nil {
		return err
	}
	_, err = call(ctx, "destroy "+kid, func() (struct{}, error) {
		key, err := p.findPair(id, label)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, key.Delete()
	}, nil)
	return mapErr("destroy "+kid, err)
}

// findPair finds the one key pair with CKA_ID id and checks its label
// (unless label is "") and its protection attributes.
func (p *Provider) findPair(id []byte, label string) (crypto11.Signer, error) {
	keys, err := p.tok.FindKeyPairs(id, nil)
	if err != nil {
		return nil, err
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("%w: no key pair with id %x on token %q", signer.ErrKeyNotFound, id, p.label)
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d key pairs share id %x", signer.ErrBadReference, len(keys), id)
	}
	if err := p.checkKey(keys[0], label); err != nil {
		return nil, err
	}
	return keys[0], nil
}

// checkKey reads CKA_LABEL, CKA_SENSITIVE and CKA_EXTRACTABLE of a key (the
// private half of a pair) and refuses a label other than want (any label
// when want is "") or a key whose value could leave the token.
func (p *Provider) checkKey(key any, want string) error {
	set, err := p.tok.GetAttributes(key, []crypto11.AttributeType{p11.CKA_LABEL, p11.CKA_SENSITIVE, p11.CKA_EXTRACTABLE})
	if err != nil {
		return err
	}
	if l := set[p11.CKA_LABEL]; want != "" && (l == nil || !bytes.Equal(l.Value, []byte(want))) {
		return fmt.Errorf("%w: key is not labelled %q", signer.ErrKeyNotFound, want)
	}
	if !boolAttr(set, p11.CKA_SENSITIVE, false) || boolAttr(set, p11.CKA_EXTRACTABLE, true) {
		return fmt.Errorf("%w: key %q is extractable or not sensitive", ErrKeyPolicy, want)
	}
	return nil
}

// boolAttr reads a CK_BBOOL attribute, or def if it is absent or malformed.
func boolAttr(set crypto11.AttributeSet, t crypto11.AttributeType, def bool) bool {
	a := set[t]
	if a == nil || len(a.Value) != 1 {
		return def
	}
	return a.Value[0] != 0
}

// supported returns the table entry of an algorithm this package creates.
func supported(alg string) (*jose.Alg, error) {
	switch alg {
	case "ES256", "ES384", "RS256", "PS256":
		a, _ := jose.Lookup(alg)
		return a, nil
	}
	return nil, fmt.Errorf("%w: %q (pkcs11 provider: ES256, ES384, RS256, PS256)", signer.ErrUnsupportedAlgorithm, alg)
}

// newSigner checks that the token's public key suits the algorithm and
// caches it. A mismatch is reported with sentinel: the backend's fault after
// Generate, the reference's after Open.
func (p *Provider) newSigner(kid string, a *jose.Alg, ref string, key crypto11.Signer, sentinel error) (signer.Signer, error) {
	pub := key.Public()
	if err := a.CheckKey(pub); err != nil {
		return nil, fmt.Errorf("%w: token key %s does not suit %s: %w", sentinel, kid, a.Name, err)
	}
	return newTokenSigner(kid, a, ref, key, pub, p.opts.VerifyECDSA)
}
