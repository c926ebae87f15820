package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/kmsadapter/awskms"
	"github.com/tokenkms/tokenkms/signer"
)

func newWrapper(t testing.TB, c *kms.Client) (*awskms.KeyWrapper, string) {
	t.Helper()
	arn := createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
	w, err := awskms.NewKeyWrapper(testCtx(t), c, arn)
	if err != nil {
		t.Fatalf("NewKeyWrapper: %v", err)
	}
	return w, arn
}

func TestWrapRoundTrip(t *testing.T) {
	c := localKMS(t)
	w, arn := newWrapper(t, c)
	if w.KeyARN() != arn {
		t.Fatalf("KeyARN() = %s, want %s", w.KeyARN(), arn)
	}
	for _, tc := range []struct {
		name           string
		plaintext, aad []byte
	}{
		{name: "data key", plaintext: bytes.Repeat([]byte{0xA5}, 32), aad: []byte("kid=dk-1")},
		{name: "empty aad", plaintext: []byte("secret"), aad: nil},
		{name: "largest", plaintext: bytes.Repeat([]byte{1}, awskms.MaxPlaintext), aad: bytes.Repeat([]byte("a"), 10000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			blob, err := w.Wrap(ctx, tc.plaintext, tc.aad)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if bytes.Contains(blob, tc.plaintext) {
				t.Fatal("the blob contains the plaintext")
			}
			got, err := w.Unwrap(ctx, blob, tc.aad)
			if err != nil {
				t.Fatalf("Unwrap: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatalf("Unwrap = %x, want %x", got, tc.plaintext)
			}
		})
	}
}

func TestUnwrapRefuses(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	w, _ := newWrapper(t, c)
	other, _ := newWrapper(t, c)
	aad := []byte("kid=dk-1")
	blob, err := w.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"), aad)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(blob)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name string
		w    *awskms.KeyWrapper
		blob []byte
		aad  []byte
	}{
		{name: "wrong aad", w: w, blob: blob, aad: []byte("kid=dk-2")},
		{name: "no aad", w: w, blob: blob, aad: nil},
		{name: "another key", w: other, blob: blob, aad: aad},
		{name: "tampered tail", w: w, blob: flip(len(blob) - 1), aad: aad},
		// Inside the sealed payload. (local-kms, unlike AWS KMS, does not
		// authenticate the key id at the head of its ciphertext blob when
		// Decrypt names the key, so a flip there decrypts unchanged.)
		{name: "tampered payload", w: w, blob: flip(len(blob) - 20), aad: aad},
		{name: "bad version", w: w, blob: flip(0), aad: aad},
		{name: "empty", w: w, blob: nil, aad: aad},
		{name: "version only", w: w, blob: blob[:1], aad: aad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.w.Unwrap(ctx, tc.blob, tc.aad)
			if !errors.Is(err, signer.ErrUnwrap) {
				t.Fatalf("Unwrap: got (%x, %v), want %v", got, err, signer.ErrUnwrap)
			}
		})
	}
}

func TestWrapRefusesSize(t *testing.T) {
	f := &fakeClient{state: types.KeyStateEnabled}
	w, err := awskms.NewKeyWrapper(testCtx(t), f, fakeARN)
	if err != nil {
		t.Fatalf("NewKeyWrapper: %v", err)
	}
	before := f.calls.Load()
	for _, n := range []int{0, awskms.MaxPlaintext + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			secret := bytes.Repeat([]byte("S"), n)
			_, err := w.Wrap(testCtx(t), secret, nil)
			if !errors.Is(err, awskms.ErrPlaintextSize) {
				t.Fatalf("Wrap(%d bytes): got %v, want %v", n, err, awskms.ErrPlaintextSize)
			}
			if n > 0 && strings.Contains(err.Error(), string(secret[:16])) {
				t.Fatal("the error shows the plaintext")
			}
		})
	}
	if n := f.calls.Load() - before; n != 0 {
		t.Fatalf("refused Wraps made %d backend calls, want 0", n)
	}
}

func TestNewKeyWrapperRefuses(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	signing := createKey(t, c, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	disabled := createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(disabled)}); err != nil {
		t.Fatal(err)
	}
	deleted := createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(deleted), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		client awskms.Client
		key    string
		want   error
	}{
		{name: "nil client", key: fakeARN, want: awskms.ErrConfig},
		{name: "empty key", client: c, key: "", want: awskms.ErrConfig},
		{name: "unknown key", client: c, key: fakeARN, want: signer.ErrKeyNotFound},
		{name: "signing key", client: c, key: signing, want: signer.ErrUnsupportedAlgorithm},
		{name: "disabled key", client: c, key: disabled, want: signer.ErrKeyDisabled},
		{name: "key pending deletion", client: c, key: deleted, want: signer.ErrKeyPendingDeletion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := awskms.NewKeyWrapper(ctx, tc.client, tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("NewKeyWrapper: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWrapBackendErrors(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	w, arn := newWrapper(t, c)
	blob, err := w.Wrap(ctx, []byte("secret"), nil)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Wrap(ctx, []byte("secret"), nil); !errors.Is(err, signer.ErrKeyDisabled) {
		t.Fatalf("Wrap with a disabled key: got %v, want %v", err, signer.ErrKeyDisabled)
	}
	if _, err := w.Unwrap(ctx, blob, nil); !errors.Is(err, signer.ErrKeyDisabled) {
		t.Fatalf("Unwrap with a disabled key: got %v, want %v", err, signer.ErrKeyDisabled)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Wrap(cancelled, []byte("secret"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wrap with a cancelled context: got %v, want %v", err, context.Canceled)
	}
	if _, err := w.Unwrap(cancelled, blob, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Unwrap with a cancelled context: got %v, want %v", err, context.Canceled)
	}
}

func TestCorruptedWrapResponse(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	arn := createKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
	for _, tc := range []struct {
		name string
		f    *fakeClient
		op   func(w *awskms.KeyWrapper, blob []byte) error
	}{
		{name: "encrypt: other key", f: &fakeClient{editEnc: func(o *kms.EncryptOutput) { o.KeyId = aws.String(fakeARN) }},
			op: func(w *awskms.KeyWrapper, _ []byte) error { _, err := w.Wrap(ctx, []byte("x"), nil); return err }},
		{name: "encrypt: no ciphertext", f: &fakeClient{editEnc: func(o *kms.EncryptOutput) { o.CiphertextBlob = nil }},
			op: func(w *awskms.KeyWrapper, _ []byte) error { _, err := w.Wrap(ctx, []byte("x"), nil); return err }},
		{name: "decrypt: other key", f: &fakeClient{editDec: func(o *kms.DecryptOutput) { o.KeyId = aws.String(fakeARN) }},
			op: func(w *awskms.KeyWrapper, blob []byte) error { _, err := w.Unwrap(ctx, blob, nil); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.inner = c
			w, err := awskms.NewKeyWrapper(ctx, f, arn)
			if err != nil {
				t.Fatalf("NewKeyWrapper: %v", err)
			}
			good, err := awskms.NewKeyWrapper(ctx, c, arn)
			if err != nil {
				t.Fatalf("NewKeyWrapper: %v", err)
			}
			blob, err := good.Wrap(ctx, []byte("x"), nil)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if err := tc.op(w, blob); !errors.Is(err, signer.ErrBackendIntegrity) {
				t.Fatalf("got %v, want %v", err, signer.ErrBackendIntegrity)
			}
		})
	}
}

// TestLocalProviderOverKMS: the local signer's keys, sealed with a KMS key.
func TestLocalProviderOverKMS(t *testing.T) {
	c := localKMS(t)
	ctx := testCtx(t)
	w, _ := newWrapper(t, c)
	lp, err := signer.NewLocalProvider(w)
	if err != nil {
		t.Fatal(err)
	}
	s, ref, err := lp.Generate(ctx, "kid-local", "ES256")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	s2, err := lp.Open(ctx, "kid-local", ref)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sig, err := s2.Sign(ctx, []byte(input))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	a, _ := jose.Lookup("ES256")
	if err := a.Verify(s.Public(), []byte(input), sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := lp.Open(ctx, "kid-other", ref); !errors.Is(err, signer.ErrUnwrap) {
		t.Fatalf("Open under another kid: got %v, want %v", err, signer.ErrUnwrap)
	}
}

func TestWrapperString(t *testing.T) {
	f := &fakeClient{state: types.KeyStateEnabled}
	w, err := awskms.NewKeyWrapper(testCtx(t), f, fakeARN)
	if err != nil {
		t.Fatalf("NewKeyWrapper: %v", err)
	}
	want := "awskms.KeyWrapper(" + fakeARN + ")"
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		if got := fmt.Sprintf(format, w); got != want {
			t.Errorf("Sprintf(%q) = %s, want %s", format, got, want)
		}
	}
}
