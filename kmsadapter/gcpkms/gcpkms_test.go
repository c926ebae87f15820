package gcpkms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/google/go-cmp/cmp"
	"github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/tokenkms/tokenkms/internal/gcpkmsfake"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/kmsadapter/gcpkms"
	"github.com/tokenkms/tokenkms/signer"
)

const (
	location = "projects/p/locations/global"
	ring     = location + "/keyRings/tokenkms"
	input    = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJhbGljZSJ9"
)

type env struct {
	srv    *gcpkmsfake.Server
	client *kms.KeyManagementClient
	prov   *gcpkms.Provider
}

// newEnv starts a fake Cloud KMS with one key ring and a Provider on it.
func newEnv(t testing.TB) env {
	t.Helper()
	srv := gcpkmsfake.Start(t)
	c := srv.Client(t)
	if _, err := c.CreateKeyRing(ctxT(t), &kmspb.CreateKeyRingRequest{Parent: location, KeyRingId: "tokenkms"}); err != nil {
		t.Fatalf("CreateKeyRing: %v", err)
	}
	p, err := gcpkms.NewProvider(gcpkms.Config{Client: c, KeyRing: ring})
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return env{srv: srv, client: c, prov: p}
}

// ctxT is a context with a deadline: the client retries UNAVAILABLE for a
// minute without one.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e env) generate(t testing.TB, kid, alg string) (signer.Signer, string) {
	t.Helper()
	s, ref, err := e.prov.Generate(ctxT(t), kid, alg)
	if err != nil {
		t.Fatalf("Generate(%s, %s): %v", kid, alg, err)
	}
	return s, ref
}

func TestGenerateSignOpen(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		alg     string
		keyAlg  kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm
		pubType string
	}{
		{"ES256", kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256, "*ecdsa.PublicKey"},
		{"ES384", kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384, "*ecdsa.PublicKey"},
		{"RS256", kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_2048_SHA256, "*rsa.PublicKey"},
		{"PS256", kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256, "*rsa.PublicKey"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			ctx := ctxT(t)
			kid := "kid:" + tc.alg
			s, ref := e.generate(t, kid, tc.alg)
			if got, want := ref, ring+"/cryptoKeys/"+gcpkms.CryptoKeyID(kid)+"/cryptoKeyVersions/1"; got != want {
				t.Fatalf("ref = %q, want %q", got, want)
			}
			if s.KID() != kid || s.Algorithm() != tc.alg {
				t.Fatalf("KID, Algorithm = %q, %q; want %q, %q", s.KID(), s.Algorithm(), kid, tc.alg)
			}
			if got := fmt.Sprintf("%T", s.Public()); got != tc.pubType {
				t.Fatalf("Public() is %s, want %s", got, tc.pubType)
			}
			a, _ := jose.Lookup(tc.alg)
			for _, in := range [][]byte{[]byte(input), {}, bytes.Repeat([]byte("x"), 1<<16)} {
				sig, err := s.Sign(ctx, in)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if err := a.Verify(s.Public(), in, sig); err != nil {
					t.Fatalf("jose Verify: %v", err)
				}
				lifecycletest.VerifyStd(t, tc.alg, s.Public(), in, sig)
			}

			ck, err := e.client.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: strings.TrimSuffix(ref, "/cryptoKeyVersions/1")})
			if err != nil {
				t.Fatalf("GetCryptoKey: %v", err)
			}
			wantLabels := map[string]string{gcpkms.LabelKID: "kid_" + strings.ToLower(tc.alg), gcpkms.LabelManagedBy: "tokenkms"}
			if diff := cmp.Diff(wantLabels, ck.GetLabels()); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if got := ck.GetVersionTemplate().GetAlgorithm(); got != tc.keyAlg {
				t.Errorf("key algorithm = %v, want %v", got, tc.keyAlg)
			}
			if got := ck.GetVersionTemplate().GetProtectionLevel(); got != kmspb.ProtectionLevel_HSM {
				t.Errorf("protection level = %v, want HSM (the default)", got)
			}

			o, err := e.prov.Open(ctx, kid, ref)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !o.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Public()) {
				t.Fatal("Open returned another public key than Generate")
			}
			if o.KID() != kid || o.Algorithm() != tc.alg {
				t.Fatalf("opened KID, Algorithm = %q, %q; want %q, %q", o.KID(), o.Algorithm(), kid, tc.alg)
			}
			sig, err := o.Sign(ctx, []byte(input))
			if err != nil {
				t.Fatalf("Sign after Open: %v", err)
			}
			if err := a.Verify(s.Public(), []byte(input), sig); err != nil {
				t.Fatalf("jose Verify after Open: %v", err)
			}
			lifecycletest.VerifyStd(t, tc.alg, s.Public(), []byte(input), sig)
		})
	}
}

func TestGenerateSoftwareLevel(t *testing.T) {
	e := newEnv(t)
	p, err := gcpkms.NewProvider(gcpkms.Config{Client: e.client, KeyRing: ring, ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE})
	if err != nil {
		t.Fatal(err)
	}
	_, ref, err := p.Generate(ctxT(t), "soft", "ES256")
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.client.GetCryptoKeyVersion(ctxT(t), &kmspb.GetCryptoKeyVersionRequest{Name: ref})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetProtectionLevel(); got != kmspb.ProtectionLevel_SOFTWARE {
		t.Fatalf("protection level = %v, want SOFTWARE", got)
	}
}

func TestPublicKeyFetchedOnce(t *testing.T) {
	e := newEnv(t)
	s, ref := e.generate(t, "cached", "ES256")
	if _, err := e.prov.Open(ctxT(t), "cached", ref); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for range n {
		if _, err := s.Sign(ctxT(t), []byte(input)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.srv.Calls("GetPublicKey"); got != 2 {
		t.Errorf("GetPublicKey calls = %d, want 2 (one per Generate/Open, none per Sign)", got)
	}
	if got := e.srv.Calls("AsymmetricSign"); got != n {
		t.Errorf("AsymmetricSign calls = %d, want %d", got, n)
	}
}

func TestGeneratePendingGeneration(t *testing.T) {
	e := newEnv(t)
	e.srv.SetFaults(gcpkmsfake.Faults{PendingGeneration: 2})
	s, _ := e.generate(t, "slow", "ES384")
	if got := e.srv.Calls("GetCryptoKeyVersion"); got != 3 {
		t.Errorf("GetCryptoKeyVersion calls = %d, want 3 (two PENDING_GENERATION, then ENABLED)", got)
	}
	if s.Algorithm() != "ES384" {
		t.Errorf("Algorithm = %q, want ES384", s.Algorithm())
	}
}

func TestGenerateRefused(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, kid, alg string
		want           error
	}{
		{"EdDSA", "k", "EdDSA", signer.ErrUnsupportedAlgorithm},
		{"ES512", "k", "ES512", signer.ErrUnsupportedAlgorithm},
		{"RS384", "k", "RS384", signer.ErrUnsupportedAlgorithm},
		{"HS256", "k", "HS256", signer.ErrUnsupportedAlgorithm},
		{"none", "k", "none", signer.ErrUnsupportedAlgorithm},
		{"lowercase", "k", "es256", signer.ErrUnsupportedAlgorithm},
		{"empty kid", "", "ES256", signer.ErrBadReference},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.prov.Generate(ctxT(t), tc.kid, tc.alg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Generate(%q, %q) error = %v, want %v", tc.kid, tc.alg, err, tc.want)
			}
		})
	}
	if got := e.srv.Calls("CreateCryptoKey"); got != 0 {
		t.Errorf("CreateCryptoKey calls = %d, want 0", got)
	}
}

func TestGenerateKidTwice(t *testing.T) {
	e := newEnv(t)
	e.generate(t, "once", "ES256")
	_, _, err := e.prov.Generate(ctxT(t), "once", "ES256")
	if !errors.Is(err, gcpkms.ErrKeyExists) {
		t.Fatalf("second Generate error = %v, want %v", err, gcpkms.ErrKeyExists)
	}
	if got := status.Code(err); got != codes.AlreadyExists {
		t.Errorf("backend code = %v, want AlreadyExists", got)
	}
}

func TestGenerateUnknownKeyRing(t *testing.T) {
	e := newEnv(t)
	p, err := gcpkms.NewProvider(gcpkms.Config{Client: e.client, KeyRing: location + "/keyRings/missing"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Generate(ctxT(t), "k", "ES256")
	if !errors.Is(err, signer.ErrKeyNotFound) {
		t.Fatalf("error = %v, want %v", err, signer.ErrKeyNotFound)
	}
}

func TestCryptoKeyID(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
	kids := []string{"a", "a.b", "a:b", "a_b", "k-2026-01", strings.Repeat("x", 200), strings.Repeat("x", 201), "é/ü", ""}
	seen := map[string]string{}
	for _, kid := range kids {
		id := gcpkms.CryptoKeyID(kid)
		if !valid.MatchString(id) {
			t.Errorf("CryptoKeyID(%q) = %q, not a valid Cloud KMS id", kid, id)
		}
		if other, ok := seen[id]; ok {
			t.Errorf("CryptoKeyID(%q) = CryptoKeyID(%q) = %q", kid, other, id)
		}
		seen[id] = kid
		if again := gcpkms.CryptoKeyID(kid); again != id {
			t.Errorf("CryptoKeyID(%q) not deterministic: %q then %q", kid, id, again)
		}
	}
}

func TestOpenBadReference(t *testing.T) {
	e := newEnv(t)
	_, ref := e.generate(t, "mine", "ES256")
	keyName := strings.TrimSuffix(ref, "/cryptoKeyVersions/1")
	for _, tc := range []struct{ name, kid, ref string }{
		{"empty", "mine", ""},
		{"key ring", "mine", ring},
		{"crypto key, no version", "mine", keyName},
		{"other kid", "theirs", ref},
		{"empty kid", "", ref},
		{"bad version id", "mine", keyName + "/cryptoKeyVersions/1.0"},
		{"extra segment", "mine", ref + "/x"},
		{"wrong collection", "mine", strings.Replace(ref, "keyRings", "keyrings", 1)},
		{"local reference", "mine", "local.v1.ES256.AAAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.prov.Open(ctxT(t), tc.kid, tc.ref)
			if !errors.Is(err, signer.ErrBadReference) {
				t.Fatalf("Open(%q, %q) error = %v, want %v", tc.kid, tc.ref, err, signer.ErrBadReference)
			}
		})
	}
	if got := e.srv.Calls("GetPublicKey"); got != 1 {
		t.Errorf("GetPublicKey calls = %d, want 1 (refused references are not sent)", got)
	}
}

func TestNewProviderConfig(t *testing.T) {
	c := newEnv(t).client
	for _, tc := range []struct {
		name string
		cfg  gcpkms.Config
	}{
		{"no client", gcpkms.Config{KeyRing: ring}},
		{"no key ring", gcpkms.Config{Client: c}},
		{"location only", gcpkms.Config{Client: c, KeyRing: location}},
		{"crypto key", gcpkms.Config{Client: c, KeyRing: ring + "/cryptoKeys/k"}},
		{"bad ring id", gcpkms.Config{Client: c, KeyRing: location + "/keyRings/a.b"}},
		{"trailing slash", gcpkms.Config{Client: c, KeyRing: ring + "/"}},
		{"external level", gcpkms.Config{Client: c, KeyRing: ring, ProtectionLevel: kmspb.ProtectionLevel_EXTERNAL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := gcpkms.NewProvider(tc.cfg); !errors.Is(err, gcpkms.ErrConfig) {
				t.Fatalf("NewProvider error = %v, want %v", err, gcpkms.ErrConfig)
			}
		})
	}
}

func TestSignDigest(t *testing.T) {
	e := newEnv(t)
	s, _ := e.generate(t, "digest", "ES384")
	ds := s.(signer.DigestSigner)
	d := sha512.Sum384([]byte(input))
	sig, err := ds.SignDigest(ctxT(t), d[:])
	if err != nil {
		t.Fatalf("SignDigest: %v", err)
	}
	lifecycletest.VerifyStd(t, "ES384", s.Public(), []byte(input), sig)

	before := e.srv.Calls("AsymmetricSign")
	for _, n := range []int{0, 32, 47, 49, 64} {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			if _, err := ds.SignDigest(ctxT(t), make([]byte, n)); !errors.Is(err, gcpkms.ErrDigestSize) {
				t.Fatalf("SignDigest(%d bytes) error = %v, want %v", n, err, gcpkms.ErrDigestSize)
			}
		})
	}
	if got := e.srv.Calls("AsymmetricSign"); got != before {
		t.Errorf("AsymmetricSign calls grew by %d for refused digests, want 0", got-before)
	}
}

func TestAsCryptoSigner(t *testing.T) {
	e := newEnv(t)
	s, _ := e.generate(t, "bridge", "ES256")
	cs, err := signer.AsCryptoSigner(ctxT(t), s)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte(input))
	der, err := cs.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), d[:], der) {
		t.Fatal("crypto.Signer view's DER signature does not verify")
	}
}

// TestSignIntegrityFaults injects each fault of a signature answer, with
// the default adapter and with Config.UnsafeSkipLocalVerify: the checksums
// and the name are checked in both; only the local verification catches a
// backend that signed another digest, so without it that signature comes
// back and does not verify.
func TestSignIntegrityFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault gcpkmsfake.Faults
		// needsVerify: only the local verification catches this fault.
		needsVerify bool
	}{
		{name: "wrong name", fault: gcpkmsfake.Faults{WrongName: true}},
		{name: "signature_crc32c corrupted", fault: gcpkmsfake.Faults{CorruptResponseCRC: true}},
		{name: "signature bytes flipped in transit", fault: gcpkmsfake.Faults{CorruptPayload: true}},
		{name: "verified_digest_crc32c false", fault: gcpkmsfake.Faults{UnverifiedDigest: true}},
		{name: "backend signed another digest", fault: gcpkmsfake.Faults{BadSignature: true}, needsVerify: true},
	} {
		for _, alg := range []string{"ES256", "PS256"} {
			for _, skip := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/UnsafeSkipLocalVerify=%t", tc.name, alg, skip), func(t *testing.T) {
					e := newEnv(t)
					p, err := gcpkms.NewProvider(gcpkms.Config{Client: e.client, KeyRing: ring, UnsafeSkipLocalVerify: skip})
					if err != nil {
						t.Fatal(err)
					}
					s, _, err := p.Generate(ctxT(t), "k", alg)
					if err != nil {
						t.Fatalf("Generate: %v", err)
					}
					e.srv.SetFaults(tc.fault)
					sig, err := s.Sign(ctxT(t), []byte(input))
					if skip && tc.needsVerify {
						if err != nil {
							t.Fatalf("Sign error = %v, want none: nothing left checks the signature", err)
						}
						a, _ := jose.Lookup(alg)
						if a.Verify(s.Public(), []byte(input), sig) == nil {
							t.Fatal("the fault's signature verifies; want one that does not")
						}
					} else {
						if !errors.Is(err, signer.ErrBackendIntegrity) {
							t.Fatalf("Sign error = %v, want %v", err, signer.ErrBackendIntegrity)
						}
						if sig != nil {
							t.Errorf("Sign returned a signature with its error")
						}
					}
					e.srv.SetFaults(gcpkmsfake.Faults{})
					sig, err = s.Sign(ctxT(t), []byte(input))
					if err != nil {
						t.Fatalf("Sign after the fault cleared: %v", err)
					}
					lifecycletest.VerifyStd(t, alg, s.Public(), []byte(input), sig)
				})
			}
		}
	}
}

func TestOpenIntegrityFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault gcpkmsfake.Faults
	}{
		{"wrong name", gcpkmsfake.Faults{WrongName: true}},
		{"pem_crc32c corrupted", gcpkmsfake.Faults{CorruptResponseCRC: true}},
		{"PEM flipped in transit", gcpkmsfake.Faults{CorruptPayload: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, ref := e.generate(t, "k", "ES256")
			e.srv.SetFaults(tc.fault)
			if _, err := e.prov.Open(ctxT(t), "k", ref); !errors.Is(err, signer.ErrBackendIntegrity) {
				t.Fatalf("Open error = %v, want %v", err, signer.ErrBackendIntegrity)
			}
			if _, _, err := e.prov.Generate(ctxT(t), "k2", "ES256"); !errors.Is(err, signer.ErrBackendIntegrity) {
				t.Fatalf("Generate error = %v, want %v", err, signer.ErrBackendIntegrity)
			}
		})
	}
}

// faultyClient changes the answers of a real client, to forge answers the
// fake server never gives: consistent checksums over wrong content.
type faultyClient struct {
	gcpkms.Client
	sign func(*kmspb.AsymmetricSignResponse)
	pub  func(*kmspb.PublicKey)
}

func (c faultyClient) AsymmetricSign(ctx context.Context, req *kmspb.AsymmetricSignRequest, opts ...gax.CallOption) (*kmspb.AsymmetricSignResponse, error) {
	r, err := c.Client.AsymmetricSign(ctx, req, opts...)
	if err == nil && c.sign != nil {
		c.sign(r)
	}
	return r, err
}

func (c faultyClient) GetPublicKey(ctx context.Context, req *kmspb.GetPublicKeyRequest, opts ...gax.CallOption) (*kmspb.PublicKey, error) {
	r, err := c.Client.GetPublicKey(ctx, req, opts...)
	if err == nil && c.pub != nil {
		c.pub(r)
	}
	return r, err
}

func TestForgedAnswers(t *testing.T) {
	e := newEnv(t)
	_, refP384 := e.generate(t, "p384", "ES384")
	otherPub, err := e.client.GetPublicKey(ctxT(t), &kmspb.GetPublicKeyRequest{Name: refP384})
	if err != nil {
		t.Fatal(err)
	}
	_, ref := e.generate(t, "k", "ES256")
	_, refRSA := e.generate(t, "rsa", "RS256")
	rsaPub, err := e.client.GetPublicKey(ctxT(t), &kmspb.GetPublicKeyRequest{Name: refRSA})
	if err != nil {
		t.Fatal(err)
	}
	withSig := func(sig []byte) func(*kmspb.AsymmetricSignResponse) {
		return func(r *kmspb.AsymmetricSignResponse) {
			r.Signature = sig
			r.SignatureCrc32C.Value = gcpkmsfake.CRC32C(sig)
		}
	}
	withPEM := func(p string, alg kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm) func(*kmspb.PublicKey) {
		return func(r *kmspb.PublicKey) {
			r.Pem = p
			r.PemCrc32C.Value = gcpkmsfake.CRC32C([]byte(p))
			r.Algorithm = alg
		}
	}
	for _, tc := range []struct {
		name   string
		client faultyClient
		want   error
	}{
		{"signature not DER", faultyClient{sign: withSig([]byte("not a signature"))}, signer.ErrBackendIntegrity},
		{"empty signature", faultyClient{sign: withSig(nil)}, signer.ErrBackendIntegrity},
		{"DER with trailing byte", faultyClient{sign: func(r *kmspb.AsymmetricSignResponse) {
			withSig(append(r.Signature, 0))(r)
		}}, signer.ErrBackendIntegrity},
		{"no signature_crc32c", faultyClient{sign: func(r *kmspb.AsymmetricSignResponse) { r.SignatureCrc32C = nil }}, signer.ErrBackendIntegrity},
		{"public key of another curve", faultyClient{pub: withPEM(otherPub.GetPem(), kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256)}, signer.ErrBackendIntegrity},
		{"RSA key under an EC algorithm", faultyClient{pub: withPEM(rsaPub.GetPem(), kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256)}, signer.ErrBackendIntegrity},
		{"PEM not a public key", faultyClient{pub: withPEM("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256)}, signer.ErrBackendIntegrity},
		{"two PEM blocks", faultyClient{pub: func(r *kmspb.PublicKey) {
			withPEM(r.Pem+r.Pem, r.Algorithm)(r)
		}}, signer.ErrBackendIntegrity},
		{"no pem_crc32c", faultyClient{pub: func(r *kmspb.PublicKey) { r.PemCrc32C = nil }}, signer.ErrBackendIntegrity},
		{"secp256k1 algorithm", faultyClient{pub: func(r *kmspb.PublicKey) {
			r.Algorithm = kmspb.CryptoKeyVersion_EC_SIGN_SECP256K1_SHA256
		}}, signer.ErrUnsupportedAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.Client = e.client
			p, err := gcpkms.NewProvider(gcpkms.Config{Client: tc.client, KeyRing: ring})
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Open(ctxT(t), "k", ref)
			if err == nil {
				_, err = s.Sign(ctxT(t), []byte(input))
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func setState(t *testing.T, c *kms.KeyManagementClient, ref string, st kmspb.CryptoKeyVersion_CryptoKeyVersionState) {
	t.Helper()
	_, err := c.UpdateCryptoKeyVersion(ctxT(t), &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: ref, State: st},
		UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}},
	})
	if err != nil {
		t.Fatalf("set %s to %v: %v", ref, st, err)
	}
}

func TestKeyStateErrors(t *testing.T) {
	e := newEnv(t)
	s, ref := e.generate(t, "states", "ES256")

	setState(t, e.client, ref, kmspb.CryptoKeyVersion_DISABLED)
	_, err := s.Sign(ctxT(t), []byte(input))
	checkBackendErr(t, "Sign on a disabled version", err, signer.ErrKeyDisabled, codes.FailedPrecondition)
	_, err = e.prov.Open(ctxT(t), "states", ref)
	checkBackendErr(t, "Open of a disabled version", err, signer.ErrKeyDisabled, codes.FailedPrecondition)

	setState(t, e.client, ref, kmspb.CryptoKeyVersion_ENABLED)
	if _, err := s.Sign(ctxT(t), []byte(input)); err != nil {
		t.Fatalf("Sign after re-enabling: %v", err)
	}

	if _, err := e.client.DestroyCryptoKeyVersion(ctxT(t), &kmspb.DestroyCryptoKeyVersionRequest{Name: ref}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Sign(ctxT(t), []byte(input))
	checkBackendErr(t, "Sign on a destroy-scheduled version", err, signer.ErrKeyPendingDeletion, codes.FailedPrecondition)

	missing := ring + "/cryptoKeys/" + gcpkms.CryptoKeyID("ghost") + "/cryptoKeyVersions/1"
	_, err = e.prov.Open(ctxT(t), "ghost", missing)
	checkBackendErr(t, "Open of an unknown key", err, signer.ErrKeyNotFound, codes.NotFound)
	_, err = e.prov.Open(ctxT(t), "states", strings.TrimSuffix(ref, "1")+"2")
	checkBackendErr(t, "Open of an unknown version", err, signer.ErrKeyNotFound, codes.NotFound)
}

// checkBackendErr checks the sentinel and that the client's error is still
// reachable.
func checkBackendErr(t *testing.T, what string, err, want error, code codes.Code) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
	var ae *apierror.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: the client's *apierror.APIError is not reachable in %v", what, err)
	}
	if got := ae.GRPCStatus().Code(); got != code {
		t.Fatalf("%s: backend code = %v, want %v", what, got, code)
	}
}

func TestInjectedCodes(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		want error
	}{
		{codes.NotFound, signer.ErrKeyNotFound},
		{codes.ResourceExhausted, signer.ErrThrottled},
		{codes.PermissionDenied, signer.ErrPermissionDenied},
		{codes.Unauthenticated, signer.ErrPermissionDenied},
		{codes.FailedPrecondition, signer.ErrKeyDisabled},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			e := newEnv(t)
			s, _ := e.generate(t, "k", "ES256")
			kek := newKEK(t, e, "kek")
			blob, err := kek.Wrap(ctxT(t), []byte("data key"), nil)
			if err != nil {
				t.Fatal(err)
			}
			e.srv.SetFaults(gcpkmsfake.Faults{Code: tc.code})
			_, err = s.Sign(ctxT(t), []byte(input))
			checkBackendErr(t, "Sign", err, tc.want, tc.code)
			_, err = kek.Wrap(ctxT(t), []byte("data key"), nil)
			checkBackendErr(t, "Wrap", err, tc.want, tc.code)
			_, err = kek.Unwrap(ctxT(t), blob, nil)
			checkBackendErr(t, "Unwrap", err, tc.want, tc.code)
		})
	}
	t.Run("InvalidArgument has no sentinel", func(t *testing.T) {
		e := newEnv(t)
		s, _ := e.generate(t, "k", "ES256")
		e.srv.SetFaults(gcpkmsfake.Faults{Code: codes.InvalidArgument})
		_, err := s.Sign(ctxT(t), []byte(input))
		if err == nil || status.Code(err) != codes.InvalidArgument {
			t.Fatalf("error = %v, want one with code InvalidArgument", err)
		}
		for _, sentinel := range []error{signer.ErrKeyNotFound, signer.ErrKeyDisabled, signer.ErrUnavailable, signer.ErrBackendIntegrity} {
			if errors.Is(err, sentinel) {
				t.Errorf("error %v matches %v", err, sentinel)
			}
		}
	})
}

// TestUnavailable: the client retries UNAVAILABLE until the deadline; the
// adapter reports signer.ErrUnavailable.
func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	s, _ := e.generate(t, "k", "ES256")
	e.srv.SetFaults(gcpkmsfake.Faults{Code: codes.Unavailable})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Sign(ctx, []byte(input))
	if !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("error = %v, want %v", err, signer.ErrUnavailable)
	}
	if got := e.srv.Calls("AsymmetricSign"); got < 1 {
		t.Fatalf("AsymmetricSign calls = %d, want at least 1", got)
	}
}

func TestDeadlineHonoured(t *testing.T) {
	e := newEnv(t)
	s, ref := e.generate(t, "k", "ES256")
	kek := newKEK(t, e, "kek")
	blob, err := kek.Wrap(ctxT(t), []byte("data key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetFaults(gcpkmsfake.Faults{Delay: time.Minute})
	for _, tc := range []struct {
		name string
		call func(context.Context) error
	}{
		{"Sign", func(ctx context.Context) error { _, err := s.Sign(ctx, []byte(input)); return err }},
		{"Open", func(ctx context.Context) error { _, err := e.prov.Open(ctx, "k", ref); return err }},
		{"Generate", func(ctx context.Context) error { _, _, err := e.prov.Generate(ctx, "k2", "ES256"); return err }},
		{"Wrap", func(ctx context.Context) error { _, err := kek.Wrap(ctx, []byte("x"), nil); return err }},
		{"Unwrap", func(ctx context.Context) error { _, err := kek.Unwrap(ctx, blob, nil); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			err := tc.call(ctx)
			if !errors.Is(err, signer.ErrUnavailable) {
				t.Fatalf("error = %v, want %v", err, signer.ErrUnavailable)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error = %v, want it to wrap %v", err, context.DeadlineExceeded)
			}
		})
	}
}

func TestString(t *testing.T) {
	e := newEnv(t)
	s, ref := e.generate(t, "shown", "ES256")
	kek := newKEK(t, e, "kek")
	wantS := "gcpkms.Signer(kid=shown alg=ES256 ref=" + ref + ")"
	wantW := "gcpkms.Wrapper(key=" + ring + "/cryptoKeys/kek)"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, s); got != wantS {
			t.Errorf("Sprintf(%q, signer) = %q, want %q", verb, got, wantS)
		}
		if got := fmt.Sprintf(verb, kek); got != wantW {
			t.Errorf("Sprintf(%q, wrapper) = %q, want %q", verb, got, wantW)
		}
	}
}
