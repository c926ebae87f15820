package gcpkms_test

import (
	"bytes"
	"errors"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"

	"github.com/tokenkms/tokenkms/internal/gcpkmsfake"
	"github.com/tokenkms/tokenkms/kmsadapter/gcpkms"
	"github.com/tokenkms/tokenkms/signer"
)

// newKEK creates an ENCRYPT_DECRYPT key called id and a Wrapper under it.
func newKEK(t testing.TB, e env, id string) *gcpkms.Wrapper {
	t.Helper()
	_, err := e.client.CreateCryptoKey(ctxT(t), &kmspb.CreateCryptoKeyRequest{
		Parent:      ring,
		CryptoKeyId: id,
		CryptoKey:   &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT},
	})
	if err != nil {
		t.Fatalf("CreateCryptoKey(%s): %v", id, err)
	}
	w, err := gcpkms.NewWrapper(e.client, ring+"/cryptoKeys/"+id)
	if err != nil {
		t.Fatalf("NewWrapper: %v", err)
	}
	return w
}

func TestWrapRoundTrip(t *testing.T) {
	e := newEnv(t)
	w := newKEK(t, e, "kek")
	other := newKEK(t, e, "other")
	for _, tc := range []struct {
		name          string
		plaintext, ad []byte
	}{
		{"data key", bytes.Repeat([]byte{7}, 32), []byte("kid=k1")},
		{"empty plaintext", nil, []byte("kid=k1")},
		{"no aad", []byte("secret"), nil},
		{"largest", bytes.Repeat([]byte{1}, gcpkms.MaxWrapSize), bytes.Repeat([]byte{2}, gcpkms.MaxWrapSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			blob, err := w.Wrap(ctx, tc.plaintext, tc.ad)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if len(tc.plaintext) > 0 && bytes.Contains(blob, tc.plaintext) {
				t.Fatal("blob contains the plaintext")
			}
			got, err := w.Unwrap(ctx, blob, tc.ad)
			if err != nil {
				t.Fatalf("Unwrap: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatalf("Unwrap = %x, want %x", got, tc.plaintext)
			}

			tampered := append([]byte(nil), blob...)
			tampered[len(tampered)-1] ^= 1
			for _, bad := range []struct {
				name string
				w    *gcpkms.Wrapper
				blob []byte
				ad   []byte
			}{
				{"wrong aad", w, blob, append(append([]byte(nil), tc.ad...), 'x')},
				{"tampered blob", w, tampered, tc.ad},
				{"truncated blob", w, blob[:len(blob)/2], tc.ad},
				{"other key", other, blob, tc.ad},
				{"empty blob", w, nil, tc.ad},
			} {
				if _, err := bad.w.Unwrap(ctx, bad.blob, bad.ad); !errors.Is(err, signer.ErrUnwrap) {
					t.Errorf("%s: Unwrap error = %v, want %v", bad.name, err, signer.ErrUnwrap)
				}
			}
		})
	}
}

func TestWrapTooLarge(t *testing.T) {
	e := newEnv(t)
	w := newKEK(t, e, "kek")
	for _, tc := range []struct {
		name          string
		plaintext, ad []byte
	}{
		{"plaintext", make([]byte, gcpkms.MaxWrapSize+1), nil},
		{"aad", nil, make([]byte, gcpkms.MaxWrapSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := w.Wrap(ctxT(t), tc.plaintext, tc.ad); !errors.Is(err, gcpkms.ErrTooLarge) {
				t.Fatalf("Wrap error = %v, want %v", err, gcpkms.ErrTooLarge)
			}
		})
	}
	if got := e.srv.Calls("Encrypt"); got != 0 {
		t.Errorf("Encrypt calls = %d, want 0", got)
	}
}

func TestWrapAcrossKeyRotation(t *testing.T) {
	e := newEnv(t)
	w := newKEK(t, e, "kek")
	key := ring + "/cryptoKeys/kek"
	old, err := w.Wrap(ctxT(t), []byte("v1 data key"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateCryptoKeyVersion(ctxT(t), &kmspb.CreateCryptoKeyVersionRequest{Parent: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UpdateCryptoKeyPrimaryVersion(ctxT(t), &kmspb.UpdateCryptoKeyPrimaryVersionRequest{Name: key, CryptoKeyVersionId: "2"}); err != nil {
		t.Fatal(err)
	}
	newer, err := w.Wrap(ctxT(t), []byte("v2 data key"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		blob []byte
		want string
	}{
		{"blob of the old primary", old, "v1 data key"},
		{"blob of the new primary", newer, "v2 data key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.Unwrap(ctxT(t), tc.blob, []byte("ad"))
			if err != nil {
				t.Fatalf("Unwrap: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("Unwrap = %q, want %q", got, tc.want)
			}
		})
	}

	setState(t, e.client, key+"/cryptoKeyVersions/1", kmspb.CryptoKeyVersion_DISABLED)
	_, err = w.Unwrap(ctxT(t), old, []byte("ad"))
	checkBackendErr(t, "Unwrap under a disabled version", err, signer.ErrKeyDisabled, codes.FailedPrecondition)
}

func TestWrapIntegrityFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault gcpkmsfake.Faults
	}{
		{"wrong name", gcpkmsfake.Faults{WrongName: true}},
		{"ciphertext_crc32c corrupted", gcpkmsfake.Faults{CorruptResponseCRC: true}},
		{"ciphertext flipped in transit", gcpkmsfake.Faults{CorruptPayload: true}},
		{"verified_plaintext_crc32c false", gcpkmsfake.Faults{UnverifiedPlaintext: true}},
		{"verified_additional_authenticated_data_crc32c false", gcpkmsfake.Faults{UnverifiedAAD: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := newKEK(t, e, "kek")
			e.srv.SetFaults(tc.fault)
			blob, err := w.Wrap(ctxT(t), []byte("data key"), []byte("ad"))
			if !errors.Is(err, signer.ErrBackendIntegrity) {
				t.Fatalf("Wrap error = %v, want %v", err, signer.ErrBackendIntegrity)
			}
			if blob != nil {
				t.Error("Wrap returned a blob with its error")
			}
		})
	}
}

func TestUnwrapIntegrityFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault gcpkmsfake.Faults
	}{
		{"plaintext_crc32c corrupted", gcpkmsfake.Faults{CorruptResponseCRC: true}},
		{"plaintext flipped in transit", gcpkmsfake.Faults{CorruptPayload: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := newKEK(t, e, "kek")
			blob, err := w.Wrap(ctxT(t), []byte("data key"), []byte("ad"))
			if err != nil {
				t.Fatal(err)
			}
			e.srv.SetFaults(tc.fault)
			pt, err := w.Unwrap(ctxT(t), blob, []byte("ad"))
			if !errors.Is(err, signer.ErrBackendIntegrity) {
				t.Fatalf("Unwrap error = %v, want %v", err, signer.ErrBackendIntegrity)
			}
			if pt != nil {
				t.Error("Unwrap returned plaintext with its error")
			}
		})
	}
}

func TestNewWrapperConfig(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		client gcpkms.Client
		key    string
	}{
		{"no client", nil, ring + "/cryptoKeys/kek"},
		{"key ring", e.client, ring},
		{"version", e.client, ring + "/cryptoKeys/kek/cryptoKeyVersions/1"},
		{"bad id", e.client, ring + "/cryptoKeys/k.e.k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := gcpkms.NewWrapper(tc.client, tc.key); !errors.Is(err, gcpkms.ErrConfig) {
				t.Fatalf("NewWrapper error = %v, want %v", err, gcpkms.ErrConfig)
			}
		})
	}
}
