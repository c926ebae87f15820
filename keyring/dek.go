package keyring

import (
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tokenkms/tokenkms/audit"
)

// The ciphertext format of Encrypt (see the package documentation):
//
//	magic "TK" || version 0x01 || len(kid) (1 byte) || kid || nonce (12) || AES-256-GCM ciphertext || tag (16)
//
// GCM authenticates everything before the nonce (the header) followed by
// the caller's aad.
const (
	ctMagic0, ctMagic1 = 'T', 'K'
	ctVersion          = 1
	ctNonceSize        = 12
	ctTagSize          = 16
	ctMaxKID           = 255
	dekSize            = 32
)

// Defaults of the unwrapped data-key cache.
const (
	DefaultDEKCacheTTL  = 5 * time.Minute
	DefaultDEKCacheSize = 256
)

// dekAAD is the additional data a data key is wrapped with: it binds the
// wrapped blob to its kid, set and purpose, so a blob moved to another
// record does not unwrap.
func dekAAD(kid, set string) []byte {
	return boundAAD("tokenkms/dek/v1", kid, set, Encryption.String())
}

// newDEK generates a data key for record k and returns it sealed by the
// set's KeyWrapper, base64: the key's BackendRef. The clear key is
// overwritten before return.
func (r *Keyring) newDEK(ctx context.Context, k Key) (Hidden, error) {
	raw := make([]byte, dekSize)
	defer clear(raw)
	rand.Read(raw)
	return r.sealRef(ctx, k.Backend, "data key "+k.KID, raw, dekAAD(k.KID, k.Set))
}

// Encrypt seals plaintext under the Active data key of an Encryption set,
// with a fresh random nonce, binding aad (which Decrypt must be given
// again). The result carries the key's kid in its header. It needs no
// principal: like signing, it is Core's everyday work.
func (r *Keyring) Encrypt(ctx context.Context, set string, plaintext, aad []byte) ([]byte, error) {
	k, err := r.activeKey(set, Encryption)
	if err != nil {
		return nil, err
	}
	aead, err := r.dataKey(ctx, k)
	if err != nil {
		return nil, err
	}
	return seal(aead, k.KID, plaintext, aad)
}

// seal builds header || nonce || GCM(plaintext, header || aad).
func seal(aead cipher.AEAD, kid string, plaintext, aad []byte) ([]byte, error) {
	if len(kid) == 0 || len(kid) > ctMaxKID {
		return nil, fmt.Errorf("%w: kid of %d bytes", ErrCiphertext, len(kid))
	}
	hlen := 4 + len(kid)
	out := make([]byte, hlen+ctNonceSize, hlen+ctNonceSize+len(plaintext)+ctTagSize)
	out[0], out[1], out[2], out[3] = ctMagic0, ctMagic1, ctVersion, byte(len(kid))
	copy(out[4:], kid)
	nonce := out[hlen:]
	rand.Read(nonce)
	return aead.Seal(out, nonce, plaintext, additionalData(out[:hlen], aad)), nil
}

func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	return append(append(ad, header...), aad...)
}

// envelope is a parsed ciphertext.
type envelope struct {
	header, nonce, body []byte
	kid                 string
}

func parseCiphertext(c []byte) (envelope, error) {
	if len(c) < 4 {
		return envelope{}, fmt.Errorf("%w: %d bytes", ErrCiphertext, len(c))
	}
	if c[0] != ctMagic0 || c[1] != ctMagic1 || c[2] != ctVersion {
		return envelope{}, ErrCiphertextVersion
	}
	n := int(c[3])
	if n == 0 || len(c) < 4+n+ctNonceSize+ctTagSize {
		return envelope{}, fmt.Errorf("%w: truncated or empty kid", ErrCiphertext)
	}
	h := 4 + n
	return envelope{header: c[:h], kid: string(c[4:h]), nonce: c[h : h+ctNonceSize], body: c[h+ctNonceSize:]}, nil
}

// Decrypt opens a ciphertext of Encrypt, with the data key its header
// names and the aad it was sealed with. Pending, Active and Retiring
// (within grace) data keys decrypt; a Retired or Compromised one refuses
// (ErrDataKeyRetired), a Destroyed one cannot (ErrDataKeyDestroyed). A
// changed header gives ErrCiphertextVersion or ErrCiphertext, an unknown
// kid ErrUnknownDataKey; a changed nonce, ciphertext, tag or aad, or a kid
// swapped for another data key's, fails authentication (ErrDecrypt):
// AES-GCM does not tell these apart, and neither does this function.
func (r *Keyring) Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	pt, _, err := r.decrypt(ctx, ciphertext, aad, false)
	return pt, err
}

// decrypt opens a ciphertext; forRewrap also opens one of a compromised
// data key (unless its set's policy refuses it), after auditing that.
func (r *Keyring) decrypt(ctx context.Context, ciphertext, aad []byte, forRewrap bool) ([]byte, *Key, error) {
	env, err := parseCiphertext(ciphertext)
	if err != nil {
		return nil, nil, err
	}
	k, err := r.decryptionKey(ctx, env.kid, forRewrap)
	if err != nil {
		return nil, nil, err
	}
	if k.State == Compromised {
		if err := r.auditRewrap(ctx, k); err != nil {
			return nil, nil, err
		}
	}
	aead, err := r.dataKey(ctx, k)
	if err != nil {
		return nil, nil, err
	}
	pt, err := aead.Open(nil, env.nonce, env.body, additionalData(env.header, aad))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: data key %s", ErrDecrypt, k.KID)
	}
	return pt, k, nil
}

// decryptionKey finds the record of kid, in the snapshot or, for a key
// created by another replica since the last refresh, in the store, and
// checks that it may decrypt.
func (r *Keyring) decryptionKey(ctx context.Context, kid string, forRewrap bool) (*Key, error) {
	k, ok := r.snap.Load().keys[kid]
	if !ok {
		sk, err := r.store.Get(ctx, kid)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownDataKey, kid)
		}
		if err != nil {
			return nil, fmt.Errorf("keyring: look up data key %q: %w", kid, err)
		}
		k = &sk
	}
	if k.Purpose != Encryption {
		return nil, fmt.Errorf("%w: %s is a %v key", ErrWrongPurpose, kid, k.Purpose)
	}
	if forRewrap && k.State == Compromised && !r.sets[k.Set].NoRewrapAfterCompromise {
		return k, nil
	}
	if err := r.dataKeyUsable(k); err != nil {
		r.deks.drop(kid)
		return nil, err
	}
	return k, nil
}

// auditRewrap records that a ciphertext of the compromised data key k is
// opened to be rewrapped; the rewrap does not happen unless it is
// recorded. The actor is the context's principal, or "in-process".
func (r *Keyring) auditRewrap(ctx context.Context, k *Key) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		p = Principal{ID: "in-process"}
	}
	ev := r.event(audit.KeyRewrapped, p, k.Set, k.KID, k.Incident)
	ev.Reason = "ciphertext moved off a compromised data key"
	return r.emit(ctx, ev)
}

// dataKeyUsable says whether k may still decrypt.
func (r *Keyring) dataKeyUsable(k *Key) error {
	switch {
	case k.State == Destroyed:
		return fmt.Errorf("%w: %s", ErrDataKeyDestroyed, k.KID)
	case k.State == Compromised:
		return fmt.Errorf("%w: %w: %s (only Rewrap opens its ciphertexts)", ErrDataKeyCompromised, ErrDataKeyRetired, k.KID)
	case k.State == Retired:
		return fmt.Errorf("%w: %s is %v", ErrDataKeyRetired, k.KID, k.State)
	case k.graceEnded(r.now()):
		return fmt.Errorf("%w: %s: its grace ended at %s", ErrDataKeyRetired, k.KID, k.GraceUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// Rewrap decrypts a ciphertext and encrypts the plaintext again under the
// Active data key of the same set: how data moves off a rotated key before
// the key is retired, and off a compromised one (each such call audited,
// key.rewrap; refused with ErrDataKeyCompromised when the set's policy says
// NoRewrapAfterCompromise). The plaintext never leaves this call.
func (r *Keyring) Rewrap(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	pt, k, err := r.decrypt(ctx, ciphertext, aad, true)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return r.Encrypt(ctx, k.Set, pt, aad)
}

// dataKey returns the AES-GCM cipher of data key k: from the cache, or
// unwrapped from its BackendRef (and then cached).
func (r *Keyring) dataKey(ctx context.Context, k *Key) (cipher.AEAD, error) {
	if a, ok := r.deks.get(k.KID); ok {
		return a, nil
	}
	if k.BackendRef.IsZero() {
		return nil, fmt.Errorf("%w: %s has no wrapped material", ErrDataKeyDestroyed, k.KID)
	}
	raw, err := r.openRef(ctx, k, "data key "+k.KID, dekAAD(k.KID, k.Set))
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	if len(raw) != dekSize {
		return nil, fmt.Errorf("%w: data key %s unwrapped to %d bytes", ErrBackend, k.KID, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: data key %s: %w", ErrBackend, k.KID, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: data key %s: %w", ErrBackend, k.KID, err)
	}
	r.deks.put(k.KID, aead)
	return aead, nil
}

// dekCache keeps unwrapped data keys (as ready AES-GCM ciphers) for at
// most ttl after their unwrap and at most max of them, least recently used
// evicted first. A nil *dekCache caches nothing.
type dekCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu  sync.Mutex
	lru *list.List // of *dekEntry, most recently used first
	by  map[string]*list.Element
}

type dekEntry struct {
	kid     string
	aead    cipher.AEAD
	expires time.Time
}

func newDEKCache(ttl time.Duration, max int, now func() time.Time) (*dekCache, error) {
	if max < 0 {
		return nil, fmt.Errorf("%w: negative data-key cache size", ErrPolicy)
	}
	if ttl < 0 {
		return nil, nil
	}
	if ttl == 0 {
		ttl = DefaultDEKCacheTTL
	}
	if max == 0 {
		max = DefaultDEKCacheSize
	}
	return &dekCache{ttl: ttl, max: max, now: now, lru: list.New(), by: make(map[string]*list.Element)}, nil
}

func (c *dekCache) get(kid string) (cipher.AEAD, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.by[kid]
	if !ok {
		return nil, false
	}
	e := el.Value.(*dekEntry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.aead, true
}

func (c *dekCache) put(kid string, aead cipher.AEAD) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.by[kid]; ok {
		c.remove(el)
	}
	c.by[kid] = c.lru.PushFront(&dekEntry{kid: kid, aead: aead, expires: c.now().Add(c.ttl)})
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
	}
}

func (c *dekCache) drop(kid string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.by[kid]; ok {
		c.remove(el)
	}
}

// retain drops the keys that snapshot s no longer lets decrypt.
func (c *dekCache) retain(s *snapshot) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for kid, el := range c.by {
		if k, ok := s.keys[kid]; !ok || k.State == Retired || k.State == Compromised || k.State == Destroyed {
			c.remove(el)
		}
	}
}

func (c *dekCache) remove(el *list.Element) {
	delete(c.by, el.Value.(*dekEntry).kid)
	c.lru.Remove(el)
}
