//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"testing"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
)

// fakeToken is an in-memory pkcs11.Token: software keys behind the
// interface, with faults chosen by the test. It needs no HSM.
type fakeToken struct {
	keys    []crypto11.Signer // what FindKeyPairs returns
	attrs   crypto11.AttributeSet
	findErr error
	gen     crypto11.Signer // what the Generate methods return
	entered chan struct{}   // when set, closed as Generate starts
	block   chan struct{}   // when set, Generate waits for it
}

func (f *fakeToken) GenerateECDSAKeyPairWithAttributes(_, _ crypto11.AttributeSet, _ elliptic.Curve) (crypto11.Signer, error) {
	if f.entered != nil {
		close(f.entered)
	}
	if f.block != nil {
		<-f.block
	}
	return f.gen, nil
}

func (f *fakeToken) GenerateRSAKeyPairWithAttributes(_, _ crypto11.AttributeSet, _ int) (crypto11.SignerDecrypter, error) {
	return nil, p11.Error(p11.CKR_DEVICE_ERROR)
}

func (f *fakeToken) FindKeyPairs(_, _ []byte) ([]crypto11.Signer, error) {
	return f.keys, f.findErr
}

func (f *fakeToken) GenerateSecretKeyWithAttributes(crypto11.AttributeSet, int, *crypto11.SymmetricCipher) (*crypto11.SecretKey, error) {
	return nil, p11.Error(p11.CKR_DEVICE_ERROR)
}

func (f *fakeToken) FindKeys(_, _ []byte) ([]*crypto11.SecretKey, error) {
	return nil, p11.Error(p11.CKR_DEVICE_ERROR)
}

func (f *fakeToken) GetAttributes(any, []crypto11.AttributeType) (crypto11.AttributeSet, error) {
	return f.attrs, nil
}

// goodAttrs are the attributes of a properly protected key labelled kid.
func goodAttrs(kid string) crypto11.AttributeSet {
	return crypto11.AttributeSet{
		p11.CKA_LABEL:       p11.NewAttribute(p11.CKA_LABEL, []byte(kid)),
		p11.CKA_SENSITIVE:   p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.CKA_EXTRACTABLE: p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
	}
}

// faultKey signs with a software key, then lets the test corrupt the answer
// or replace it with an error.
type faultKey struct {
	crypto.Signer
	corrupt func(sig []byte) []byte
	err     error
	entered chan struct{} // when set, closed as Sign starts
	block   chan struct{} // when set, Sign waits for it
	mu      sync.Mutex
	deleted bool
	onDel   chan struct{}
}

func (k *faultKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.entered != nil {
		close(k.entered)
	}
	if k.block != nil {
		<-k.block
	}
	if k.err != nil {
		return nil, k.err
	}
	sig, err := k.Signer.Sign(rand.Reader, digest, opts)
	if err != nil || k.corrupt == nil {
		return sig, err
	}
	return k.corrupt(sig), nil
}

func (k *faultKey) Delete() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.deleted = true
	if k.onDel != nil {
		close(k.onDel)
	}
	return nil
}

func (k *faultKey) wasDeleted() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.deleted
}

const fakeLabel = "fake-token"

func fakeRef(alg string) string {
	return "pkcs11:v1:" + alg + ":0102030405060708090a0b0c0d0e0f10:" + fakeLabel
}

var (
	ecKey, _  = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _  = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
)

// openFake opens kid "k" from a fake token holding key.
func openFake(t *testing.T, alg string, key *faultKey, opts pkcs11.Options) signer.Signer {
	t.Helper()
	tok := &fakeToken{keys: []crypto11.Signer{key}, attrs: goodAttrs("k")}
	p, err := pkcs11.NewFromToken(tok, fakeLabel, opts)
	if err != nil {
		t.Fatalf("NewFromToken: %v", err)
	}
	s, err := p.Open(context.Background(), "k", fakeRef(alg))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// TestCorruptedSignature: a token answer that is malformed, out of range
// or (where checked) does not verify is refused with ErrBackendIntegrity.
func TestCorruptedSignature(t *testing.T) {
	n := elliptic.P256().Params().N
	flipLast := func(sig []byte) []byte {
		out := append([]byte(nil), sig...)
		out[len(out)-1] ^= 1
		return out
	}
	tests := []struct {
		name    string
		alg     string
		key     crypto.Signer
		opts    pkcs11.Options
		corrupt func([]byte) []byte
	}{
		{"EC garbage", "ES256", ecKey, pkcs11.Options{}, func([]byte) []byte { return []byte{0x30, 0x01, 0x02} }},
		{"EC empty", "ES256", ecKey, pkcs11.Options{}, func([]byte) []byte { return nil }},
		{"EC trailing data", "ES256", ecKey, pkcs11.Options{}, func(s []byte) []byte { return append(append([]byte(nil), s...), 0) }},
		{"EC r zero", "ES256", ecKey, pkcs11.Options{}, func([]byte) []byte { return lifecycletest.DERSig(big.NewInt(0), big.NewInt(5)) }},
		{"EC s negative", "ES256", ecKey, pkcs11.Options{}, func([]byte) []byte { return lifecycletest.DERSig(big.NewInt(5), big.NewInt(-5)) }},
		{"EC r equals n", "ES256", ecKey, pkcs11.Options{}, func([]byte) []byte { return lifecycletest.DERSig(n, big.NewInt(5)) }},
		{"EC s above n", "ES256", ecKey, pkcs11.Options{}, func([]byte) []byte { return lifecycletest.DERSig(big.NewInt(5), new(big.Int).Add(n, big.NewInt(1))) }},
		{"EC too large", "ES256", ecKey, pkcs11.Options{}, func([]byte) []byte { return lifecycletest.DERSig(big.NewInt(5), new(big.Int).Lsh(big.NewInt(1), 300)) }},
		{"EC bad signature, verified", "ES256", ecKey, pkcs11.Options{VerifyECDSA: true}, func([]byte) []byte { return lifecycletest.DERSig(big.NewInt(5), big.NewInt(7)) }},
		{"RSA flipped", "RS256", rsaKey, pkcs11.Options{}, flipLast},
		{"PSS flipped", "PS256", rsaKey, pkcs11.Options{}, flipLast},
		{"RSA short", "RS256", rsaKey, pkcs11.Options{}, func(s []byte) []byte { return s[1:] }},
		{"RSA long", "RS256", rsaKey, pkcs11.Options{}, func(s []byte) []byte { return append([]byte{0}, s...) }},
		{"RSA as PSS", "PS256", rsaKey, pkcs11.Options{}, func([]byte) []byte {
			h := crypto.SHA256.New()
			h.Write([]byte("x.y"))
			s, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, h.Sum(nil))
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openFake(t, tc.alg, &faultKey{Signer: tc.key, corrupt: tc.corrupt}, tc.opts)
			sig, err := s.Sign(context.Background(), []byte("x.y"))
			if !errors.Is(err, signer.ErrBackendIntegrity) {
				t.Fatalf("got %v, want %v", err, signer.ErrBackendIntegrity)
			}
			if sig != nil {
				t.Errorf("got a signature with an error")
			}
		})
	}
	t.Run("control: uncorrupted answers pass", func(t *testing.T) {
		for _, c := range []struct {
			alg string
			key crypto.Signer
		}{{"ES256", ecKey}, {"RS256", rsaKey}, {"PS256", rsaKey}} {
			s := openFake(t, c.alg, &faultKey{Signer: c.key}, pkcs11.Options{VerifyECDSA: true})
			sig, err := s.Sign(context.Background(), []byte("x.y"))
			if err != nil {
				t.Fatalf("%s: Sign: %v", c.alg, err)
			}
			a, _ := jose.Lookup(c.alg)
			if err := a.Verify(c.key.Public(), []byte("x.y"), sig); err != nil {
				t.Errorf("%s: %v", c.alg, err)
			}
		}
	})
}

// TestErrorMapping: PKCS#11 return values from the token become the signer
// sentinels, the code still reachable with errors.As.
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		code p11.Error
		want error
	}{
		{p11.CKR_OBJECT_HANDLE_INVALID, signer.ErrKeyNotFound},
		{p11.CKR_KEY_HANDLE_INVALID, signer.ErrKeyNotFound},
		{p11.CKR_KEY_FUNCTION_NOT_PERMITTED, signer.ErrKeyDisabled},
		{p11.CKR_PIN_INCORRECT, signer.ErrPermissionDenied},
		{p11.CKR_PIN_LOCKED, signer.ErrPermissionDenied},
		{p11.CKR_USER_NOT_LOGGED_IN, signer.ErrPermissionDenied},
		{p11.CKR_DEVICE_ERROR, signer.ErrUnavailable},
		{p11.CKR_DEVICE_REMOVED, signer.ErrUnavailable},
		{p11.CKR_TOKEN_NOT_PRESENT, signer.ErrUnavailable},
		{p11.CKR_SESSION_HANDLE_INVALID, signer.ErrUnavailable},
		{p11.CKR_SESSION_CLOSED, signer.ErrUnavailable},
		{p11.CKR_GENERAL_ERROR, signer.ErrUnavailable},
		{p11.CKR_MECHANISM_INVALID, signer.ErrUnsupportedAlgorithm},
		{p11.CKR_CURVE_NOT_SUPPORTED, signer.ErrUnsupportedAlgorithm},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("sign/%v", tc.code), func(t *testing.T) {
			s := openFake(t, "ES256", &faultKey{Signer: ecKey, err: tc.code}, pkcs11.Options{})
			_, err := s.Sign(context.Background(), []byte("x.y"))
			checkMapped(t, err, tc.want, tc.code)
		})
		t.Run(fmt.Sprintf("open/%v", tc.code), func(t *testing.T) {
			p, err := pkcs11.NewFromToken(&fakeToken{findErr: tc.code}, fakeLabel, pkcs11.Options{})
			if err != nil {
				t.Fatalf("NewFromToken: %v", err)
			}
			_, err = p.Open(context.Background(), "k", fakeRef("ES256"))
			checkMapped(t, err, tc.want, tc.code)
		})
	}
	t.Run("flattened by crypto11", func(t *testing.T) {
		flat := fmt.Errorf("C_SignInit: %v", p11.Error(p11.CKR_USER_NOT_LOGGED_IN))
		s := openFake(t, "ES256", &faultKey{Signer: ecKey, err: flat}, pkcs11.Options{})
		_, err := s.Sign(context.Background(), []byte("x.y"))
		checkMapped(t, err, signer.ErrPermissionDenied, p11.CKR_USER_NOT_LOGGED_IN)
	})
	t.Run("not a PKCS#11 error", func(t *testing.T) {
		s := openFake(t, "ES256", &faultKey{Signer: ecKey, err: errors.New("context is closed")}, pkcs11.Options{})
		if _, err := s.Sign(context.Background(), []byte("x.y")); !errors.Is(err, signer.ErrUnavailable) {
			t.Errorf("got %v, want %v", err, signer.ErrUnavailable)
		}
	})
}

func checkMapped(t *testing.T, err, want error, code p11.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	var pe p11.Error
	if !errors.As(err, &pe) || pe != code {
		t.Errorf("errors.As: got %v, want %v", pe, code)
	}
}

// TestOpenChecks: Open refuses what the token says about the key before
// any signature.
func TestOpenChecks(t *testing.T) {
	key := &faultKey{Signer: ecKey}
	attrs := func(edit func(crypto11.AttributeSet)) crypto11.AttributeSet {
		a := goodAttrs("k")
		edit(a)
		return a
	}
	tests := []struct {
		name string
		tok  *fakeToken
		alg  string
		want error
	}{
		{"no key", &fakeToken{attrs: goodAttrs("k")}, "ES256", signer.ErrKeyNotFound},
		{"two keys share the id", &fakeToken{keys: []crypto11.Signer{key, key}, attrs: goodAttrs("k")}, "ES256", signer.ErrBadReference},
		{"label of another kid", &fakeToken{keys: []crypto11.Signer{key}, attrs: goodAttrs("other")}, "ES256", signer.ErrKeyNotFound},
		{"no label", &fakeToken{keys: []crypto11.Signer{key}, attrs: attrs(func(a crypto11.AttributeSet) { delete(a, p11.CKA_LABEL) })}, "ES256", signer.ErrKeyNotFound},
		{"extractable", &fakeToken{keys: []crypto11.Signer{key}, attrs: attrs(func(a crypto11.AttributeSet) {
			a[p11.CKA_EXTRACTABLE] = p11.NewAttribute(p11.CKA_EXTRACTABLE, true)
		})}, "ES256", pkcs11.ErrKeyPolicy},
		{"not sensitive", &fakeToken{keys: []crypto11.Signer{key}, attrs: attrs(func(a crypto11.AttributeSet) {
			a[p11.CKA_SENSITIVE] = p11.NewAttribute(p11.CKA_SENSITIVE, false)
		})}, "ES256", pkcs11.ErrKeyPolicy},
		{"sensitivity unknown", &fakeToken{keys: []crypto11.Signer{key}, attrs: attrs(func(a crypto11.AttributeSet) { delete(a, p11.CKA_SENSITIVE) })}, "ES256", pkcs11.ErrKeyPolicy},
		{"curve of another alg", &fakeToken{keys: []crypto11.Signer{&faultKey{Signer: ec384}}, attrs: goodAttrs("k")}, "ES256", signer.ErrBadReference},
		{"RSA key for ES256", &fakeToken{keys: []crypto11.Signer{&faultKey{Signer: rsaKey}}, attrs: goodAttrs("k")}, "ES256", signer.ErrBadReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pkcs11.NewFromToken(tc.tok, fakeLabel, pkcs11.Options{})
			if err != nil {
				t.Fatalf("NewFromToken: %v", err)
			}
			s, err := p.Open(context.Background(), "k", fakeRef(tc.alg))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if s != nil {
				t.Errorf("got signer %v with an error", s)
			}
		})
	}
}

// TestGenerateWrongKey: a token that generates a key of the wrong curve is
// caught, and the stray key deleted.
func TestGenerateWrongKey(t *testing.T) {
	key := &faultKey{Signer: ec384}
	p, err := pkcs11.NewFromToken(&fakeToken{gen: key}, fakeLabel, pkcs11.Options{})
	if err != nil {
		t.Fatalf("NewFromToken: %v", err)
	}
	s, ref, err := p.Generate(context.Background(), "k", "ES256")
	if !errors.Is(err, signer.ErrBackendIntegrity) {
		t.Fatalf("got %v, want %v", err, signer.ErrBackendIntegrity)
	}
	if s != nil || ref != "" {
		t.Errorf("got signer %v ref %q with an error", s, ref)
	}
	if !key.wasDeleted() {
		t.Errorf("the wrong key was left in the token")
	}
}

// TestDeadlineWhileTokenBusy: a PKCS#11 call that does not return in time
// gives the context's error to the caller; a key generated after the caller
// gave up is deleted.
func TestDeadlineWhileTokenBusy(t *testing.T) {
	t.Run("sign", func(t *testing.T) {
		block, entered := make(chan struct{}), make(chan struct{})
		defer close(block)
		s := openFake(t, "ES256", &faultKey{Signer: ecKey, block: block, entered: entered}, pkcs11.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := s.Sign(ctx, []byte("x.y"))
			done <- err
		}()
		<-entered // the token is busy with this signature
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want %v", err, context.Canceled)
		}
	})
	t.Run("generate", func(t *testing.T) {
		block, entered := make(chan struct{}), make(chan struct{})
		key := &faultKey{Signer: ecKey, onDel: make(chan struct{})}
		p, err := pkcs11.NewFromToken(&fakeToken{gen: key, block: block, entered: entered}, fakeLabel, pkcs11.Options{})
		if err != nil {
			t.Fatalf("NewFromToken: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, _, err := p.Generate(ctx, "k", "ES256")
			done <- err
		}()
		<-entered // the token is creating the key
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want %v", err, context.Canceled)
		}
		if key.wasDeleted() {
			t.Fatalf("key deleted before the token created it")
		}
		close(block) // the token finishes creating the key nobody asked for any more
		<-key.onDel  // and the adapter deletes it (the test hangs, and times out, if not)
	})
}

func TestNewFromTokenErrors(t *testing.T) {
	tests := []struct {
		name  string
		tok   pkcs11.Token
		label string
		opts  pkcs11.Options
	}{
		{"nil token", nil, fakeLabel, pkcs11.Options{}},
		{"no label", &fakeToken{}, "", pkcs11.Options{}},
		{"RSA 1024", &fakeToken{}, fakeLabel, pkcs11.Options{RSABits: 1024}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pkcs11.NewFromToken(tc.tok, tc.label, tc.opts); !errors.Is(err, pkcs11.ErrConfig) {
				t.Errorf("got %v, want %v", err, pkcs11.ErrConfig)
			}
		})
	}
}

func TestSignDigestLength(t *testing.T) {
	s := openFake(t, "ES256", &faultKey{Signer: ecKey}, pkcs11.Options{})
	for _, n := range []int{0, 31, 33, 48} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			_, err := s.(signer.DigestSigner).SignDigest(context.Background(), make([]byte, n))
			if !errors.Is(err, pkcs11.ErrInvalidArgument) {
				t.Errorf("got %v, want %v", err, pkcs11.ErrInvalidArgument)
			}
		})
	}
}
