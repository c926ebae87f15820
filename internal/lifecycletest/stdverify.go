package lifecycletest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"math/big"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// VerifyStd checks a JWS signature (r||s for ECDSA) over msg with pub
// using the standard library alone, a second implementation beside
// jose.Alg.Verify, and fails tb if it does not verify.
func VerifyStd(tb testing.TB, alg string, pub crypto.PublicKey, msg, sig []byte) {
	tb.Helper()
	a, ok := jose.Lookup(alg)
	if !ok {
		tb.Fatalf("no algorithm %q", alg)
	}
	digest := msg
	if a.Hash != 0 {
		h := a.Hash.New()
		h.Write(msg)
		digest = h.Sum(nil)
	}
	good := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != 2*a.Size {
			tb.Fatalf("%s signature is %d bytes, want %d (r||s)", alg, len(sig), 2*a.Size)
		}
		good = ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:a.Size]), new(big.Int).SetBytes(sig[a.Size:]))
	case *rsa.PublicKey:
		if a.Kind == jose.KindRSAPSS {
			good = rsa.VerifyPSS(k, a.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		} else {
			good = rsa.VerifyPKCS1v15(k, a.Hash, digest, sig) == nil
		}
	case ed25519.PublicKey:
		good = ed25519.Verify(k, msg, sig)
	default:
		tb.Fatalf("public key of type %T", pub)
	}
	if !good {
		tb.Fatalf("%s signature does not verify with the standard library", alg)
	}
}

// DERSig is the ASN.1 DER ECDSA signature of r and s, which may be out of
// range: what a misbehaving backend could answer.
func DERSig(r, s *big.Int) []byte {
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		panic(err) // two INTEGERs always marshal
	}
	return b
}
