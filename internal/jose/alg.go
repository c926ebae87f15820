package jose

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
	"fmt"
	"maps"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MinRSABits is the smallest RSA modulus accepted for signing or verifying.
const MinRSABits = 2048

// Alg describes one JWS signature algorithm (RFC 7518 §3, RFC 8037).
type Alg struct {
	Name  string
	Hash  crypto.Hash // 0 for EdDSA, which signs the message itself
	Curve elliptic.Curve
	Size  int // ECDSA: the byte length of r and of s
	Kind  KeyKind
	order []byte // ECDSA: the curve order n, big-endian in Size bytes
}

// KeyKind is the type of key an algorithm works with.
type KeyKind int

// The key kinds.
const (
	KindEC KeyKind = iota + 1
	KindRSAPKCS1
	KindRSAPSS
	KindEd25519
)

var algs = map[string]*Alg{
	"ES256": {Name: "ES256", Hash: crypto.SHA256, Curve: elliptic.P256(), Size: 32, Kind: KindEC, order: orderOf(elliptic.P256(), 32)},
	"ES384": {Name: "ES384", Hash: crypto.SHA384, Curve: elliptic.P384(), Size: 48, Kind: KindEC, order: orderOf(elliptic.P384(), 48)},
	"ES512": {Name: "ES512", Hash: crypto.SHA512, Curve: elliptic.P521(), Size: 66, Kind: KindEC, order: orderOf(elliptic.P521(), 66)},
	"RS256": {Name: "RS256", Hash: crypto.SHA256, Kind: KindRSAPKCS1},
	"RS384": {Name: "RS384", Hash: crypto.SHA384, Kind: KindRSAPKCS1},
	"RS512": {Name: "RS512", Hash: crypto.SHA512, Kind: KindRSAPKCS1},
	"PS256": {Name: "PS256", Hash: crypto.SHA256, Kind: KindRSAPSS},
	"PS384": {Name: "PS384", Hash: crypto.SHA384, Kind: KindRSAPSS},
	"PS512": {Name: "PS512", Hash: crypto.SHA512, Kind: KindRSAPSS},
	"EdDSA": {Name: "EdDSA", Kind: KindEd25519},
}

// orderOf returns the order of c, big-endian in size bytes.
func orderOf(c elliptic.Curve, size int) []byte {
	return c.Params().N.FillBytes(make([]byte, size))
}

// Lookup returns the algorithm named name (case-sensitive, as RFC 7515 says).
func Lookup(name string) (*Alg, bool) {
	a, ok := algs[name]
	return a, ok
}

// Names returns the names of the supported algorithms, sorted.
func Names() []string {
	return slices.Sorted(maps.Keys(algs))
}

// CheckKey reports whether pub is a public key this algorithm may use:
// the right type, the right curve, RSA of at least MinRSABits.
func (a *Alg) CheckKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if a.Kind == KindEC && k.Curve == a.Curve {
			return nil
		}
	case *rsa.PublicKey:
		if a.Kind == KindRSAPKCS1 || a.Kind == KindRSAPSS {
			if k.N.BitLen() < MinRSABits {
				return fmt.Errorf("%w: RSA key of %d bits, %d required", ErrKeyMismatch, k.N.BitLen(), MinRSABits)
			}
			return nil
		}
	case ed25519.PublicKey:
		if a.Kind == KindEd25519 && len(k) == ed25519.PublicKeySize {
			return nil
		}
	}
	return fmt.Errorf("%w: %s with %T", ErrKeyMismatch, a.Name, pub)
}

// Digest hashes the signing input with the algorithm's hash. EdDSA has none:
// it returns the input itself.
func (a *Alg) Digest(signingInput []byte) []byte {
	if a.Hash == 0 {
		return signingInput
	}
	var buf [sha512.Size]byte
	return append([]byte(nil), a.digest(&buf, signingInput)...)
}

// digest hashes msg into buf without allocating and returns the used part.
func (a *Alg) digest(buf *[sha512.Size]byte, msg []byte) []byte {
	switch a.Hash {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return buf[:copy(buf[:], d[:])]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return buf[:copy(buf[:], d[:])]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return buf[:copy(buf[:], d[:])]
	}
	h := a.Hash.New()
	h.Write(msg)
	return h.Sum(buf[:0])
}

// SignerOpts is what crypto.Signer.Sign takes for this algorithm.
func (a *Alg) SignerOpts() crypto.SignerOpts {
	switch a.Kind {
	case KindRSAPSS:
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.Hash}
	case KindEd25519:
		return crypto.Hash(0)
	}
	return a.Hash
}

// Sign signs the JWS signing input with s and returns the JWS signature
// bytes: r||s for ECDSA (whatever form s returns), as is otherwise.
func (a *Alg) Sign(s crypto.Signer, signingInput []byte) ([]byte, error) {
	if err := a.CheckKey(s.Public()); err != nil {
		return nil, err
	}
	return a.SignDigest(s, a.Digest(signingInput))
}

// SignDigest signs what Digest returned for the signing input (for EdDSA,
// the input itself) with s and returns the JWS signature bytes: r||s for
// ECDSA (whatever form s returns), as is otherwise.
func (a *Alg) SignDigest(s crypto.Signer, digest []byte) ([]byte, error) {
	sig, err := s.Sign(rand.Reader, digest, a.SignerOpts())
	if err != nil {
		return nil, err
	}
	if a.Kind == KindEC {
		return a.ToP1363(sig)
	}
	return sig, nil
}

// Verify checks a JWS signature over signingInput with pub. Any failure,
// including a key of the wrong kind, is reported as an error; only a nil
// error means the signature is good.
func (a *Alg) Verify(pub crypto.PublicKey, signingInput, sig []byte) error {
	if err := a.CheckKey(pub); err != nil {
		return err
	}
	if a.Kind == KindEd25519 {
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub.(ed25519.PublicKey), signingInput, sig) {
			return ErrBadSignature
		}
		return nil
	}
	var buf [sha512.Size]byte
	return a.verifyDigest(pub, a.digest(&buf, signingInput), sig)
}

// VerifyDigest checks a JWS signature (r||s for ECDSA) over a digest
// computed with the algorithm's hash: RSASSA-PKCS1-v1_5, RSASSA-PSS with a
// salt as long as the hash (RFC 7518 §3.5), or ECDSA. EdDSA has no digest
// form and is refused with ErrUnsupportedAlg; a key of the wrong kind gives
// ErrKeyMismatch; a digest of the wrong length or a signature that does not
// verify gives ErrBadSignature. Only a nil error means the signature is good.
func (a *Alg) VerifyDigest(pub crypto.PublicKey, digest, sig []byte) error {
	if a.Hash == 0 {
		return fmt.Errorf("%w: %s signs the message, not a digest", ErrUnsupportedAlg, a.Name)
	}
	if err := a.CheckKey(pub); err != nil {
		return err
	}
	if len(digest) != a.Hash.Size() {
		return fmt.Errorf("%w: %d-byte digest, %s needs %d", ErrBadSignature, len(digest), a.Name, a.Hash.Size())
	}
	return a.verifyDigest(pub, digest, sig)
}

// verifyDigest checks sig over digest with pub, which CheckKey accepted.
func (a *Alg) verifyDigest(pub crypto.PublicKey, digest, sig []byte) error {
	ok := false
	switch a.Kind {
	case KindEC:
		if len(sig) != 2*a.Size {
			return ErrBadSignature
		}
		var der [maxECDSADER]byte
		ok = ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, appendECDSADER(der[:0], sig[:a.Size], sig[a.Size:]))
	case KindRSAPKCS1:
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), a.Hash, digest, sig) == nil
	case KindRSAPSS:
		ok = rsa.VerifyPSS(pub.(*rsa.PublicKey), a.Hash, digest, sig,
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.Hash}) == nil
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// maxECDSADER bounds the DER form of a P-521 signature: SEQUENCE header (3)
// and two INTEGERs of at most 2+1+66 bytes each.
const maxECDSADER = 3 + 2*(2+1+66)

// ToDER converts an ECDSA JWS signature (r||s) to the ASN.1 DER form
// crypto.Signer returns.
func (a *Alg) ToDER(sig []byte) ([]byte, error) {
	if a.Kind != KindEC || len(sig) != 2*a.Size {
		return nil, fmt.Errorf("jose: %s signature of %d bytes is not r||s", a.Name, len(sig))
	}
	return appendECDSADER(make([]byte, 0, maxECDSADER), sig[:a.Size], sig[a.Size:]), nil
}

// appendECDSADER appends the ASN.1 DER SEQUENCE { INTEGER r, INTEGER s }
// for the big-endian r and s, the form crypto/ecdsa verifies. A zero r or s
// encodes as INTEGER 0, which ecdsa.VerifyASN1 rejects.
func appendECDSADER(dst, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	n := derIntLen(r) + derIntLen(s)
	dst = append(dst, 0x30)
	if n >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(n))
	dst = appendDERInt(dst, r)
	return appendDERInt(dst, s)
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// derIntLen is the encoded length of a non-negative INTEGER whose minimal
// big-endian magnitude is b (values fit one length byte: at most 67 bytes).
func derIntLen(b []byte) int {
	n := len(b)
	if n == 0 || b[0]&0x80 != 0 {
		n++
	}
	return 2 + n
}

func appendDERInt(dst, b []byte) []byte {
	n := derIntLen(b) - 2
	dst = append(dst, 0x02, byte(n))
	if n > len(b) {
		dst = append(dst, 0)
	}
	return append(dst, b...)
}

// ToP1363 converts an ASN.1 DER ECDSA signature, the form that
// crypto.Signer, KMS and PKCS#11 libraries return, to the JWS form r||s.
// It accepts only strict DER: minimal lengths and integers, r and s in
// [1, n-1] for the curve order n.
func (a *Alg) ToP1363(sig []byte) ([]byte, error) {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(sig)
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, casn1.INTEGER) || !seq.ReadASN1(&s, casn1.INTEGER) || !seq.Empty() {
		return nil, fmt.Errorf("jose: malformed ECDSA signature from signer")
	}
	out := make([]byte, 2*a.Size)
	if !putDERInt(out[:a.Size], r) || !putDERInt(out[a.Size:], s) ||
		bytes.Compare(out[:a.Size], a.order) >= 0 || bytes.Compare(out[a.Size:], a.order) >= 0 {
		return nil, fmt.Errorf("jose: ECDSA signature out of range for %s", a.Name)
	}
	return out, nil
}

// putDERInt writes the positive, minimally encoded DER integer v
// right-aligned into dst, and reports whether it was valid and fit.
func putDERInt(dst []byte, v []byte) bool {
	if len(v) == 0 || v[0]&0x80 != 0 {
		return false // empty or negative
	}
	if v[0] == 0 {
		if len(v) == 1 || v[1]&0x80 == 0 {
			return false // zero, or a leading zero byte DER forbids
		}
		v = v[1:]
	}
	if len(v) > len(dst) {
		return false
	}
	copy(dst[len(dst)-len(v):], v)
	return true
}
