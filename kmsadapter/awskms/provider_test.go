package awskms_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
)

const input = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJhbGljZSJ9"

func TestSignVerifiesWithTwoImplementations(t *testing.T) {
	c := localKMS(t)
	for _, tc := range []struct {
		alg   string
		opts  *awskms.Options
		curve string
		bits  int
	}{
		{alg: "ES256", curve: "P-256"},
		{alg: "ES256", opts: &awskms.Options{VerifyECDSA: true}, curve: "P-256"},
		{alg: "ES384", curve: "P-384"},
		{alg: "ES384", opts: &awskms.Options{VerifyECDSA: true}, curve: "P-384"},
		{alg: "RS256", bits: 2048},
		{alg: "RS256", opts: &awskms.Options{RSABits: 3072}, bits: 3072},
	} {
		t.Run(fmt.Sprintf("%s/%+v", tc.alg, tc.opts), func(t *testing.T) {
			ctx := testCtx(t)
			p := newProvider(t, c, tc.opts)
			kid := "kid-" + tc.alg + "-" + t.Name()
			s, ref, err := p.Generate(ctx, kid, tc.alg)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if s.KID() != kid || s.Algorithm() != tc.alg {
				t.Fatalf("KID, Algorithm = %q, %q; want %q, %q", s.KID(), s.Algorithm(), kid, tc.alg)
			}
			if !strings.HasPrefix(ref, "arn:aws:kms:us-east-1:111122223333:key/") {
				t.Fatalf("ref = %q, want a key ARN", ref)
			}
			switch k := s.Public().(type) {
			case *ecdsa.PublicKey:
				if got := k.Curve.Params().Name; got != tc.curve {
					t.Fatalf("curve = %s, want %s", got, tc.curve)
				}
			case *rsa.PublicKey:
				if got := k.N.BitLen(); got != tc.bits {
					t.Fatalf("RSA bits = %d, want %d", got, tc.bits)
				}
			}
			// The cached public key is the one KMS holds.
			pk, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(ref)})
			if err != nil {
				t.Fatalf("GetPublicKey: %v", err)
			}
			want, err := x509.ParsePKIXPublicKey(pk.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !want.(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Public()) {
				t.Fatal("Public() differs from the key KMS returns")
			}

			sig, err := s.Sign(ctx, []byte(input))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			a, _ := jose.Lookup(tc.alg)
			if err := a.Verify(s.Public(), []byte(input), sig); err != nil {
				t.Fatalf("jose.Verify: %v", err)
			}
			lifecycletest.VerifyStd(t, tc.alg, s.Public(), []byte(input), sig)
			if err := a.Verify(s.Public(), []byte(input+"x"), sig); !errors.Is(err, jose.ErrBadSignature) {
				t.Fatalf("Verify of another input: got %v, want %v", err, jose.ErrBadSignature)
			}

			ds, ok := s.(signer.DigestSigner)
			if !ok {
				t.Fatal("signer is not a signer.DigestSigner")
			}
			dsig, err := ds.SignDigest(ctx, a.Digest([]byte(input)))
			if err != nil {
				t.Fatalf("SignDigest: %v", err)
			}
			lifecycletest.VerifyStd(t, tc.alg, s.Public(), []byte(input), dsig)

			// Reopened from the reference, the key signs the same way.
			s2, err := p.Open(ctx, kid, ref)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if s2.KID() != kid || s2.Algorithm() != tc.alg {
				t.Fatalf("reopened KID, Algorithm = %q, %q; want %q, %q", s2.KID(), s2.Algorithm(), kid, tc.alg)
			}
			sig2, err := s2.Sign(ctx, []byte(input))
			if err != nil {
				t.Fatalf("Sign after Open: %v", err)
			}
			lifecycletest.VerifyStd(t, tc.alg, s.Public(), []byte(input), sig2)
		})
	}
}

func TestGenerateTagsKey(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	p := newProvider(t, c, &awskms.Options{Tags: map[string]string{"team": "core"}})
	_, ref, err := p.Generate(ctx, "kid-tags", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	out, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(ref)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range out.Tags {
		got[aws.ToString(tg.TagKey)] = aws.ToString(tg.TagValue)
	}
	want := map[string]string{awskms.TagKID: "kid-tags", awskms.TagAlg: "ES256", "team": "core"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("tag %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestConcurrentSign(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	s, _, err := newProvider(t, c, &awskms.Options{VerifyECDSA: true}).Generate(ctx, "kid-concurrent", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	a, _ := jose.Lookup("ES256")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			msg := []byte(fmt.Sprintf("%s.%d", input, i))
			sig, err := s.Sign(ctx, msg)
			if err == nil {
				err = a.Verify(s.Public(), msg, sig)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Sign: %v", err)
		}
	}
}

// TestPS256 documents the emulator's difference: local-kms signs PSS with
// the maximum salt length, which JWS verifiers refuse; the adapter checks
// every RSA signature and refuses to hand such a one out. Against AWS KMS
// (salt = hash length) the signature verifies and is returned.
func TestPS256(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	s, ref, err := newProvider(t, c, nil).Generate(ctx, "kid-ps256", "PS256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	digest := sha256.Sum256([]byte(input))
	raw, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(ref), Message: digest[:],
		MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	if err != nil {
		t.Fatalf("direct Sign: %v", err)
	}
	pub := s.Public().(*rsa.PublicKey)
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], raw.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
		t.Fatalf("backend's PSS signature does not verify with any salt: %v", err)
	}
	jwsSalt := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], raw.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil

	sig, err := s.Sign(ctx, []byte(input))
	if jwsSalt {
		t.Log("backend signs PSS with salt = hash length, as AWS KMS does")
		if err != nil {
			t.Fatalf("Sign with a backend using salt = hash length: %v", err)
		}
		lifecycletest.VerifyStd(t, "PS256", pub, []byte(input), sig)
		return
	}
	t.Log("backend signs PSS with another salt length, as local-kms does")
	if !errors.Is(err, signer.ErrBackendIntegrity) {
		t.Fatalf("Sign with a backend using another salt length: got %v, want %v", err, signer.ErrBackendIntegrity)
	}
}

func TestGenerateRefusesAlgorithm(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES512", "HS256", "none", "", "es256", "RS384", "PS512"} {
		t.Run(alg, func(t *testing.T) {
			f := &fakeClient{}
			_, _, err := newProvider(t, f, nil).Generate(testCtx(t), "kid", alg)
			if !errors.Is(err, signer.ErrUnsupportedAlgorithm) {
				t.Fatalf("Generate(%q): got %v, want %v", alg, err, signer.ErrUnsupportedAlgorithm)
			}
			if n := f.calls.Load(); n != 0 {
				t.Fatalf("Generate(%q) made %d backend calls, want 0", alg, n)
			}
		})
	}
}

func TestAlgorithms(t *testing.T) {
	got := strings.Join(awskms.Algorithms(), ",")
	if want := "ES256,ES384,PS256,RS256"; got != want {
		t.Fatalf("Algorithms() = %s, want %s", got, want)
	}
}

func TestNewProviderRefusesConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client awskms.Client
		opts   *awskms.Options
	}{
		{name: "nil client", opts: nil},
		{name: "RSA 1024", client: &fakeClient{}, opts: &awskms.Options{RSABits: 1024}},
		{name: "RSA 2047", client: &fakeClient{}, opts: &awskms.Options{RSABits: 2047}},
		{name: "reserved tag", client: &fakeClient{}, opts: &awskms.Options{Tags: map[string]string{awskms.TagKID: "x"}}},
		{name: "empty tag key", client: &fakeClient{}, opts: &awskms.Options{Tags: map[string]string{"": "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := awskms.NewProvider(tc.client, tc.opts); !errors.Is(err, awskms.ErrConfig) {
				t.Fatalf("NewProvider: got %v, want %v", err, awskms.ErrConfig)
			}
		})
	}
}

func TestRefusesKID(t *testing.T) {
	for _, kid := range []string{"", strings.Repeat("k", 257), "bad\xffutf8"} {
		t.Run(fmt.Sprintf("len%d", len(kid)), func(t *testing.T) {
			f := &fakeClient{}
			p := newProvider(t, f, nil)
			if _, _, err := p.Generate(testCtx(t), kid, "ES256"); !errors.Is(err, awskms.ErrConfig) {
				t.Fatalf("Generate: got %v, want %v", err, awskms.ErrConfig)
			}
			if _, err := p.Open(testCtx(t), kid, fakeARN); !errors.Is(err, awskms.ErrConfig) {
				t.Fatalf("Open: got %v, want %v", err, awskms.ErrConfig)
			}
			if n := f.calls.Load(); n != 0 {
				t.Fatalf("%d backend calls, want 0", n)
			}
		})
	}
}

func TestOpenRefusesReference(t *testing.T) {
	for _, ref := range []string{
		"",
		"alias/tokenkms",
		"arn:aws:kms:us-east-1:111122223333:alias/tokenkms",
		"00000000-0000-4000-8000-000000000000",
		"arn:aws:kms:us-east-1:111122223333:key/",
		"arn:aws:s3:us-east-1:111122223333:key/abc",
		"arn:aws:kms::111122223333:key/abc",
		"arn:aws:kms:us-east-1:111122223333:key/abc/def",
		"arn:aws:kms:us-east-1:111122223333:key/ab c",
		"local.v1.ES256.AAAA",
		"arn:aws:kms:us-east-1:111122223333:key/" + strings.Repeat("a", 2048),
	} {
		t.Run(ref, func(t *testing.T) {
			f := &fakeClient{}
			_, err := newProvider(t, f, nil).Open(testCtx(t), "kid", ref)
			if !errors.Is(err, signer.ErrBadReference) {
				t.Fatalf("Open(%q): got %v, want %v", ref, err, signer.ErrBadReference)
			}
			if n := f.calls.Load(); n != 0 {
				t.Fatalf("Open(%q) made %d backend calls, want 0", ref, n)
			}
		})
	}
}

func TestOpenRefusesKey(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	p := newProvider(t, c, nil)
	_, ref, err := p.Generate(ctx, "kid-open", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	untagged := createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	badAlg := createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify, tag(awskms.TagKID, "kid-x"), tag(awskms.TagAlg, "EdDSA"))
	wrongSpec := createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify, tag(awskms.TagKID, "kid-y"), tag(awskms.TagAlg, "ES384"))
	rsaAsEC := createKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify, tag(awskms.TagKID, "kid-z"), tag(awskms.TagAlg, "ES256"))
	symmetric := createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt, tag(awskms.TagKID, "kid-s"), tag(awskms.TagAlg, "ES256"))
	for _, tc := range []struct {
		name, kid, ref string
		want           error
	}{
		{name: "other kid", kid: "kid-other", ref: ref, want: signer.ErrBadReference},
		{name: "untagged key", kid: "kid-open", ref: untagged, want: signer.ErrBadReference},
		{name: "unknown key", kid: "kid-open", ref: fakeARN, want: signer.ErrKeyNotFound},
		{name: "unsupported alg tag", kid: "kid-x", ref: badAlg, want: signer.ErrUnsupportedAlgorithm},
		{name: "alg tag against key spec", kid: "kid-y", ref: wrongSpec, want: signer.ErrUnsupportedAlgorithm},
		{name: "RSA key tagged ES256", kid: "kid-z", ref: rsaAsEC, want: signer.ErrUnsupportedAlgorithm},
		{name: "symmetric key", kid: "kid-s", ref: symmetric, want: signer.ErrUnsupportedAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Open(ctx, tc.kid, tc.ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestStringShowsOnlyNames(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	s, ref, err := newProvider(t, c, nil).Generate(ctx, "kid-string", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	want := "awskms.Signer(kid=kid-string alg=ES256 ref=" + ref + ")"
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		if got := fmt.Sprintf(format, s); got != want {
			t.Errorf("Sprintf(%q) = %s, want %s", format, got, want)
		}
	}
	if got := fmt.Sprint(newProvider(t, c, nil)); got != "awskms.Provider" {
		t.Errorf("provider prints as %s", got)
	}
}
