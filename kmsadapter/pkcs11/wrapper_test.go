//go:build cgo

package pkcs11_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/kmsadapter/pkcs11"
	"github.com/tokenkms/tokenkms/signer"
)

func TestWrapRoundTrip(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	w, ref, err := p.GenerateWrapper(ctx, "round-trip")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	if !strings.HasPrefix(ref, "pkcs11:v1:A256GCM:") || w.Ref() != ref {
		t.Errorf("got ref %q (Ref() %q), want pkcs11:v1:A256GCM:...", ref, w.Ref())
	}
	reopened, err := p.OpenWrapper(ctx, ref)
	if err != nil {
		t.Fatalf("OpenWrapper: %v", err)
	}
	tests := []struct {
		name           string
		plaintext, aad []byte
	}{
		{"empty", nil, []byte("aad")},
		{"data key", bytes.Repeat([]byte{0xA5}, 32), []byte("kid=dk-1")},
		{"nil aad", []byte("secret"), nil},
		{"PKCS#8 sized", bytes.Repeat([]byte{7}, 1218), []byte("tokenkms local key v1\x00ES256\x00kid")},
		{"max size", bytes.Repeat([]byte{1}, pkcs11.MaxWrapSize), []byte("big")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blob, err := w.Wrap(ctx, tc.plaintext, tc.aad)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if len(blob) != 1+12+len(tc.plaintext)+16 || blob[0] != 1 {
				t.Errorf("blob of %d bytes, version %d: want %d bytes, version 1", len(blob), blob[0], 1+12+len(tc.plaintext)+16)
			}
			if len(tc.plaintext) >= 8 && bytes.Contains(blob, tc.plaintext) {
				t.Errorf("blob contains the plaintext")
			}
			for name, u := range map[string]*pkcs11.Wrapper{"same": w, "reopened": reopened} {
				got, err := u.Unwrap(ctx, blob, tc.aad)
				if err != nil {
					t.Fatalf("%s Unwrap: %v", name, err)
				}
				if !bytes.Equal(got, tc.plaintext) {
					t.Errorf("%s Unwrap: got %d bytes, want the %d bytes wrapped", name, len(got), len(tc.plaintext))
				}
			}
			again, err := w.Wrap(ctx, tc.plaintext, tc.aad)
			if err != nil {
				t.Fatalf("second Wrap: %v", err)
			}
			if bytes.Equal(again[1:13], blob[1:13]) {
				t.Errorf("two Wraps used the same nonce")
			}
		})
	}
}

func TestUnwrapRefusals(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	w, _, err := p.GenerateWrapper(ctx, "refusals")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	other, _, err := p.GenerateWrapper(ctx, "refusals-other")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	aad := []byte("kid=k1")
	blob, err := w.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"), aad)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(blob)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name    string
		wrapper *pkcs11.Wrapper
		blob    []byte
		aad     []byte
	}{
		{"wrong aad", w, blob, []byte("kid=k2")},
		{"nil aad", w, blob, nil},
		{"aad prefix", w, blob, aad[:len(aad)-1]},
		{"other key", other, blob, aad},
		{"version", w, flip(0), aad},
		{"nonce", w, flip(1), aad},
		{"ciphertext", w, flip(20), aad},
		{"tag", w, flip(len(blob) - 1), aad},
		{"truncated tag", w, blob[:len(blob)-1], aad},
		{"extended", w, append(bytes.Clone(blob), 0), aad},
		{"too short", w, blob[:28], aad},
		{"empty", w, nil, aad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.wrapper.Unwrap(ctx, tc.blob, tc.aad)
			if !errors.Is(err, signer.ErrUnwrap) {
				t.Fatalf("got %v, want %v", err, signer.ErrUnwrap)
			}
			if got != nil {
				t.Errorf("got %d bytes of plaintext with an error", len(got))
			}
		})
	}
}

func TestWrapperErrors(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	w, wref, err := p.GenerateWrapper(ctx, "wrapper-errors")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	_, sref, err := p.Generate(ctx, "wrapper-errors-signer", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	t.Run("too large", func(t *testing.T) {
		if _, err := w.Wrap(ctx, make([]byte, pkcs11.MaxWrapSize+1), nil); !errors.Is(err, pkcs11.ErrInvalidArgument) {
			t.Errorf("got %v, want %v", err, pkcs11.ErrInvalidArgument)
		}
	})
	t.Run("empty label", func(t *testing.T) {
		if _, _, err := p.GenerateWrapper(ctx, ""); !errors.Is(err, pkcs11.ErrInvalidArgument) {
			t.Errorf("got %v, want %v", err, pkcs11.ErrInvalidArgument)
		}
	})
	opens := []struct {
		name, ref string
		want      error
	}{
		{"signing key ref", sref, signer.ErrBadReference},
		{"unknown id", "pkcs11:v1:A256GCM:00112233445566778899aabbccddeeff:" + tokenLabel, signer.ErrKeyNotFound},
		{"signing key id as wrapper", "pkcs11:v1:A256GCM:" + strings.SplitN(sref, ":", 5)[3] + ":" + tokenLabel, signer.ErrKeyNotFound},
		{"other token", strings.Replace(wref, tokenLabel, otherLabel, 1), signer.ErrBadReference},
		{"garbage", "A256GCM", signer.ErrBadReference},
	}
	for _, tc := range opens {
		t.Run("open/"+tc.name, func(t *testing.T) {
			got, err := p.OpenWrapper(ctx, tc.ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Errorf("got wrapper %v with an error", got)
			}
		})
	}
}

// TestLocalProviderOverHSMWrapper: software keys of signer.LocalProvider,
// wrapped at rest by the HSM's AES key, sign and reopen; a reference bound
// to another kid does not unwrap.
func TestLocalProviderOverHSMWrapper(t *testing.T) {
	p := newProvider(t, pkcs11.Options{})
	ctx := testCtx(t)
	w, _, err := p.GenerateWrapper(ctx, "local-kek")
	if err != nil {
		t.Fatalf("GenerateWrapper: %v", err)
	}
	lp, err := signer.NewLocalProvider(w)
	if err != nil {
		t.Fatalf("NewLocalProvider: %v", err)
	}
	s, ref, err := lp.Generate(ctx, "local-1", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	o, err := lp.Open(ctx, "local-1", ref)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	input := []byte("a.b")
	sig, err := o.Sign(ctx, input)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	a, _ := jose.Lookup("ES256")
	if err := a.Verify(s.Public(), input, sig); err != nil {
		t.Errorf("reopened key's signature does not verify under the generated key: %v", err)
	}
	if _, err := lp.Open(ctx, "local-2", ref); !errors.Is(err, signer.ErrUnwrap) {
		t.Errorf("Open with another kid: got %v, want %v", err, signer.ErrUnwrap)
	}
}
