package jose_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
)

func TestDigest(t *testing.T) {
	msg := []byte("header.payload")
	s256, s384, s512 := sha256.Sum256(msg), sha512.Sum384(msg), sha512.Sum512(msg)
	tests := []struct {
		alg  string
		want []byte
	}{
		{"ES256", s256[:]}, {"RS256", s256[:]}, {"PS256", s256[:]},
		{"ES384", s384[:]}, {"RS384", s384[:]},
		{"ES512", s512[:]}, {"PS512", s512[:]},
		{"EdDSA", msg},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			a, ok := jose.Lookup(tt.alg)
			if !ok {
				t.Fatalf("Lookup(%s) failed", tt.alg)
			}
			if got := a.Digest(msg); !bytes.Equal(got, tt.want) {
				t.Errorf("Digest = %x, want %x", got, tt.want)
			}
		})
	}
}

func TestToP1363(t *testing.T) {
	a, _ := jose.Lookup("ES256")
	r := bytes.Repeat([]byte{0x11}, 32)
	s := bytes.Repeat([]byte{0x22}, 32)
	der := func(parts ...[]byte) []byte {
		var body []byte
		for _, p := range parts {
			body = append(body, 0x02, byte(len(p)))
			body = append(body, p...)
		}
		return append([]byte{0x30, byte(len(body))}, body...)
	}
	high := append([]byte{0x00}, bytes.Repeat([]byte{0x99}, 32)...) // a leading zero keeps it positive
	p256N := append([]byte{0x00}, elliptic.P256().Params().N.Bytes()...)
	p256NMinus1 := append([]byte(nil), p256N...)
	p256NMinus1[len(p256NMinus1)-1]-- // n is odd: no borrow
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte // nil: an error
	}{
		{"plain", der(r, s), append(append([]byte{}, r...), s...)},
		{"short r is left-padded", der([]byte{0x05}, s), append(append(make([]byte, 31), 0x05), s...)},
		{"high bit with leading zero", der(high, s), append(bytes.Repeat([]byte{0x99}, 32), s...)},
		{"negative r", der([]byte{0x80}, s), nil},
		{"zero r", der([]byte{0x00}, s), nil},
		{"non-minimal leading zero", der([]byte{0x00, 0x05}, s), nil},
		{"r longer than the curve", der(bytes.Repeat([]byte{0x11}, 33), s), nil},
		{"r equals the order", der(p256N, s), nil},
		{"s above the order", der(r, append([]byte{0x00}, bytes.Repeat([]byte{0xff}, 32)...)), nil},
		{"s one below the order", der(r, p256NMinus1), append(append([]byte{}, r...), p256NMinus1[1:]...)},
		{"trailing data", append(der(r, s), 0x00), nil},
		{"three integers", der(r, s, s), nil},
		{"raw r||s", append(append([]byte{}, r...), s...), nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.ToP1363(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ToP1363 = %x, want an error", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("ToP1363 = %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}

// testKeys holds one key per kind, and a second one to sign with the wrong key.
type testKeys struct {
	ec, ec2   map[string]*ecdsa.PrivateKey // by alg
	rsa, rsa2 *rsa.PrivateKey
	ed        ed25519.PrivateKey
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	k := &testKeys{ec: map[string]*ecdsa.PrivateKey{}, ec2: map[string]*ecdsa.PrivateKey{}}
	for alg, c := range map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()} {
		k.ec[alg] = mustEC(t, c)
		k.ec2[alg] = mustEC(t, c)
	}
	k.rsa, k.rsa2 = mustRSA(t), mustRSA(t)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.ed = ed
	return k
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signers returns the key that signs with alg and another key of the same kind.
func (k *testKeys) signers(alg string) (crypto.Signer, crypto.Signer) {
	if ec, ok := k.ec[alg]; ok {
		return ec, k.ec2[alg]
	}
	return k.rsa, k.rsa2
}

func TestVerifyDigest(t *testing.T) {
	keys := newTestKeys(t)
	input := []byte("header.payload")
	for _, name := range []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		t.Run(name, func(t *testing.T) {
			a, _ := jose.Lookup(name)
			key, other := keys.signers(name)
			sig, err := a.Sign(key, input)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			otherSig, err := a.Sign(other, input)
			if err != nil {
				t.Fatalf("Sign with the other key: %v", err)
			}
			digest := a.Digest(input)
			tampered := append([]byte(nil), sig...)
			tampered[len(tampered)/2] ^= 0x01
			cases := []struct {
				name   string
				pub    crypto.PublicKey
				digest []byte
				sig    []byte
				want   error // nil: the signature verifies
			}{
				{"round trip", key.Public(), digest, sig, nil},
				{"wrong key", other.Public(), digest, sig, jose.ErrBadSignature},
				{"signature of another key", key.Public(), digest, otherSig, jose.ErrBadSignature},
				{"tampered signature", key.Public(), digest, tampered, jose.ErrBadSignature},
				{"signature one byte short", key.Public(), digest, sig[:len(sig)-1], jose.ErrBadSignature},
				{"signature one byte long", key.Public(), digest, append(append([]byte(nil), sig...), 0), jose.ErrBadSignature},
				{"empty signature", key.Public(), digest, nil, jose.ErrBadSignature},
				{"digest of another message", key.Public(), a.Digest([]byte("header.other")), sig, jose.ErrBadSignature},
				{"digest one byte short", key.Public(), digest[:len(digest)-1], sig, jose.ErrBadSignature},
				{"signing input instead of digest", key.Public(), input, sig, jose.ErrBadSignature},
				{"key of another kind", keys.ed.Public(), digest, sig, jose.ErrKeyMismatch},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					err := a.VerifyDigest(tc.pub, tc.digest, tc.sig)
					if tc.want == nil && err != nil {
						t.Fatalf("VerifyDigest = %v, want nil", err)
					}
					if tc.want != nil && !errors.Is(err, tc.want) {
						t.Fatalf("VerifyDigest = %v, want %v", err, tc.want)
					}
					// Verify hashes and then checks exactly as VerifyDigest does.
					if bytes.Equal(tc.digest, digest) {
						if verr := a.Verify(tc.pub, input, tc.sig); !errors.Is(verr, tc.want) {
							t.Errorf("Verify = %v, want %v (as VerifyDigest)", verr, tc.want)
						}
					}
				})
			}
		})
	}
}

// TestVerifyDigestPSSSalt: JWS fixes the PSS salt at the hash length
// (RFC 7518 §3.5); a signature with another salt length is refused.
func TestVerifyDigestPSSSalt(t *testing.T) {
	key := mustRSA(t)
	a, _ := jose.Lookup("PS256")
	digest := a.Digest([]byte("header.payload"))
	for _, tc := range []struct {
		name string
		salt int
		want error
	}{
		{"salt = hash length", rsa.PSSSaltLengthEqualsHash, nil},
		{"maximum salt", rsa.PSSSaltLengthAuto, jose.ErrBadSignature},
		{"one-byte salt", 1, jose.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: tc.salt})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.VerifyDigest(key.Public(), digest, sig); !errors.Is(err, tc.want) {
				t.Errorf("VerifyDigest = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyDigestRefusesEdDSA(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := jose.Lookup("EdDSA")
	msg := []byte("header.payload")
	sig := ed25519.Sign(key, msg)
	if err := a.VerifyDigest(key.Public(), msg, sig); !errors.Is(err, jose.ErrUnsupportedAlg) {
		t.Errorf("VerifyDigest(EdDSA) = %v, want %v", err, jose.ErrUnsupportedAlg)
	}
	if err := a.Verify(key.Public(), msg, sig); err != nil {
		t.Errorf("Verify(EdDSA) = %v, want nil", err)
	}
}
