package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// Importer is implemented by providers that take an existing private key
// (migration from another system): Import checks that key suits alg,
// seals it at once as Generate seals a key it made, and returns its Signer
// and reference. The private key is never stored unwrapped.
type Importer interface {
	Import(ctx context.Context, kid, alg string, key crypto.Signer) (Signer, string, error)
}

// Adopter is implemented by providers that take an existing key of their
// backend (an AWS KMS key, a Cloud KMS key version, a PKCS#11 object) by
// its reference: Adopt checks that the key can sign alg, binds it to kid
// as Generate does, and returns its Signer and the reference Open takes.
type Adopter interface {
	Adopt(ctx context.Context, kid, alg, ref string) (Signer, string, error)
}

// CheckImportedKey refuses a public key that does not suit alg (type,
// curve), an RSA key under 2048 bits, and an RSA key with the ROCA
// fingerprint (CVE-2017-15361), wrapping ErrWeakKey.
func CheckImportedKey(alg string, pub crypto.PublicKey) error {
	a, ok := jose.Lookup(alg)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	if err := a.CheckKey(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrWeakKey, err)
	}
	if k, ok := pub.(*rsa.PublicKey); ok {
		if err := jose.CheckImportedRSA(k); err != nil {
			return fmt.Errorf("%w: %w", ErrWeakKey, err)
		}
	}
	return nil
}

// ParsePrivateKey reads a signing key to import: PEM (PKCS#8 "PRIVATE
// KEY", PKCS#1 "RSA PRIVATE KEY", SEC 1 "EC PRIVATE KEY") or a JWK
// private key (JSON). It returns the key and the JWK's kid ("" for PEM, or
// a JWK without one). Errors wrap ErrKeyFormat and never quote the input.
func ParsePrivateKey(data []byte) (crypto.Signer, string, error) {
	if strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		return parseJWK(data)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, "", fmt.Errorf("%w: neither PEM nor a JWK", ErrKeyFormat)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, "", fmt.Errorf("%w: more than one PEM block", ErrKeyFormat)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("%w: PEM block %q is not a private key", ErrKeyFormat, block.Type)
	}
	clear(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("%w: PEM %s does not parse", ErrKeyFormat, block.Type)
	}
	s, err := asSigner(key)
	return s, "", err
}

func parseJWK(data []byte) (crypto.Signer, string, error) {
	k, err := jwk.ParseKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("%w: JWK does not parse", ErrKeyFormat)
	}
	if private, err := jwk.IsPrivateKey(k); err != nil || !private {
		return nil, "", fmt.Errorf("%w: JWK holds no private key", ErrKeyFormat)
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, "", fmt.Errorf("%w: JWK cannot be exported as a key", ErrKeyFormat)
	}
	kid, _ := k.KeyID()
	s, err := asSigner(raw)
	return s, kid, err
}

// asSigner accepts the private key types tokenkms signs with, validating
// RSA keys (their primes and CRT values).
func asSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("%w: inconsistent RSA private key", ErrKeyFormat)
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey:
		return *k, nil
	}
	return nil, fmt.Errorf("%w: %T is not a signing key", ErrKeyFormat, key)
}
