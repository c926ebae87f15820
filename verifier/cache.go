package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tokenkms/tokenkms"
)

// Bounds of WithCache.
const (
	// MaxCacheSize is the largest number of tokens WithCache may hold.
	MaxCacheSize = 1 << 22
	// cacheShards is the number of independently locked shards (fewer
	// when the cache holds fewer tokens).
	cacheShards = 32
	// cacheSample is how many entries an insertion into a full shard looks
	// at; it evicts the one that expires first.
	cacheSample = 4
)

// WithCache keeps up to size verified tokens in memory, so that a token
// presented again skips the decoding and the signature check. It is off by
// default; size must be between 1 and MaxCacheSize.
//
// A token is found by the SHA-256 of its exact bytes, and the cache holds
// that digest, never the token. Only tokens that passed every check are
// kept. Every hit is checked again: the key must still be given by the
// KeySource for the kid (a retired or compromised key, or another public
// key under that kid, is never served from the cache), and the claims go
// through the whole Policy again, expiry, not-before, age and revocation
// included. A hit returns a fresh copy of the claims.
//
// A full shard evicts, of a few entries sampled at random, the one that
// expires first.
func WithCache(size int) Option {
	return func(o *options) {
		o.cacheSize = size
		o.cacheSet = true
	}
}

// CacheStats describes a Verifier's token cache. It is the zero value when
// the Verifier has none.
type CacheStats struct {
	Capacity  int    // most tokens held at once
	Len       int    // tokens held now
	Hits      uint64 // Verify calls answered from the cache (accepted or not)
	Misses    uint64 // Verify calls that found no entry
	Evictions uint64 // entries dropped to make room or found stale
}

// CacheStats returns the counters of the cache that WithCache set up.
func (v *Verifier) CacheStats() CacheStats {
	if v.cache == nil {
		return CacheStats{}
	}
	return v.cache.stats()
}

type cacheKey [sha256.Size]byte

// cacheEntry is a verified token; immutable once stored.
type cacheEntry struct {
	claims *tokenkms.Claims // private: handed out only as copies
	kid    string
	alg    string
	public crypto.PublicKey
	exp    int64 // Unix seconds, for eviction
}

type cacheShard struct {
	mu        sync.RWMutex
	m         map[cacheKey]*cacheEntry
	capacity  int
	hits      atomic.Uint64
	misses    atomic.Uint64
	evictions atomic.Uint64
	_         [64]byte // keeps neighbouring shards' counters off one cache line
}

type tokenCache struct {
	shards []cacheShard
}

func newTokenCache(size int) (*tokenCache, error) {
	if size < 1 || size > MaxCacheSize {
		return nil, fmt.Errorf("%w: cache size %d, must be between 1 and %d", ErrPolicy, size, MaxCacheSize)
	}
	n := min(cacheShards, size)
	c := &tokenCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.capacity = size / n
		if i < size%n {
			s.capacity++
		}
		s.m = make(map[cacheKey]*cacheEntry, min(s.capacity, 1024))
	}
	return c, nil
}

func (c *tokenCache) shard(k cacheKey) *cacheShard {
	return &c.shards[binary.LittleEndian.Uint64(k[:8])%uint64(len(c.shards))]
}

func (c *tokenCache) get(k cacheKey) *cacheEntry {
	s := c.shard(k)
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	if e == nil {
		s.misses.Add(1)
	} else {
		s.hits.Add(1)
	}
	return e
}

func (c *tokenCache) put(k cacheKey, e *cacheEntry) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= s.capacity {
		s.evictOne()
	}
	s.m[k] = e
}

// drop removes k if it still maps to e (a concurrent put may have replaced
// it).
func (c *tokenCache) drop(k cacheKey, e *cacheEntry) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[k] == e {
		delete(s.m, k)
		s.evictions.Add(1)
	}
}

// evictOne drops, of up to cacheSample entries met from the random point
// where map iteration starts, the one that expires first; s.mu is held.
func (s *cacheShard) evictOne() {
	var victim cacheKey
	var found bool
	var exp int64
	i := 0
	for k, e := range s.m {
		if !found || e.exp < exp {
			victim, exp, found = k, e.exp, true
		}
		if i++; i == cacheSample {
			break
		}
	}
	if found {
		delete(s.m, victim)
		s.evictions.Add(1)
	}
}

func (c *tokenCache) stats() CacheStats {
	var st CacheStats
	for i := range c.shards {
		s := &c.shards[i]
		st.Capacity += s.capacity
		s.mu.RLock()
		st.Len += len(s.m)
		s.mu.RUnlock()
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		st.Evictions += s.evictions.Load()
	}
	return st
}

// verifyCached re-checks a cached token. It reports done=false when the
// entry no longer stands for what the KeySource says of its kid (another
// key, or another algorithm); the caller then drops it and verifies the
// token in full.
func (v *Verifier) verifyCached(ctx context.Context, e *cacheEntry) (c *tokenkms.Claims, done bool, err error) {
	key, err := v.key(ctx, e.kid)
	if err != nil {
		return nil, true, err
	}
	if !key.Allows(e.alg) || !samePublicKey(key.Public, e.public) {
		return nil, false, nil
	}
	// The entry's claims passed every check of the immutable Policy when
	// cached: only the time checks and the revocation check can change
	// their verdict since.
	if err := v.checkTimes(e.claims); err != nil {
		return nil, true, err
	}
	if err := v.checkRevoked(ctx, e.kid, e.claims); err != nil {
		return nil, true, err
	}
	return cloneClaims(e.claims), true, nil
}

// samePublicKey reports whether a and b are the same key: the same pointer
// (what a KeySource answering from memory gives), else equal by the key's
// own Equal method. Keys without one are never the same, so their tokens
// are verified in full every time.
func samePublicKey(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *ecdsa.PublicKey:
		if b, ok := b.(*ecdsa.PublicKey); ok && a == b {
			return true
		}
	case *rsa.PublicKey:
		if b, ok := b.(*rsa.PublicKey); ok && a == b {
			return true
		}
	}
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// cloneClaims copies c deeply, Extra's nested JSON values included.
func cloneClaims(c *tokenkms.Claims) *tokenkms.Claims {
	d := *c
	d.Audience = slices.Clone(c.Audience)
	d.Scope = slices.Clone(c.Scope)
	if c.Extra != nil {
		d.Extra = make(map[string]any, len(c.Extra))
		for k, x := range c.Extra {
			d.Extra[k] = cloneJSON(x)
		}
	}
	return &d
}

// cloneJSON copies a value as encoding/json decodes into an any: maps and
// slices are copied, scalars are immutable.
func cloneJSON(x any) any {
	switch x := x.(type) {
	case map[string]any:
		m := maps.Clone(x)
		for k, y := range m {
			m[k] = cloneJSON(y)
		}
		return m
	case []any:
		s := slices.Clone(x)
		for i, y := range s {
			s[i] = cloneJSON(y)
		}
		return s
	default:
		return x
	}
}
