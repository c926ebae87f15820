package keyring_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

const dataSet = "customer-data"

// countingWrapper counts the calls to a real wrapper and can fail them.
type countingWrapper struct {
	inner   signer.KeyWrapper
	wraps   atomic.Int64
	unwraps atomic.Int64
	fail    atomic.Bool
}

var errWrapperDown = errors.New("wrapper down")

func newCountingWrapper() *countingWrapper {
	return &countingWrapper{inner: signer.NewEphemeralWrapper()}
}

func (w *countingWrapper) Wrap(ctx context.Context, pt, aad []byte) ([]byte, error) {
	w.wraps.Add(1)
	if w.fail.Load() {
		return nil, errWrapperDown
	}
	return w.inner.Wrap(ctx, pt, aad)
}

func (w *countingWrapper) Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error) {
	w.unwraps.Add(1)
	if w.fail.Load() {
		return nil, errWrapperDown
	}
	return w.inner.Unwrap(ctx, blob, aad)
}

// dataPolicy is an Encryption set whose Grace is the re-encryption window.
var dataPolicy = keyring.SetPolicy{Name: dataSet, Purpose: keyring.Encryption, Owner: "team-data", Grace: 30 * keyring.Day}

// newDEKEnv is newEnv with the Encryption set and a counting wrapper.
func newDEKEnv(t *testing.T, mutate ...func(*keyring.Config)) (*env, *countingWrapper) {
	t.Helper()
	w := newCountingWrapper()
	e := newEnv(t, append([]func(*keyring.Config){func(c *keyring.Config) {
		c.Sets = append(c.Sets, dataPolicy)
		c.Wrappers = map[string]signer.KeyWrapper{"local": w}
	}}, mutate...)...)
	return e, w
}

// bootstrapSet creates, approves and activates a first key in s.
func (e *env) bootstrapSet(t *testing.T, s string) keyring.Key {
	t.Helper()
	k, err := e.ring.Create(ctx(t, alice), s)
	if err != nil {
		t.Fatalf("Create(%s): %v", s, err)
	}
	if err := e.ring.Approve(ctx(t, bob), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := e.ring.Activate(ctx(t, carol), k.KID); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	return e.key(t, k.KID)
}

// rotateSet rotates s and lets Tick activate the successor.
func (e *env) rotateSet(t *testing.T, s string) keyring.Key {
	t.Helper()
	k, err := e.ring.Rotate(ctx(t, alice), s)
	if err != nil {
		t.Fatalf("Rotate(%s): %v", s, err)
	}
	if err := e.ring.Approve(ctx(t, bob), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	pol, _ := e.ring.Policy(s)
	e.clock.Advance(pol.PrePublication)
	if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if got := e.key(t, k.KID); got.State != keyring.Active {
		t.Fatalf("successor %s is %v after Tick, want active", k.KID, got.State)
	}
	return e.key(t, k.KID)
}

func mustEncrypt(t *testing.T, r *keyring.Keyring, pt, aad []byte) []byte {
	t.Helper()
	c, err := r.Encrypt(ctx(t, keyring.Principal{}), dataSet, pt, aad)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	return c
}

func kidOf(c []byte) string { return string(c[4 : 4+int(c[3])]) }

func TestEncryptRoundTrip(t *testing.T) {
	e, _ := newDEKEnv(t)
	k := e.bootstrapSet(t, dataSet)
	if k.Purpose != keyring.Encryption || k.Algorithm != "A256GCM" || k.Public != nil {
		t.Fatalf("data key record: purpose %v alg %q public %v, want encryption A256GCM nil", k.Purpose, k.Algorithm, k.Public)
	}
	if _, err := base64.StdEncoding.DecodeString(k.BackendRef.Reveal()); err != nil || k.BackendRef.IsZero() {
		t.Fatalf("BackendRef is not a base64 wrapped key: %v", err)
	}
	for _, tc := range []struct {
		name    string
		pt, aad []byte
	}{
		{"empty", nil, nil},
		{"short with aad", []byte("card 4111-1111"), []byte("tenant=42")},
		{"large", bytes.Repeat([]byte{0xA5}, 1<<20), []byte("x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1 := mustEncrypt(t, e.ring, tc.pt, tc.aad)
			c2 := mustEncrypt(t, e.ring, tc.pt, tc.aad)
			if string(c1[:3]) != "TK\x01" || kidOf(c1) != k.KID {
				t.Errorf("header: %q kid %q, want TK\\x01 and %q", c1[:3], kidOf(c1), k.KID)
			}
			if bytes.Equal(c1, c2) {
				t.Error("two encryptions are equal: nonce not random")
			}
			if len(tc.pt) > 8 && bytes.Contains(c1, tc.pt[:8]) {
				t.Error("ciphertext contains the plaintext")
			}
			got, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c1, tc.aad)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Errorf("Decrypt: got %d bytes, want the %d-byte plaintext", len(got), len(tc.pt))
			}
		})
	}
}

func TestDecryptTamper(t *testing.T) {
	e, _ := newDEKEnv(t)
	e.bootstrapSet(t, dataSet)
	other, err := e.ring.Create(ctx(t, alice), dataSet) // a second data key of the same kid length
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	signing := e.bootstrap(t)
	aad := []byte("tenant=42")
	c := mustEncrypt(t, e.ring, []byte("account 1234"), aad)
	n := int(c[3])
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte { b[i] ^= 0x01; return b }
	}
	setKID := func(kid string) func([]byte) []byte {
		return func(b []byte) []byte { copy(b[4:4+n], kid); return b }
	}
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		aad    []byte
		want   error
	}{
		{"magic", flip(0), aad, keyring.ErrCiphertextVersion},
		{"version", func(b []byte) []byte { b[2] = 2; return b }, aad, keyring.ErrCiphertextVersion},
		{"kid length zero", func(b []byte) []byte { b[3] = 0; return b }, aad, keyring.ErrCiphertext},
		{"truncated", func(b []byte) []byte { return b[:4+n+12+15] }, aad, keyring.ErrCiphertext},
		{"empty", func([]byte) []byte { return nil }, aad, keyring.ErrCiphertext},
		{"kid unknown", flip(4), aad, keyring.ErrUnknownDataKey},
		{"kid of a signing key", setKID(signing.KID), aad, keyring.ErrWrongPurpose},
		{"kid of another data key", setKID(other.KID), aad, keyring.ErrDecrypt},
		{"nonce", flip(4 + n), aad, keyring.ErrDecrypt},
		{"ciphertext", flip(4 + n + 12), aad, keyring.ErrDecrypt},
		{"tag", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, aad, keyring.ErrDecrypt},
		{"aad", func(b []byte) []byte { return b }, []byte("tenant=43"), keyring.ErrDecrypt},
		{"aad missing", func(b []byte) []byte { return b }, nil, keyring.ErrDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.mutate(bytes.Clone(c))
			pt, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), bad, tc.aad)
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("Decrypt: got (%d bytes, %v), want (nil, %v)", len(pt), err, tc.want)
			}
			for _, s := range []error{keyring.ErrCiphertextVersion, keyring.ErrCiphertext, keyring.ErrUnknownDataKey, keyring.ErrWrongPurpose, keyring.ErrDecrypt} {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v: rejections must be distinct", err, s)
				}
			}
		})
	}
	if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, aad); err != nil {
		t.Fatalf("the untampered ciphertext: %v", err)
	}
}

func TestDEKRotationRewrapRetireDestroy(t *testing.T) {
	e, _ := newDEKEnv(t)
	k1 := e.bootstrapSet(t, dataSet)
	aad := []byte("row=7")
	c1 := mustEncrypt(t, e.ring, []byte("old secret row"), aad)
	k2 := e.rotateSet(t, dataSet)
	if got := e.key(t, k1.KID); got.State != keyring.Retiring || !got.GraceUntil.Equal(e.clock.Now().Add(dataPolicy.Grace)) {
		t.Fatalf("previous data key: %v grace %v, want retiring until now+%v", got.State, got.GraceUntil, dataPolicy.Grace)
	}
	c2 := mustEncrypt(t, e.ring, []byte("new row"), aad)
	if kidOf(c2) != k2.KID {
		t.Errorf("Encrypt after rotation used %s, want the new Active key %s", kidOf(c2), k2.KID)
	}
	for name, c := range map[string][]byte{"old": c1, "new": c2} {
		if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, aad); err != nil {
			t.Errorf("Decrypt %s ciphertext after rotation: %v", name, err)
		}
	}
	r1, err := e.ring.Rewrap(ctx(t, keyring.Principal{}), c1, aad)
	if err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	if kidOf(r1) != k2.KID {
		t.Errorf("Rewrap: kid %s, want %s", kidOf(r1), k2.KID)
	}
	if got, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), r1, aad); err != nil || string(got) != "old secret row" {
		t.Errorf("Decrypt(rewrapped): got (%q, %v), want the original row", got, err)
	}
	if _, err := e.ring.Rewrap(ctx(t, keyring.Principal{}), c1, []byte("row=8")); !errors.Is(err, keyring.ErrDecrypt) {
		t.Errorf("Rewrap with the wrong aad: got %v, want %v", err, keyring.ErrDecrypt)
	}

	if err := e.ring.ApproveRetire(ctx(t, bob), k1.KID); err != nil {
		t.Fatalf("ApproveRetire: %v", err)
	}
	if err := e.ring.Retire(ctx(t, dave), k1.KID); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c1, aad); !errors.Is(err, keyring.ErrDataKeyRetired) {
		t.Errorf("Decrypt under a retired key: got %v, want %v", err, keyring.ErrDataKeyRetired)
	}
	if _, err := e.ring.Rewrap(ctx(t, keyring.Principal{}), c1, aad); !errors.Is(err, keyring.ErrDataKeyRetired) {
		t.Errorf("Rewrap under a retired key: got %v, want %v", err, keyring.ErrDataKeyRetired)
	}
	if err := e.ring.Destroy(ctx(t, dave), k1.KID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if got := e.key(t, k1.KID); got.State != keyring.Destroyed || !got.BackendRef.IsZero() {
		t.Errorf("destroyed record: %v ref %q, want destroyed with no wrapped material", got.State, got.BackendRef.Reveal())
	}
	if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c1, aad); !errors.Is(err, keyring.ErrDataKeyDestroyed) {
		t.Errorf("Decrypt under a destroyed key: got %v, want %v", err, keyring.ErrDataKeyDestroyed)
	}
	if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), r1, aad); err != nil {
		t.Errorf("the rewrapped ciphertext after the old key's destruction: %v", err)
	}
	want := map[audit.Type]bool{audit.KeyCreated: true, audit.KeyActivated: true, audit.KeyRotated: true, audit.KeyRetired: true, audit.KeyDestroyed: true}
	for _, ev := range e.rec.Events() {
		if ev.KID == k1.KID || ev.KID == k2.KID {
			delete(want, ev.Type)
		}
	}
	if len(want) != 0 {
		t.Errorf("transitions not audited: %v", want)
	}
}

// TestDEKNeverRetiredOnSchedule: a rotated data key keeps decrypting past
// its grace, through every Tick, for years; Report shows its rewrap
// pending since the rotation; only an approved Retire by a second
// principal ends it, and each refusal on the way is audited.
func TestDEKNeverRetiredOnSchedule(t *testing.T) {
	e, _ := newDEKEnv(t)
	k1 := e.bootstrapSet(t, dataSet)
	c := mustEncrypt(t, e.ring, []byte("row"), nil)
	k2 := e.rotateSet(t, dataSet)
	rotatedAt := e.key(t, k1.KID).RetiringAt
	for range 8 { // two years, a tick a quarter
		e.clock.Advance(91 * keyring.Day)
		if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil && !errors.Is(err, keyring.ErrNotApproved) {
			t.Fatalf("Tick: %v", err)
		}
		if got, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); err != nil || string(got) != "row" {
			t.Fatalf("Decrypt %v after the rotation: got (%q, %v), want the row", e.clock.Now().Sub(rotatedAt), got, err)
		}
	}
	if got := e.key(t, k1.KID); got.State != keyring.Retiring {
		t.Errorf("rotated data key after two years of ticks: %v, want retiring (decrypt-only)", got.State)
	}
	rep, err := e.ring.Report(ctx(t, core))
	if err != nil {
		t.Fatal(err)
	}
	for _, kr := range rep {
		if kr.KID == k1.KID && !kr.RewrapPendingSince.Equal(rotatedAt) {
			t.Errorf("Report: rewrap pending since %v, want %v", kr.RewrapPendingSince, rotatedAt)
		}
	}

	officer := keyring.Principal{ID: "bob", Roles: []keyring.Role{keyring.RoleSecurityOfficer}}
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{name: "retire without approval", do: func() error { return e.ring.Retire(ctx(t, dave), k1.KID) }, want: keyring.ErrApprovalRequired},
		{name: "approve by a non-approver", do: func() error { return e.ring.ApproveRetire(ctx(t, dave), k1.KID) }, want: keyring.ErrForbidden},
		{name: "approve the active key", do: func() error { return e.ring.ApproveRetire(ctx(t, bob), k2.KID) }, want: keyring.ErrIllegalState},
		{name: "approve", do: func() error { return e.ring.ApproveRetire(ctx(t, bob), k1.KID) }},
		{name: "retire by the approver", do: func() error { return e.ring.Retire(ctx(t, officer), k1.KID) }, want: keyring.ErrSelfApproval},
	} {
		if err := tc.do(); !errors.Is(err, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); err != nil {
		t.Fatalf("Decrypt after the refused retirements: %v", err)
	}
	if err := e.ring.Retire(ctx(t, dave), k1.KID); err != nil {
		t.Fatalf("Retire by a second principal: %v", err)
	}
	if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); !errors.Is(err, keyring.ErrDataKeyRetired) {
		t.Errorf("Decrypt after the approved Retire: got %v, want %v", err, keyring.ErrDataKeyRetired)
	}
	denied := 0
	for _, ev := range e.rec.Events() {
		if ev.KID == k1.KID && ev.Outcome == audit.Denied {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("%d denied events for %s, want 3 (no approval, not an approver, self-approval)", denied, k1.KID)
	}
}

func TestDEKCache(t *testing.T) {
	t.Run("decrypts without the wrapper until the ttl", func(t *testing.T) {
		e, w := newDEKEnv(t, func(c *keyring.Config) { c.DEKCacheTTL = 10 * time.Minute })
		e.bootstrapSet(t, dataSet)
		c := mustEncrypt(t, e.ring, []byte("row"), nil)
		before := w.unwraps.Load()
		for range 20 {
			if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
		}
		if got := w.unwraps.Load() - before; got != 0 {
			t.Errorf("20 cached decrypts called Unwrap %d times, want 0", got)
		}
		e.clock.Advance(10 * time.Minute)
		if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if got := w.unwraps.Load() - before; got != 1 {
			t.Errorf("decrypt after the ttl called Unwrap %d times, want 1", got)
		}
	})
	t.Run("size bound evicts", func(t *testing.T) {
		e, w := newDEKEnv(t, func(c *keyring.Config) { c.DEKCacheSize = 1 })
		e.bootstrapSet(t, dataSet)
		c1 := mustEncrypt(t, e.ring, []byte("a"), nil)
		e.rotateSet(t, dataSet)
		c2 := mustEncrypt(t, e.ring, []byte("b"), nil)
		before := w.unwraps.Load()
		for range 3 {
			for _, c := range [][]byte{c1, c2} {
				if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
			}
		}
		if got := w.unwraps.Load() - before; got != 6 {
			t.Errorf("alternating two keys through a one-key cache: %d unwraps, want 6", got)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		e, w := newDEKEnv(t, func(c *keyring.Config) { c.DEKCacheTTL = -1 })
		e.bootstrapSet(t, dataSet)
		c := mustEncrypt(t, e.ring, []byte("row"), nil)
		before := w.unwraps.Load()
		for range 3 {
			if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
		}
		if got := w.unwraps.Load() - before; got != 3 {
			t.Errorf("uncached: %d unwraps for 3 decrypts, want 3", got)
		}
	})
	t.Run("wrapper down: cached keys still decrypt, others fail", func(t *testing.T) {
		e, w := newDEKEnv(t)
		e.bootstrapSet(t, dataSet)
		c := mustEncrypt(t, e.ring, []byte("row"), nil)
		w.fail.Store(true)
		if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); err != nil {
			t.Errorf("cached Decrypt with the wrapper down: %v", err)
		}
		e.clock.Advance(keyring.DefaultDEKCacheTTL)
		if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); !errors.Is(err, keyring.ErrBackend) || !errors.Is(err, errWrapperDown) {
			t.Errorf("uncached Decrypt with the wrapper down: got %v, want %v wrapping the wrapper's error", err, keyring.ErrBackend)
		}
	})
}

// TestDEKWrapBinding: a wrapped key moved to another record does not
// unwrap (the wrap's aad binds kid, set and purpose).
func TestDEKWrapBinding(t *testing.T) {
	store := keyring.NewMemStore()
	e, _ := newDEKEnv(t, func(c *keyring.Config) { c.Store = store; c.DEKCacheTTL = -1 })
	k1 := e.bootstrapSet(t, dataSet)
	k2 := e.rotateSet(t, dataSet)
	c := mustEncrypt(t, e.ring, []byte("row"), nil)
	moved := k2
	moved.BackendRef = k1.BackendRef
	if err := store.Update(ctx(t, keyring.Principal{}), moved, k2.Version); err != nil {
		t.Fatalf("store.Update: %v", err)
	}
	if err := e.ring.Refresh(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := e.ring.Decrypt(ctx(t, keyring.Principal{}), c, nil); !errors.Is(err, keyring.ErrBackend) || !errors.Is(err, signer.ErrUnwrap) {
		t.Errorf("Decrypt with another record's wrapped key: got %v, want %v and %v", err, keyring.ErrBackend, signer.ErrUnwrap)
	}
}

func TestEncryptRefusals(t *testing.T) {
	t.Run("config", func(t *testing.T) {
		_, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{
			Audit: audit.NewRecorder(), Revocations: verifier.NewMemoryRevocationList(time.Now),
			Sets: []keyring.SetPolicy{{Name: dataSet, Purpose: keyring.Encryption, Owner: "o", Backend: "awskms"}},
		})
		if !errors.Is(err, keyring.ErrPolicy) {
			t.Errorf("Encryption set without a wrapper: got %v, want %v", err, keyring.ErrPolicy)
		}
		_, err = keyring.New(ctx(t, keyring.Principal{}), keyring.Config{
			Audit: audit.NewRecorder(), Revocations: verifier.NewMemoryRevocationList(time.Now),
			Sets: []keyring.SetPolicy{dataPolicy}, DEKCacheSize: -1,
		})
		if !errors.Is(err, keyring.ErrPolicy) {
			t.Errorf("negative cache size: got %v, want %v", err, keyring.ErrPolicy)
		}
	})
	e, w := newDEKEnv(t)
	for _, tc := range []struct {
		name string
		set  string
		want error
	}{
		{"unknown set", "nope", keyring.ErrUnknownSet},
		{"signing set", set, keyring.ErrWrongPurpose},
		{"no active key", dataSet, keyring.ErrNoActiveKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.ring.Encrypt(ctx(t, keyring.Principal{}), tc.set, []byte("x"), nil); !errors.Is(err, tc.want) {
				t.Errorf("Encrypt: got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("wrapper fails at create: nothing stored", func(t *testing.T) {
		w.fail.Store(true)
		defer w.fail.Store(false)
		if _, err := e.ring.Create(ctx(t, alice), dataSet); !errors.Is(err, keyring.ErrBackend) {
			t.Errorf("Create: got %v, want %v", err, keyring.ErrBackend)
		}
		if ks, _ := e.ring.Keys(ctx(t, core), keyring.Filter{Set: dataSet}); len(ks) != 0 {
			t.Errorf("%d keys stored after a failed create, want 0", len(ks))
		}
	})
	t.Run("audit down: no key", func(t *testing.T) {
		e.rec.FailAfter(0)
		defer e.rec.FailAfter(-1)
		if _, err := e.ring.Create(ctx(t, alice), dataSet); !errors.Is(err, keyring.ErrAudit) {
			t.Errorf("Create: got %v, want %v", err, keyring.ErrAudit)
		}
	})
	t.Run("overdue", func(t *testing.T) {
		e.bootstrapSet(t, dataSet)
		e.clock.Advance(keyring.MaxEncryptionRotation)
		if _, err := e.ring.Encrypt(ctx(t, keyring.Principal{}), dataSet, []byte("x"), nil); !errors.Is(err, keyring.ErrOverdue) {
			t.Errorf("Encrypt past RotateBy (strict by default): got %v, want %v", err, keyring.ErrOverdue)
		}
	})
}

// vector is testdata/ciphertext-v1.json.
type vector struct {
	KEK, Key, KID, Set, WrappedKey, Nonce, AAD, Plaintext, Ciphertext string
}

func (v *vector) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*v = vector{m["kek"], m["key"], m["kid"], m["set"], m["wrapped_key"], m["nonce"], m["aad"], m["plaintext"], m["ciphertext"]}
	return nil
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// TestCiphertextVector checks the documented format twice: the standard
// library, following the package documentation, produces the vector's
// bytes; and a keyring whose store holds the vector's wrapped key
// decrypts them.
func TestCiphertextVector(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "ciphertext-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("vector: %v", err)
	}
	want := unhex(t, v.Ciphertext)
	t.Run("format", func(t *testing.T) {
		block, err := aes.NewCipher(unhex(t, v.Key))
		if err != nil {
			t.Fatal(err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		header := append([]byte{'T', 'K', 1, byte(len(v.KID))}, v.KID...)
		got := append(bytes.Clone(header), unhex(t, v.Nonce)...)
		got = gcm.Seal(got, unhex(t, v.Nonce), unhex(t, v.Plaintext), append(bytes.Clone(header), unhex(t, v.AAD)...))
		if !bytes.Equal(got, want) {
			t.Errorf("format:\n got %x\nwant %x", got, want)
		}
	})
	t.Run("keyring decrypts", func(t *testing.T) {
		kek, err := signer.NewAESWrapper(unhex(t, v.KEK))
		if err != nil {
			t.Fatal(err)
		}
		store := keyring.NewMemStore()
		rec := keyring.Key{
			KID: v.KID, Set: v.Set, Purpose: keyring.Encryption, Algorithm: "A256GCM", State: keyring.Active,
			Owner: "team-data", CreatedAt: t0, RotateBy: t0.Add(180 * keyring.Day), Backend: "local", BackendRef: keyring.Hide(v.WrappedKey),
		}
		if err := store.Put(ctx(t, keyring.Principal{}), rec); err != nil {
			t.Fatal(err)
		}
		ring, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{
			Store: store, Audit: audit.NewRecorder(), Revocations: verifier.NewMemoryRevocationList(time.Now),
			Sets:     []keyring.SetPolicy{{Name: v.Set, Purpose: keyring.Encryption, Owner: "team-data"}},
			Wrappers: map[string]signer.KeyWrapper{"local": kek}, Now: func() time.Time { return t0 },
		})
		if err != nil {
			t.Fatalf("keyring.New: %v", err)
		}
		got, err := ring.Decrypt(ctx(t, keyring.Principal{}), want, unhex(t, v.AAD))
		if err != nil || !bytes.Equal(got, unhex(t, v.Plaintext)) {
			t.Fatalf("Decrypt(vector): got (%q, %v), want %q", got, err, unhex(t, v.Plaintext))
		}
	})
}

func BenchmarkDecrypt(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"local-wrapper-each-time", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			ring, err := keyring.New(context.Background(), keyring.Config{
				Audit: audit.NewRecorder(), Revocations: verifier.NewMemoryRevocationList(time.Now),
				Sets:        []keyring.SetPolicy{{Name: dataSet, Purpose: keyring.Encryption, Owner: "o", UnsafeSkipApproval: true}},
				DEKCacheTTL: tc.ttl,
			})
			if err != nil {
				b.Fatal(err)
			}
			c := keyring.WithPrincipal(context.Background(), keyring.Principal{ID: "ops", Roles: []keyring.Role{keyring.RoleIssuer, keyring.RoleDeployer}})
			k, err := ring.Create(c, dataSet)
			if err != nil {
				b.Fatal(err)
			}
			if err := ring.Activate(c, k.KID); err != nil {
				b.Fatal(err)
			}
			ct, err := ring.Encrypt(c, dataSet, make([]byte, 256), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ring.Decrypt(c, ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDEKScheduledRotation: a data-key set under a standing schedule
// approval rotates on its own within the 180-day limit over two simulated
// years, and every ciphertext stays readable while its key is in grace.
func TestDEKScheduledRotation(t *testing.T) {
	e, _ := newDEKEnv(t)
	e.bootstrapSet(t, dataSet)
	if err := e.ring.ApproveSchedule(ctx(t, bob), dataSet); err != nil {
		t.Fatal(err)
	}
	type sealed struct {
		c  []byte
		at time.Time
	}
	var kept []sealed
	for day := 0; day < 730; day++ {
		e.clock.Advance(keyring.Day)
		if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
			t.Fatalf("day %d: Tick: %v", day, err)
		}
		if day%7 == 0 {
			kept = append(kept, sealed{mustEncrypt(t, e.ring, []byte("row"), nil), e.clock.Now()})
		}
		// A ciphertext made within the last rotation period is readable.
		for _, s := range kept {
			if e.clock.Now().Sub(s.at) > dataPolicy.Grace {
				continue
			}
			if _, err := e.ring.Decrypt(context.Background(), s.c, nil); err != nil {
				t.Fatalf("day %d: ciphertext of %v unreadable: %v", day, s.at, err)
			}
		}
	}
	keys, _ := e.ring.Keys(ctx(t, core), keyring.Filter{Set: dataSet})
	if len(keys) < 5 {
		t.Errorf("%d data keys over two years, want at least 5 (one per < 180 days)", len(keys))
	}
	for _, k := range keys {
		if !k.RetiringAt.IsZero() && k.RetiringAt.Sub(k.CreatedAt) > keyring.MaxEncryptionRotation {
			t.Errorf("data key %s encrypted for %v, over 180 days", k.KID, k.RetiringAt.Sub(k.CreatedAt))
		}
	}
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.KeyOverdue {
			t.Errorf("overdue event: %+v", ev)
		}
	}
}
