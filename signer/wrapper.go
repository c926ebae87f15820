package signer

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// aesWrapper is a KeyWrapper under a local AES-256 key-encryption key.
type aesWrapper struct {
	aead cipher.AEAD
}

// wrapVersion is the first byte of every blob an aesWrapper produces.
const wrapVersion = 1

// NewAESWrapper returns a KeyWrapper that seals with AES-256-GCM under kek
// (32 bytes, from the host's secret store). A blob is version(1) ||
// nonce(12) || ciphertext || tag(16); aad is bound. The KEK is copied into
// the cipher and never returned.
func NewAESWrapper(kek []byte) (KeyWrapper, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("signer: key-encryption key must be 32 bytes, got %d", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &aesWrapper{aead: aead}, nil
}

// NewEphemeralWrapper returns an AES-256-GCM KeyWrapper under a random KEK
// that lives only in this process: what it wraps cannot be unwrapped after
// the process ends. For tests and the in-memory quickstart; its Durable
// method reports false, and keyring.New refuses it next to a durable store.
func NewEphemeralWrapper() KeyWrapper {
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := NewAESWrapper(kek)
	if err != nil {
		panic(err) // unreachable: the key has the right size
	}
	return ephemeralWrapper{w.(*aesWrapper)}
}

// ephemeralWrapper is an aesWrapper whose KEK dies with the process.
type ephemeralWrapper struct{ *aesWrapper }

// Durable reports false: nothing it wraps survives the process.
func (ephemeralWrapper) Durable() bool { return false }

// String never shows the key.
func (ephemeralWrapper) String() string { return "signer.EphemeralWrapper(AES-256-GCM)" }

func (w *aesWrapper) Wrap(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	ns := w.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+w.aead.Overhead())
	out[0] = wrapVersion
	rand.Read(out[1 : 1+ns])
	return w.aead.Seal(out, out[1:1+ns], plaintext, aad), nil
}

func (w *aesWrapper) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	ns := w.aead.NonceSize()
	if len(wrapped) < 1+ns+w.aead.Overhead() || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("%w: malformed blob", ErrUnwrap)
	}
	pt, err := w.aead.Open(nil, wrapped[1:1+ns], wrapped[1+ns:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrUnwrap)
	}
	return pt, nil
}

// String never shows the key.
func (w *aesWrapper) String() string { return "signer.AESWrapper(AES-256-GCM)" }
