package signer_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/signer"
)

// errTestDigestSize is the backend's own sentinel for a digest of the wrong length.
var errTestDigestSize = errors.New("test backend: digest size")

// testKeys are the keys of the remote signer tests, generated once: RSA
// generation is slow.
type testKeys struct {
	p256, p256b, p384, p384b *ecdsa.PrivateKey
	rsa, rsab                *rsa.PrivateKey
}

var (
	remoteKeysOnce sync.Once
	remoteKeysVal  testKeys
	remoteKeysErr  error
)

func remoteKeys(t *testing.T) testKeys {
	t.Helper()
	remoteKeysOnce.Do(func() {
		k := &remoteKeysVal
		for _, ec := range []struct {
			dst **ecdsa.PrivateKey
			c   elliptic.Curve
		}{{&k.p256, elliptic.P256()}, {&k.p256b, elliptic.P256()}, {&k.p384, elliptic.P384()}, {&k.p384b, elliptic.P384()}} {
			if *ec.dst, remoteKeysErr = ecdsa.GenerateKey(ec.c, rand.Reader); remoteKeysErr != nil {
				return
			}
		}
		if k.rsa, remoteKeysErr = rsa.GenerateKey(rand.Reader, 2048); remoteKeysErr != nil {
			return
		}
		k.rsab, remoteKeysErr = rsa.GenerateKey(rand.Reader, 2048)
	})
	if remoteKeysErr != nil {
		t.Fatalf("generating test keys: %v", remoteKeysErr)
	}
	return remoteKeysVal
}

// keyFor returns the test key that signs with alg, and another of its kind.
func keyFor(t *testing.T, alg string) (crypto.Signer, crypto.Signer) {
	t.Helper()
	k := remoteKeys(t)
	switch alg {
	case "ES256":
		return k.p256, k.p256b
	case "ES384":
		return k.p384, k.p384b
	case "RS256", "PS256", "RS384", "PS512":
		return k.rsa, k.rsab
	}
	t.Fatalf("no test key for %s", alg)
	return nil, nil
}

// fakeBackend signs digests with key, as a KMS or HSM does (ASN.1 DER for
// ECDSA), and lets a test replace or alter the answer.
type fakeBackend struct {
	key    crypto.Signer
	opts   crypto.SignerOpts
	answer func(digest, sig []byte) []byte // nil: the signature as made
	err    error
	calls  atomic.Int32
	digest []byte // the last digest asked for
}

func (b *fakeBackend) signDigest(ctx context.Context, digest []byte) ([]byte, error) {
	b.calls.Add(1)
	b.digest = append([]byte(nil), digest...)
	if b.err != nil {
		return nil, b.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sig, err := b.key.Sign(rand.Reader, digest, b.opts)
	if err != nil {
		return nil, err
	}
	if b.answer != nil {
		return b.answer(digest, sig), nil
	}
	return sig, nil
}

// newRemote returns a remote signer for alg over a fake backend that signs
// with key.
func newRemote(t *testing.T, alg string, key crypto.Signer, policy signer.VerifyPolicy) (signer.Signer, *fakeBackend) {
	t.Helper()
	a, ok := jose.Lookup(alg)
	if !ok {
		t.Fatalf("Lookup(%s) failed", alg)
	}
	b := &fakeBackend{key: key, opts: a.SignerOpts()}
	s, err := signer.NewRemoteSigner(signer.RemoteKey{
		KID: "k1", Algorithm: alg, Backend: "test", Ref: "ref-1",
		Public: key.Public(), SignDigest: b.signDigest, Verify: policy, DigestSizeErr: errTestDigestSize,
	})
	if err != nil {
		t.Fatalf("NewRemoteSigner: %v", err)
	}
	return s, b
}

var policies = []signer.VerifyPolicy{signer.VerifyAll, signer.VerifyRSAOnly, signer.UnsafeVerifyNone}

func TestRemoteSignerSigns(t *testing.T) {
	input := []byte("header.payload")
	for _, alg := range []string{"ES256", "ES384", "RS256", "RS384", "PS256", "PS512"} {
		for _, policy := range policies {
			t.Run(alg+"/"+policy.String(), func(t *testing.T) {
				key, _ := keyFor(t, alg)
				s, b := newRemote(t, alg, key, policy)
				a, _ := jose.Lookup(alg)
				if s.KID() != "k1" || s.Algorithm() != alg || s.Public() != key.Public() {
					t.Fatalf("got kid %q alg %q, want k1 %s and the key's public key", s.KID(), s.Algorithm(), alg)
				}
				sig, err := s.Sign(context.Background(), input)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if err := a.Verify(key.Public(), input, sig); err != nil {
					t.Errorf("the JWS signature does not verify: %v", err)
				}
				if want := a.Digest(input); !bytes.Equal(b.digest, want) {
					t.Errorf("backend was asked to sign %x, want the digest %x", b.digest, want)
				}
				dsig, err := s.(signer.DigestSigner).SignDigest(context.Background(), a.Digest(input))
				if err != nil {
					t.Fatalf("SignDigest: %v", err)
				}
				if err := a.VerifyDigest(key.Public(), a.Digest(input), dsig); err != nil {
					t.Errorf("the SignDigest signature does not verify: %v", err)
				}
			})
		}
	}
}

func TestRemoteSignerChecksAnswers(t *testing.T) {
	n := elliptic.P256().Params().N
	keys := remoteKeys(t)
	// signedBy answers with the signature of key over the same digest.
	signedBy := func(key crypto.Signer, opts crypto.SignerOpts) func(digest, sig []byte) []byte {
		return func(digest, _ []byte) []byte {
			sig, err := key.Sign(rand.Reader, digest, opts)
			if err != nil {
				t.Errorf("signing the answer: %v", err)
			}
			return sig
		}
	}
	// another answers with the signature of the right key over another digest.
	another := func(digest, _ []byte) []byte {
		sig, err := keys.p256.Sign(rand.Reader, bytes.Repeat([]byte{7}, len(digest)), crypto.SHA256)
		if err != nil {
			t.Errorf("signing the answer: %v", err)
		}
		return sig
	}
	flipLast := func(_, sig []byte) []byte {
		out := append([]byte(nil), sig...)
		out[len(out)-1] ^= 1
		return out
	}
	fixed := func(b []byte) func(_, _ []byte) []byte { return func(_, _ []byte) []byte { return b } }
	pss := func(salt int) *rsa.PSSOptions { return &rsa.PSSOptions{SaltLength: salt, Hash: crypto.SHA256} }
	type want map[signer.VerifyPolicy]bool // policy → the signature is accepted
	all, none := want{}, want{signer.VerifyAll: true, signer.VerifyRSAOnly: true, signer.UnsafeVerifyNone: true}
	tests := []struct {
		name     string
		alg      string
		answer   func(digest, sig []byte) []byte
		accepted want
	}{
		{"EC signature of another key", "ES256", signedBy(keys.p256b, crypto.SHA256),
			want{signer.VerifyRSAOnly: true, signer.UnsafeVerifyNone: true}},
		{"EC signature of another digest", "ES256", another,
			want{signer.VerifyRSAOnly: true, signer.UnsafeVerifyNone: true}},
		{"RSA signature of another key", "RS256", signedBy(keys.rsab, crypto.SHA256), want{signer.UnsafeVerifyNone: true}},
		{"PSS signature of another key", "PS256", signedBy(keys.rsab, pss(rsa.PSSSaltLengthEqualsHash)), want{signer.UnsafeVerifyNone: true}},
		{"PSS with the maximum salt", "PS256", signedBy(keys.rsa, pss(rsa.PSSSaltLengthAuto)), want{signer.UnsafeVerifyNone: true}},
		{"PKCS#1 v1.5 for PSS", "PS256", signedBy(keys.rsa, crypto.SHA256), want{signer.UnsafeVerifyNone: true}},
		{"RSA flipped bit", "RS256", flipLast, want{signer.UnsafeVerifyNone: true}},
		{"EC malformed DER", "ES256", fixed([]byte{0x30, 0x01, 0x02}), all},
		{"EC empty", "ES256", fixed(nil), all},
		{"EC trailing data", "ES256", func(_, s []byte) []byte { return append(append([]byte(nil), s...), 0) }, all},
		{"EC raw r||s instead of DER", "ES256", fixed(bytes.Repeat([]byte{0x11}, 64)), all},
		{"EC r zero", "ES256", fixed(lifecycletest.DERSig(big.NewInt(0), big.NewInt(5))), all},
		{"EC s negative", "ES256", fixed(lifecycletest.DERSig(big.NewInt(5), big.NewInt(-5))), all},
		{"EC r equals n", "ES256", fixed(lifecycletest.DERSig(n, big.NewInt(5))), all},
		{"EC s above n", "ES256", fixed(lifecycletest.DERSig(big.NewInt(5), new(big.Int).Add(n, big.NewInt(1)))), all},
		{"EC of the larger curve", "ES256", signedBy(keys.p384, crypto.SHA256), all},
		{"RSA one byte short", "RS256", func(_, s []byte) []byte { return s[1:] }, all},
		{"RSA one byte long", "RS256", func(_, s []byte) []byte { return append([]byte{0}, s...) }, all},
		{"RSA empty", "PS256", fixed(nil), all},
		{"control: EC as made", "ES256", nil, none},
		{"control: RSA as made", "RS256", nil, none},
	}
	for _, tc := range tests {
		for _, policy := range policies {
			t.Run(tc.name+"/"+policy.String(), func(t *testing.T) {
				key, _ := keyFor(t, tc.alg)
				s, b := newRemote(t, tc.alg, key, policy)
				b.answer = tc.answer
				sig, err := s.Sign(context.Background(), []byte("header.payload"))
				if tc.accepted[policy] {
					if err != nil {
						t.Fatalf("Sign = %v, want the signature accepted under %v", err, policy)
					}
					return
				}
				if !errors.Is(err, signer.ErrBackendIntegrity) {
					t.Fatalf("Sign = (%x, %v), want %v", sig, err, signer.ErrBackendIntegrity)
				}
				if sig != nil {
					t.Errorf("got a signature with the error")
				}
				if msg := err.Error(); !strings.Contains(msg, "test: sign ref-1") {
					t.Errorf("error %q does not name the backend and key", msg)
				}
			})
		}
	}
}

func TestRemoteSignerDigestSize(t *testing.T) {
	for _, tc := range []struct {
		alg string
		n   int
	}{{"ES256", 0}, {"ES256", 31}, {"ES256", 33}, {"ES256", 48}, {"ES384", 32}, {"RS256", 64}} {
		t.Run(fmt.Sprintf("%s/%d", tc.alg, tc.n), func(t *testing.T) {
			key, _ := keyFor(t, tc.alg)
			s, b := newRemote(t, tc.alg, key, signer.VerifyAll)
			_, err := s.(signer.DigestSigner).SignDigest(context.Background(), make([]byte, tc.n))
			if !errors.Is(err, errTestDigestSize) || !errors.Is(err, signer.ErrDigestSize) {
				t.Errorf("SignDigest(%d bytes) = %v, want %v and %v", tc.n, err, errTestDigestSize, signer.ErrDigestSize)
			}
			if got := b.calls.Load(); got != 0 {
				t.Errorf("backend called %d times, want 0", got)
			}
		})
	}
}

func TestRemoteSignerBackendError(t *testing.T) {
	s, b := newRemote(t, "ES256", remoteKeys(t).p256, signer.VerifyAll)
	b.err = fmt.Errorf("%w: test: slow down", signer.ErrThrottled)
	sig, err := s.Sign(context.Background(), []byte("header.payload"))
	if !errors.Is(err, signer.ErrThrottled) || sig != nil {
		t.Errorf("Sign = (%x, %v), want %v", sig, err, signer.ErrThrottled)
	}
	if errors.Is(err, signer.ErrBackendIntegrity) {
		t.Errorf("Sign = %v: a backend error is not an integrity failure", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.err = nil
	if _, err := s.Sign(ctx, []byte("header.payload")); !errors.Is(err, context.Canceled) {
		t.Errorf("Sign with a cancelled context = %v, want %v", err, context.Canceled)
	}
}

func TestNewRemoteSignerRefuses(t *testing.T) {
	keys := remoteKeys(t)
	ok := func() signer.RemoteKey {
		return signer.RemoteKey{
			KID: "k1", Algorithm: "ES256", Backend: "test", Ref: "ref-1", Public: keys.p256.Public(),
			SignDigest:    func(context.Context, []byte) ([]byte, error) { return nil, nil },
			DigestSizeErr: errTestDigestSize,
		}
	}
	small := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}
	tests := []struct {
		name   string
		change func(*signer.RemoteKey)
		want   error
	}{
		{"empty KID", func(k *signer.RemoteKey) { k.KID = "" }, signer.ErrConfig},
		{"empty Backend", func(k *signer.RemoteKey) { k.Backend = "" }, signer.ErrConfig},
		{"empty Ref", func(k *signer.RemoteKey) { k.Ref = "" }, signer.ErrConfig},
		{"no Public", func(k *signer.RemoteKey) { k.Public = nil }, signer.ErrConfig},
		{"no SignDigest", func(k *signer.RemoteKey) { k.SignDigest = nil }, signer.ErrConfig},
		{"unknown policy", func(k *signer.RemoteKey) { k.Verify = 7 }, signer.ErrConfig},
		{"negative policy", func(k *signer.RemoteKey) { k.Verify = -1 }, signer.ErrConfig},
		{"unknown algorithm", func(k *signer.RemoteKey) { k.Algorithm = "HS256" }, signer.ErrUnsupportedAlgorithm},
		{"algorithm in lower case", func(k *signer.RemoteKey) { k.Algorithm = "es256" }, signer.ErrUnsupportedAlgorithm},
		{"EdDSA has no digest form", func(k *signer.RemoteKey) { k.Algorithm = "EdDSA" }, signer.ErrUnsupportedAlgorithm},
		{"P-384 key for ES256", func(k *signer.RemoteKey) { k.Public = keys.p384.Public() }, signer.ErrUnsupportedAlgorithm},
		{"RSA key for ES256", func(k *signer.RemoteKey) { k.Public = keys.rsa.Public() }, signer.ErrUnsupportedAlgorithm},
		{"EC key for RS256", func(k *signer.RemoteKey) { k.Algorithm = "RS256" }, signer.ErrUnsupportedAlgorithm},
		{"RSA 1024", func(k *signer.RemoteKey) { k.Algorithm, k.Public = "RS256", small }, signer.ErrUnsupportedAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := ok()
			tc.change(&k)
			s, err := signer.NewRemoteSigner(k)
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewRemoteSigner = %v, want %v", err, tc.want)
			}
			if s != nil {
				t.Errorf("got a Signer with the error")
			}
		})
	}
	t.Run("control: the unchanged key", func(t *testing.T) {
		if _, err := signer.NewRemoteSigner(ok()); err != nil {
			t.Fatalf("NewRemoteSigner = %v, want nil", err)
		}
	})
}

// TestRemoteSignerShowsNoSecrets: the signer prints as backend, kid,
// algorithm and reference, in every format, and its JSON is empty.
func TestRemoteSignerShowsNoSecrets(t *testing.T) {
	s, _ := newRemote(t, "ES256", remoteKeys(t).p256, signer.VerifyAll)
	want := "test.Signer(kid=k1 alg=ES256 ref=ref-1)"
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		if got := fmt.Sprintf(format, s); got != want {
			t.Errorf("Sprintf(%q) = %q, want %q", format, got, want)
		}
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(js); got != "{}" {
		t.Errorf("JSON = %s, want {}", got)
	}
	r, ok := s.(interface{ Ref() string })
	if !ok {
		t.Fatalf("%T has no Ref method", s)
	}
	if got := r.Ref(); got != "ref-1" {
		t.Errorf("Ref() = %q, want %q", got, "ref-1")
	}
}

func TestVerifyPolicyString(t *testing.T) {
	for _, tc := range []struct {
		p    signer.VerifyPolicy
		want string
	}{
		{signer.VerifyAll, "VerifyAll"},
		{signer.VerifyRSAOnly, "VerifyRSAOnly"},
		{signer.UnsafeVerifyNone, "UnsafeVerifyNone"},
		{signer.VerifyPolicy(9), "VerifyPolicy(9)"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
	var zero signer.VerifyPolicy
	if zero != signer.VerifyAll {
		t.Errorf("zero VerifyPolicy = %v, want %v", zero, signer.VerifyAll)
	}
}
