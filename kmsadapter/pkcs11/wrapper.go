//go:build cgo

package pkcs11

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/tokenkms/tokenkms/signer"
)

// MaxWrapSize is the largest plaintext Wrap accepts: data keys and PKCS#8
// private keys are far smaller.
const MaxWrapSize = 64 << 10

// wrapVersion is the first byte of every blob a Wrapper produces.
const wrapVersion = 1

// gcmTagSize is the GCM tag length, in bytes.
const gcmTagSize = 16

// Wrapper is a signer.KeyWrapper whose key-encryption key is an AES-256 key
// in the token: AES-GCM runs inside the HSM (CKM_AES_GCM), the caller's aad
// bound as GCM additional data.
type Wrapper struct {
	label string
	ref   string
	aead  cipher.AEAD
}

var _ signer.KeyWrapper = (*Wrapper)(nil)

// GenerateWrapper creates an AES-256 key in the token, CKA_LABEL label,
// CKA_ID random, sensitive, non-extractable, allowed to encrypt and decrypt
// only, and returns its Wrapper and the reference from which OpenWrapper
// reopens it.
func (p *Provider) GenerateWrapper(ctx context.Context, label string) (*Wrapper, string, error) {
	if err := checkLabel("wrapper label", label); err != nil {
		return nil, "", err
	}
	id, err := newID()
	if err != nil {
		return nil, "", err
	}
	template := attrs(map[crypto11.AttributeType]any{
		p11.CKA_ID: id, p11.CKA_LABEL: []byte(label), p11.CKA_TOKEN: true, p11.CKA_PRIVATE: true,
		p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false,
		p11.CKA_ENCRYPT: true, p11.CKA_DECRYPT: true,
		p11.CKA_WRAP: false, p11.CKA_UNWRAP: false, p11.CKA_SIGN: false, p11.CKA_VERIFY: false,
		p11.CKA_DERIVE: false,
	})
	op := "generate wrapper " + label
	key, err := call(ctx, op, func() (*crypto11.SecretKey, error) {
		return p.tok.GenerateSecretKeyWithAttributes(template, 256, crypto11.CipherAES)
	}, func(k *crypto11.SecretKey) { _ = k.Delete() })
	if err != nil {
		return nil, "", mapErr(op, err)
	}
	ref := p.ref(wrapAlg, id)
	w, err := newWrapper(label, ref, key)
	if err != nil {
		_ = key.Delete()
		return nil, "", err
	}
	return w, ref, nil
}

// OpenWrapper finds the AES key ref names, checks that it is a 256-bit AES
// key, sensitive and not extractable, and returns its Wrapper.
func (p *Provider) OpenWrapper(ctx context.Context, ref string) (*Wrapper, error) {
	alg, id, _, err := p.parseRef(ref, "")
	if err != nil {
		return nil, err
	}
	if alg != wrapAlg {
		return nil, fmt.Errorf("%w: %s is not a wrapper reference", signer.ErrBadReference, alg)
	}
	op := "open wrapper"
	type found struct {
		key   *crypto11.SecretKey
		label string
	}
	f, err := call(ctx, op, func() (found, error) {
		keys, err := p.tok.FindKeys(id, nil)
		if err != nil {
			return found{}, err
		}
		switch len(keys) {
		case 0:
			return found{}, fmt.Errorf("%w: no AES key with id %x on token %q", signer.ErrKeyNotFound, id, p.label)
		case 1:
		default:
			return found{}, fmt.Errorf("%w: %d keys share id %x", signer.ErrBadReference, len(keys), id)
		}
		set, err := p.tok.GetAttributes(keys[0], []crypto11.AttributeType{
			p11.CKA_LABEL, p11.CKA_VALUE_LEN, p11.CKA_SENSITIVE, p11.CKA_EXTRACTABLE,
		})
		if err != nil {
			return found{}, err
		}
		if keys[0].Cipher != crypto11.CipherAES || set[p11.CKA_VALUE_LEN] == nil ||
			bytesToUint(set[p11.CKA_VALUE_LEN].Value) != 32 {
			return found{}, fmt.Errorf("%w: key %x is not AES-256", signer.ErrUnsupportedAlgorithm, id)
		}
		if !boolAttr(set, p11.CKA_SENSITIVE, false) || boolAttr(set, p11.CKA_EXTRACTABLE, true) {
			return found{}, fmt.Errorf("%w: AES key %x is extractable or not sensitive", ErrKeyPolicy, id)
		}
		var label string
		if l := set[p11.CKA_LABEL]; l != nil {
			label = string(l.Value)
		}
		return found{keys[0], label}, nil
	}, nil)
	if err != nil {
		return nil, mapErr(op, err)
	}
	return newWrapper(f.label, ref, f.key)
}

// bytesToUint reads a CK_ULONG attribute (native byte order, as the token
// returns it).
func bytesToUint(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func newWrapper(label, ref string, key *crypto11.SecretKey) (*Wrapper, error) {
	aead, err := key.NewGCM()
	if err != nil {
		return nil, fmt.Errorf("%w: pkcs11: AES-GCM: %w", signer.ErrUnsupportedAlgorithm, err)
	}
	if aead.NonceSize() != gcmNonceSize || aead.Overhead() != gcmTagSize {
		return nil, fmt.Errorf("%w: the token's context must use %d-byte GCM nonces (crypto11.Config.GCMIVLength), not %d",
			ErrConfig, gcmNonceSize, aead.NonceSize())
	}
	return &Wrapper{label: label, ref: ref, aead: aead}, nil
}

// Ref returns the reference from which Provider.OpenWrapper reopens the key.
func (w *Wrapper) Ref() string { return w.ref }

// String shows the key's label and reference only.
func (w *Wrapper) String() string {
	return fmt.Sprintf("pkcs11.Wrapper(label=%s ref=%s AES-256-GCM)", w.label, w.ref)
}

// GoString keeps %#v from printing the fields.
func (w *Wrapper) GoString() string { return w.String() }

// Wrap seals plaintext inside the HSM with AES-256-GCM under a fresh random
// nonce, aad bound. The blob is version(1) || nonce(12) || ciphertext || tag.
func (w *Wrapper) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if len(plaintext) > MaxWrapSize {
		return nil, fmt.Errorf("%w: plaintext of %d bytes exceeds %d", ErrInvalidArgument, len(plaintext), MaxWrapSize)
	}
	out := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(plaintext)+gcmTagSize)
	out[0] = wrapVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("pkcs11: wrap: nonce: %w", err)
	}
	nonce := out[1:]
	blob, err := call(ctx, "wrap", func() (b []byte, err error) {
		// crypto11's Seal panics when the token fails: turn that back into
		// an error.
		defer func() {
			if r := recover(); r != nil {
				err = recoveredErr(r)
			}
		}()
		return w.aead.Seal(out, nonce, plaintext, aad), nil
	}, nil)
	if err != nil {
		return nil, mapErr("wrap", err)
	}
	if len(blob) != 1+gcmNonceSize+len(plaintext)+gcmTagSize {
		return nil, fmt.Errorf("%w: pkcs11: wrap: ciphertext of unexpected length", signer.ErrBackendIntegrity)
	}
	return blob, nil
}

// recoveredErr turns what crypto11's Seal panicked with into an error.
func recoveredErr(r any) error {
	if err, ok := r.(error); ok {
		return err
	}
	return fmt.Errorf("%v", r)
}

// Unwrap opens a blob that Wrap produced with the same aad; any mismatch or
// tampering gives signer.ErrUnwrap.
func (w *Wrapper) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < 1+gcmNonceSize+gcmTagSize || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("%w: pkcs11: malformed blob", signer.ErrUnwrap)
	}
	if len(wrapped) > 1+gcmNonceSize+MaxWrapSize+gcmTagSize {
		return nil, fmt.Errorf("%w: pkcs11: blob larger than %d bytes of plaintext", signer.ErrUnwrap, MaxWrapSize)
	}
	nonce := wrapped[1 : 1+gcmNonceSize]
	pt, err := call(ctx, "unwrap", func() ([]byte, error) {
		return w.aead.Open(nil, nonce, wrapped[1+gcmNonceSize:], aad)
	}, func(b []byte) { clear(b) })
	if err != nil {
		return nil, mapUnwrapErr(err)
	}
	if len(pt) != len(wrapped)-1-gcmNonceSize-gcmTagSize {
		clear(pt)
		return nil, fmt.Errorf("%w: pkcs11: unwrap: plaintext of unexpected length", signer.ErrBackendIntegrity)
	}
	return pt, nil
}
