//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
)

var algs = []string{"ES256", "ES384", "RS256", "PS256"}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGenerateSignOpen(t *testing.T) {
	for _, verifyEC := range []bool{false, true} {
		p := newProvider(t, pkcs11.Options{VerifyECDSA: verifyEC})
		for _, alg := range algs {
			t.Run(fmt.Sprintf("%s/verifyECDSA=%v", alg, verifyEC), func(t *testing.T) {
				ctx := testCtx(t)
				kid := "kid-" + alg + fmt.Sprint(verifyEC)
				s, ref, err := p.Generate(ctx, kid, alg)
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if s.KID() != kid || s.Algorithm() != alg {
					t.Errorf("got kid %q alg %q, want %q %q", s.KID(), s.Algorithm(), kid, alg)
				}
				if !strings.HasPrefix(ref, "pkcs11:v1:"+alg+":") || !strings.HasSuffix(ref, ":"+tokenLabel) {
					t.Errorf("got ref %q, want pkcs11:v1:%s:<id>:%s", ref, alg, tokenLabel)
				}
				if strings.Contains(ref, userPIN) {
					t.Errorf("ref %q contains the PIN", ref)
				}
				a, _ := jose.Lookup(alg)
				input := []byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0")
				sig, err := s.Sign(ctx, input)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if err := a.Verify(s.Public(), input, sig); err != nil {
					t.Fatalf("jose.Verify: %v", err)
				}
				lifecycletest.VerifyStd(t, alg, s.Public(), input, sig)

				ds, ok := s.(signer.DigestSigner)
				if !ok {
					t.Fatalf("%T is not a signer.DigestSigner", s)
				}
				dsig, err := ds.SignDigest(ctx, a.Digest(input))
				if err != nil {
					t.Fatalf("SignDigest: %v", err)
				}
				lifecycletest.VerifyStd(t, alg, s.Public(), input, dsig)

				o, err := p.Open(ctx, kid, ref)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if !o.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Public()) {
					t.Errorf("Open gave another public key than Generate")
				}
				osig, err := o.Sign(ctx, input)
				if err != nil {
					t.Fatalf("Sign after Open: %v", err)
				}
				if err := a.Verify(s.Public(), input, osig); err != nil {
					t.Fatalf("jose.Verify after Open: %v", err)
				}
				lifecycletest.VerifyStd(t, alg, s.Public(), input, osig)
			})
		}
	}
}

// TestKeyAttributes reads the objects Generate and GenerateWrapper created
// with crypto11 directly: sensitive, not extractable, labelled, CKA_VALUE
// unreadable.
func TestKeyAttributes(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	raw := rawToken(t)
	ctx := testCtx(t)
	type object struct {
		name   string
		ref    string
		find   func(id []byte) (any, error)
		secret crypto11.AttributeType // the attribute holding the secret value
	}
	var objects []object
	for _, alg := range algs {
		kid := "attr-" + alg
		_, ref, err := p.Generate(ctx, kid, alg)
		if err != nil {
			t.Fatalf("Generate %s: %v", alg, err)
		}
		objects = append(objects, object{alg, ref, func(id []byte) (any, error) {
			keys, err := raw.FindKeyPairs(id, nil)
			if err != nil || len(keys) != 1 {
				return nil, fmt.Errorf("FindKeyPairs: %d keys, %v", len(keys), err)
			}
			return keys[0], nil
		}, secretAttr(alg)})
	}
	_, wref, err := p.GenerateWrapper(ctx, "attr-wrapper")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	objects = append(objects, object{"AES wrapper", wref, func(id []byte) (any, error) {
		keys, err := raw.FindKeys(id, nil)
		if err != nil || len(keys) != 1 {
			return nil, fmt.Errorf("FindKeys: %d keys, %v", len(keys), err)
		}
		return keys[0], nil
	}, p11.CKA_VALUE})

	for _, o := range objects {
		t.Run(o.name, func(t *testing.T) {
			key, err := o.find(refID(t, o.ref))
			if err != nil {
				t.Fatal(err)
			}
			set, err := raw.GetAttributes(key, []crypto11.AttributeType{
				p11.CKA_SENSITIVE, p11.CKA_EXTRACTABLE, p11.CKA_PRIVATE, p11.CKA_TOKEN,
				p11.CKA_ALWAYS_SENSITIVE, p11.CKA_NEVER_EXTRACTABLE,
			})
			if err != nil {
				t.Fatalf("GetAttributes: %v", err)
			}
			want := map[crypto11.AttributeType]bool{
				p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false, p11.CKA_PRIVATE: true,
				p11.CKA_TOKEN: true, p11.CKA_ALWAYS_SENSITIVE: true, p11.CKA_NEVER_EXTRACTABLE: true,
			}
			for typ, w := range want {
				a := set[typ]
				if a == nil || len(a.Value) != 1 {
					t.Errorf("attribute %#x: got %v, want one CK_BBOOL", typ, a)
					continue
				}
				if got := a.Value[0] != 0; got != w {
					t.Errorf("attribute %#x: got %v, want %v", typ, got, w)
				}
			}
			_, err = raw.GetAttribute(key, o.secret)
			var pe p11.Error
			if !errors.As(err, &pe) || pe != p11.CKR_ATTRIBUTE_SENSITIVE {
				t.Errorf("reading attribute %#x: got %v, want CKR_ATTRIBUTE_SENSITIVE", o.secret, err)
			}
		})
	}
}

// secretAttr names the attribute that holds a private key's secret: the
// scalar of an EC key, the private exponent of an RSA key.
func secretAttr(alg string) crypto11.AttributeType {
	if strings.HasPrefix(alg, "ES") {
		return p11.CKA_VALUE
	}
	return p11.CKA_PRIVATE_EXPONENT
}

func TestGenerateRefusals(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	tests := []struct {
		name, kid, alg string
		want           error
	}{
		{"EdDSA", "k", "EdDSA", signer.ErrUnsupportedAlgorithm},
		{"ES512", "k", "ES512", signer.ErrUnsupportedAlgorithm},
		{"RS384", "k", "RS384", signer.ErrUnsupportedAlgorithm},
		{"HS256", "k", "HS256", signer.ErrUnsupportedAlgorithm},
		{"none", "k", "none", signer.ErrUnsupportedAlgorithm},
		{"lower case", "k", "es256", signer.ErrUnsupportedAlgorithm},
		{"empty alg", "k", "", signer.ErrUnsupportedAlgorithm},
		{"empty kid", "", "ES256", pkcs11.ErrInvalidArgument},
		{"long kid", strings.Repeat("k", 256), "ES256", pkcs11.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ref, err := p.Generate(testCtx(t), tc.kid, tc.alg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if s != nil || ref != "" {
				t.Errorf("got signer %v ref %q with an error", s, ref)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	_, ref, err := p.Generate(ctx, "open-errors", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	_, rsaRef, err := p.Generate(ctx, "open-errors-rsa", "RS256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	_, wref, err := p.GenerateWrapper(ctx, "open-errors-wrapper")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	id := ref[len("pkcs11:v1:ES256:") : len("pkcs11:v1:ES256:")+32]
	tests := []struct {
		name, kid, ref string
		want           []error
	}{
		{"empty ref", "open-errors", "", []error{signer.ErrBadReference}},
		{"local ref", "open-errors", "local.v1.ES256.AAAA", []error{signer.ErrBadReference}},
		{"v2 ref", "open-errors", strings.Replace(ref, ":v1:", ":v2:", 1), []error{signer.ErrBadReference}},
		{"missing token", "open-errors", "pkcs11:v1:ES256:" + id, []error{signer.ErrBadReference}},
		{"bad hex", "open-errors", "pkcs11:v1:ES256:zz:" + tokenLabel, []error{signer.ErrBadReference}},
		{"empty id", "open-errors", "pkcs11:v1:ES256::" + tokenLabel, []error{signer.ErrBadReference}},
		{"other token", "open-errors", "pkcs11:v1:ES256:" + id + ":" + otherLabel, []error{signer.ErrBadReference}},
		{"unsupported alg", "open-errors", "pkcs11:v1:ES512:" + id + ":" + tokenLabel, []error{signer.ErrBadReference, signer.ErrUnsupportedAlgorithm}},
		{"alg of another curve", "open-errors", "pkcs11:v1:ES384:" + id + ":" + tokenLabel, []error{signer.ErrBadReference}},
		{"EC ref as RSA", "open-errors", "pkcs11:v1:RS256:" + id + ":" + tokenLabel, []error{signer.ErrBadReference}},
		{"unknown id", "open-errors", "pkcs11:v1:ES256:00112233445566778899aabbccddeeff:" + tokenLabel, []error{signer.ErrKeyNotFound}},
		{"another kid", "someone-else", ref, []error{signer.ErrKeyNotFound}},
		{"wrapper ref", "open-errors-wrapper", wref, []error{signer.ErrBadReference}},
		{"empty kid", "", ref, []error{pkcs11.ErrInvalidArgument}},
		{"rsa ref with ec kid", "open-errors", rsaRef, []error{signer.ErrKeyNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.Open(ctx, tc.kid, tc.ref)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want %v", err, w)
				}
			}
			if s != nil {
				t.Errorf("got signer %v with an error", s)
			}
		})
	}
}

func TestDestroy(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	s, ref, err := p.Generate(ctx, "destroy-me", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if err := p.Destroy(ctx, "not-me", ref); !errors.Is(err, signer.ErrKeyNotFound) {
		t.Fatalf("Destroy with another kid: got %v, want %v", err, signer.ErrKeyNotFound)
	}
	if err := p.Destroy(ctx, "destroy-me", ref); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := p.Open(ctx, "destroy-me", ref); !errors.Is(err, signer.ErrKeyNotFound) {
		t.Errorf("Open after Destroy: got %v, want %v", err, signer.ErrKeyNotFound)
	}
	_, err = s.Sign(ctx, []byte("x.y"))
	if !errors.Is(err, signer.ErrKeyNotFound) {
		t.Errorf("Sign after Destroy: got %v, want %v", err, signer.ErrKeyNotFound)
	}
	var pe p11.Error
	if !errors.As(err, &pe) || pe != p11.CKR_OBJECT_HANDLE_INVALID {
		t.Errorf("Sign after Destroy: got PKCS#11 error %v, want CKR_OBJECT_HANDLE_INVALID reachable with errors.As", err)
	}
	if err := p.Destroy(ctx, "destroy-me", ref); !errors.Is(err, signer.ErrKeyNotFound) {
		t.Errorf("second Destroy: got %v, want %v", err, signer.ErrKeyNotFound)
	}
}

// TestDisabledKey turns CKA_SIGN off on a key through a second PKCS#11
// session (what an HSM operator does to disable a key): Sign then fails
// with signer.ErrKeyDisabled.
func TestDisabledKey(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	s, ref, err := p.Generate(ctx, "disable-me", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	setSign(t, refID(t, ref), false)
	_, err = s.Sign(ctx, []byte("x.y"))
	if !errors.Is(err, signer.ErrKeyDisabled) {
		t.Fatalf("Sign with CKA_SIGN false: got %v, want %v", err, signer.ErrKeyDisabled)
	}
	var pe p11.Error
	if !errors.As(err, &pe) || pe != p11.CKR_KEY_FUNCTION_NOT_PERMITTED {
		t.Errorf("got PKCS#11 error %v, want CKR_KEY_FUNCTION_NOT_PERMITTED", err)
	}
}

// setSign sets CKA_SIGN of the private key with CKA_ID id. The module is
// already initialised and logged in by the Provider in this process; this
// session shares that state and must not finalise or log out.
func setSign(t *testing.T, id []byte, v bool) {
	t.Helper()
	mod := p11.New(testenv.Require(t, testenv.SoftHSMModule))
	if mod == nil {
		t.Fatal("cannot load the PKCS#11 module")
	}
	t.Cleanup(mod.Destroy)
	if err := mod.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatalf("C_Initialize: %v", err)
	}
	slots, err := mod.GetSlotList(true)
	if err != nil {
		t.Fatalf("C_GetSlotList: %v", err)
	}
	for _, slot := range slots {
		info, err := mod.GetTokenInfo(slot)
		if err != nil || info.Label != tokenLabel {
			continue
		}
		sess, err := mod.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			t.Fatalf("C_OpenSession: %v", err)
		}
		defer mod.CloseSession(sess)
		if err := mod.Login(sess, p11.CKU_USER, userPIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
			t.Fatalf("C_Login: %v", err)
		}
		tmpl := []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
			p11.NewAttribute(p11.CKA_ID, id),
		}
		if err := mod.FindObjectsInit(sess, tmpl); err != nil {
			t.Fatalf("C_FindObjectsInit: %v", err)
		}
		objs, _, err := mod.FindObjects(sess, 2)
		mod.FindObjectsFinal(sess)
		if err != nil || len(objs) != 1 {
			t.Fatalf("C_FindObjects: %d objects, %v", len(objs), err)
		}
		if err := mod.SetAttributeValue(sess, objs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_SIGN, v)}); err != nil {
			t.Fatalf("C_SetAttributeValue(CKA_SIGN): %v", err)
		}
		return
	}
	t.Fatalf("token %q not found", tokenLabel)
}

func TestNewErrors(t *testing.T) {
	module := testenv.Require(t, testenv.SoftHSMModule)
	tests := []struct {
		name string
		cfg  pkcs11.Config
		want error
	}{
		{"no module", pkcs11.Config{TokenLabel: tokenLabel, PIN: userPIN}, pkcs11.ErrConfig},
		{"no token", pkcs11.Config{Module: module, PIN: userPIN}, pkcs11.ErrConfig},
		{"no PIN", pkcs11.Config{Module: module, TokenLabel: tokenLabel}, pkcs11.ErrConfig},
		{"one session", pkcs11.Config{Module: module, TokenLabel: tokenLabel, PIN: userPIN, MaxSessions: 1}, pkcs11.ErrConfig},
		{"negative sessions", pkcs11.Config{Module: module, TokenLabel: tokenLabel, PIN: userPIN, MaxSessions: -1}, pkcs11.ErrConfig},
		{"RSA 1024", pkcs11.Config{Module: module, TokenLabel: tokenLabel, PIN: userPIN, Options: pkcs11.Options{RSABits: 1024}}, pkcs11.ErrConfig},
		{"missing module", pkcs11.Config{Module: "/nonexistent/libpkcs11.so", TokenLabel: tokenLabel, PIN: userPIN}, signer.ErrUnavailable},
		{"unknown token", pkcs11.Config{Module: module, TokenLabel: "no-such-token", PIN: userPIN}, signer.ErrUnavailable},
		{"wrong PIN", pkcs11.Config{Module: module, TokenLabel: otherLabel, PIN: "wrong-pin-7731"}, signer.ErrPermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pkcs11.New(tc.cfg)
			if !errors.Is(err, tc.want) {
				if p != nil {
					p.Close()
				}
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.cfg.PIN != "" && strings.Contains(err.Error(), tc.cfg.PIN) {
				t.Errorf("error %q contains the PIN", err)
			}
		})
	}
	t.Run("wrong PIN code reachable", func(t *testing.T) {
		_, err := pkcs11.New(pkcs11.Config{Module: module, TokenLabel: otherLabel, PIN: "wrong-pin-7731"})
		var pe p11.Error
		if !errors.As(err, &pe) || pe != p11.CKR_PIN_INCORRECT {
			t.Errorf("got %v, want CKR_PIN_INCORRECT reachable with errors.As", err)
		}
	})
}

func TestClosedProvider(t *testing.T) {
	module := testenv.Require(t, testenv.SoftHSMModule)
	p, err := pkcs11.New(pkcs11.Config{Module: module, TokenLabel: tokenLabel, PIN: userPIN})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx := testCtx(t)
	s, ref, err := p.Generate(ctx, "closed", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	w, _, err := p.GenerateWrapper(ctx, "closed-wrapper")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	blob, err := w.Wrap(ctx, []byte("k"), nil)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checks := []struct {
		name string
		call func() error
	}{
		{"Sign", func() error { _, err := s.Sign(ctx, []byte("x.y")); return err }},
		{"Open", func() error { _, err := p.Open(ctx, "closed", ref); return err }},
		{"Generate", func() error { _, _, err := p.Generate(ctx, "closed-2", "ES256"); return err }},
		{"Wrap", func() error { _, err := w.Wrap(ctx, []byte("k"), nil); return err }},
		{"Unwrap", func() error { _, err := w.Unwrap(ctx, blob, nil); return err }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, signer.ErrUnavailable) {
				t.Errorf("got %v, want %v", err, signer.ErrUnavailable)
			}
		})
	}
}

// TestExpiredContext: no call reaches the token once the context is over.
func TestExpiredContext(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	live := testCtx(t)
	s, ref, err := p.Generate(live, "ctx", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	w, wref, err := p.GenerateWrapper(live, "ctx-wrapper")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	blob, err := w.Wrap(live, []byte("k"), nil)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"deadline", expired, context.DeadlineExceeded}, {"canceled", canceled, context.Canceled}} {
		calls := map[string]func() error{
			"Generate":        func() error { _, _, err := p.Generate(c.ctx, "ctx-2", "ES256"); return err },
			"Open":            func() error { _, err := p.Open(c.ctx, "ctx", ref); return err },
			"Sign":            func() error { _, err := s.Sign(c.ctx, []byte("x.y")); return err },
			"Destroy":         func() error { return p.Destroy(c.ctx, "ctx", ref) },
			"GenerateWrapper": func() error { _, _, err := p.GenerateWrapper(c.ctx, "ctx-w2"); return err },
			"OpenWrapper":     func() error { _, err := p.OpenWrapper(c.ctx, wref); return err },
			"Wrap":            func() error { _, err := w.Wrap(c.ctx, []byte("k"), nil); return err },
			"Unwrap":          func() error { _, err := w.Unwrap(c.ctx, blob, nil); return err },
		}
		for name, f := range calls {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				if err := f(); !errors.Is(err, c.want) {
					t.Errorf("got %v, want %v", err, c.want)
				}
			})
		}
	}
	if _, err := p.Open(live, "ctx", ref); err != nil {
		t.Errorf("Destroy with an expired context destroyed the key: Open: %v", err)
	}
}

func TestNoSecretsInStrings(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	s, ref, err := p.Generate(ctx, "strings", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	w, wref, err := p.GenerateWrapper(ctx, "strings-wrapper")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	cfg := pkcs11.Config{Module: "/lib/x.so", TokenLabel: tokenLabel, PIN: userPIN}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	sJSON, _ := json.Marshal(s)
	wJSON, _ := json.Marshal(w)
	outputs := map[string]string{
		"config %v": fmt.Sprintf("%v", cfg), "config %+v": fmt.Sprintf("%+v", cfg),
		"config %#v": fmt.Sprintf("%#v", cfg), "config JSON": string(cfgJSON),
		"signer %v": fmt.Sprintf("%v", s), "signer %+v": fmt.Sprintf("%+v", s), "signer %#v": fmt.Sprintf("%#v", s),
		"signer JSON": string(sJSON), "wrapper %#v": fmt.Sprintf("%#v", w), "wrapper JSON": string(wJSON),
		"provider %#v": fmt.Sprintf("%#v", p),
	}
	for name, out := range outputs {
		if strings.Contains(out, userPIN) {
			t.Errorf("%s = %q contains the PIN", name, out)
		}
		if strings.Contains(out, "0x") || strings.Contains(out, "handle") {
			t.Errorf("%s = %q shows internals", name, out)
		}
	}
	if got := s.(fmt.Stringer).String(); got != "pkcs11.Signer(kid=strings alg=ES256 ref="+ref+")" {
		t.Errorf("signer String() = %q", got)
	}
	if got := w.String(); got != "pkcs11.Wrapper(label=strings-wrapper ref="+wref+" AES-256-GCM)" {
		t.Errorf("wrapper String() = %q", got)
	}
}
