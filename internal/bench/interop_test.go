package bench_test

import (
	"errors"
	"testing"

	"github.com/tokenkms/tokenkms/verifier"
)

// checkClaims checks what every verifier must read from every token of the
// matrix; jti is only checked to be present.
func checkClaims(t *testing.T, got peerClaims, k *testKey, headers bool) {
	t.Helper()
	want := peerClaims{Sub: testSubject, ClientID: testClient, JTI: got.JTI, Scope: testScope, PrincipalType: testPrincipal}
	if headers {
		want.Typ, want.KID = "at+jwt", k.kid
	} else {
		got.Typ, got.KID = "", ""
	}
	if got.JTI == "" {
		t.Errorf("jti: got empty, want one")
	}
	if got != want {
		t.Errorf("claims: got %+v, want %+v", got, want)
	}
}

// TestOurTokensVerifyWithPeers: tokens of our Issuer, signed through
// signer.FromCryptoSigner with a crypto/* key, verify with every peer given
// the public key and strict options.
func TestOurTokensVerifyWithPeers(t *testing.T) {
	for _, alg := range algs {
		k := keyFor(t, alg)
		tok := issue(t, k)
		for _, p := range peers {
			t.Run(alg+"/"+p.name, func(t *testing.T) {
				got, err := p.verify(t, k)(tok)
				if err != nil {
					t.Fatalf("%s verify: got %v, want nil", p.name, err)
				}
				checkClaims(t, got, k, p.name != "jwx")
			})
		}
	}
}

// TestPeerTokensVerifyWithUs: tokens every peer signs with the private key
// verify with our Verifier (whole default Policy, revocation included).
func TestPeerTokensVerifyWithUs(t *testing.T) {
	for _, alg := range algs {
		k := keyFor(t, alg)
		verify := ourVerify(t, k)
		for _, p := range peers {
			t.Run(alg+"/"+p.name, func(t *testing.T) {
				tok, err := p.sign(t, k)()
				if err != nil {
					t.Fatalf("%s sign: %v", p.name, err)
				}
				got, err := verify(tok)
				if err != nil {
					t.Fatalf("our Verify of a %s token: got %v, want nil", p.name, err)
				}
				checkClaims(t, got, k, false)
			})
		}
	}
}

// TestForeignKeyRefused keeps the matrix from being vacuous: a peer's
// token signed by another key of the same algorithm under the same kid is
// refused by us with ErrSignature, and ours signed so by every peer.
func TestForeignKeyRefused(t *testing.T) {
	for _, alg := range algs {
		k := keyFor(t, alg)
		other := freshKey(t, alg)
		verify := ourVerify(t, k)
		ours := issue(t, other)
		for _, p := range peers {
			t.Run(alg+"/"+p.name, func(t *testing.T) {
				tok, err := p.sign(t, other)()
				if err != nil {
					t.Fatalf("%s sign: %v", p.name, err)
				}
				if _, err := verify(tok); !errors.Is(err, verifier.ErrSignature) {
					t.Fatalf("our Verify of a token signed by another key: got %v, want %v", err, verifier.ErrSignature)
				}
				if _, err := p.verify(t, k)(ours); err == nil {
					t.Fatalf("%s verify of our token signed by another key: got nil, want an error", p.name)
				}
			})
		}
	}
}

// freshKey is a new key of alg under keyFor's kid.
func freshKey(t *testing.T, alg string) *testKey {
	t.Helper()
	keysMu.Lock()
	saved, ok := keys[alg]
	delete(keys, alg)
	keysMu.Unlock()
	k := keyFor(t, alg)
	keysMu.Lock()
	if ok {
		keys[alg] = saved
	}
	keysMu.Unlock()
	return k
}
