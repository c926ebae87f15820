package verifier

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// revocationShards is the number of independently locked jti shards.
const revocationShards = 64

// purgeEvery is how often, at most, a shard drops its expired jtis when it
// is written to.
const purgeEvery = time.Minute

// MemoryRevocationList is an in-process RevocationList.
//
// A jti is kept as a 128-bit keyed hash (two maphash sums under seeds drawn
// for this list), not as the string: 16 bytes of key and 8 of expiry per
// entry in sharded maps. Two jtis collide with probability 2⁻¹²⁸ per pair,
// and a collision can only make a token look revoked, never the reverse.
// An entry is forgotten once its until has passed: lookups ignore it at
// once, and each shard sweeps expired entries at most once a minute when it
// is written to (or when Purge is called), rebuilding its map when enough
// went for memory to return to the runtime.
//
// Kid policies (every token of a kid issued before a cutoff) live in an
// immutable map swapped on write, so their lookup takes no lock. They are
// never forgotten: a compromised kid stays revoked.
//
// It is safe for concurrent use: lookups of different shards never contend,
// and lookups of one shard share a read lock.
type MemoryRevocationList struct {
	now    func() time.Time
	seeds  [2]maphash.Seed
	shards [revocationShards]jtiShard

	kidMu sync.Mutex                           // serializes kid policy writers
	kids  atomic.Pointer[map[string]time.Time] // kid → issued-before cutoff
}

type jtiKey [2]uint64

type jtiShard struct {
	mu        sync.RWMutex
	m         map[jtiKey]int64 // → until, Unix nanoseconds
	peak      int              // largest len(m) since the map was built
	nextPurge int64            // Unix nanoseconds
}

// NewMemoryRevocationList returns an empty list that reads the time from
// now (time.Now when nil).
func NewMemoryRevocationList(now func() time.Time) *MemoryRevocationList {
	if now == nil {
		now = time.Now
	}
	l := &MemoryRevocationList{now: now, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	for i := range l.shards {
		l.shards[i].m = make(map[jtiKey]int64)
	}
	empty := map[string]time.Time{}
	l.kids.Store(&empty)
	return l
}

func (l *MemoryRevocationList) key(jti string) jtiKey {
	return jtiKey{maphash.String(l.seeds[0], jti), maphash.String(l.seeds[1], jti)}
}

func (l *MemoryRevocationList) shard(k jtiKey) *jtiShard {
	return &l.shards[k[0]%revocationShards]
}

// RevokeJTI revokes the token with this jti until the given time (its
// expiry: later the token is refused anyway). Revoking it again keeps the
// later until. A past until changes nothing.
func (l *MemoryRevocationList) RevokeJTI(_ context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("%w: empty jti", ErrArgument)
	}
	now := l.now().UnixNano()
	u := until.UnixNano()
	if u <= now {
		return nil
	}
	k := l.key(jti)
	s := l.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now >= s.nextPurge {
		s.purge(now)
	}
	if u > s.m[k] {
		s.m[k] = u
	}
	s.peak = max(s.peak, len(s.m))
	return nil
}

// RevokeKID revokes every token of kid issued before issuedBefore. A later
// cutoff extends the policy; an earlier one changes nothing.
func (l *MemoryRevocationList) RevokeKID(_ context.Context, kid string, issuedBefore time.Time) error {
	if kid == "" {
		return fmt.Errorf("%w: empty kid", ErrArgument)
	}
	l.kidMu.Lock()
	defer l.kidMu.Unlock()
	old := *l.kids.Load()
	if cut, ok := old[kid]; ok && !issuedBefore.After(cut) {
		return nil
	}
	next := maps.Clone(old)
	next[kid] = issuedBefore
	l.kids.Store(&next)
	return nil
}

// Revoked reports whether the token (kid, jti, issuedAt) is revoked: its
// jti is listed and not yet past its until, or its kid has a policy whose
// cutoff is after issuedAt.
func (l *MemoryRevocationList) Revoked(_ context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	if cut, ok := (*l.kids.Load())[kid]; ok && issuedAt.Before(cut) {
		return true, nil
	}
	k := l.key(jti)
	s := l.shard(k)
	s.mu.RLock()
	until, ok := s.m[k]
	s.mu.RUnlock()
	return ok && l.now().UnixNano() < until, nil
}

// Purge drops every expired jti now, shard by shard, and returns how many
// entries remain. Hosts with a bursty revocation pattern may call it
// periodically; the list also purges on its own as it is written to.
func (l *MemoryRevocationList) Purge() int {
	now := l.now().UnixNano()
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.purge(now)
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of jti entries held, expired ones not yet purged
// included.
func (l *MemoryRevocationList) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// purge drops the expired entries of s; s.mu is held for writing. Go maps
// do not shrink (and maps.Clone keeps the capacity), so when the shard has
// fallen below half its peak the live entries move to a new map sized for
// them and the old one is left to the collector.
func (s *jtiShard) purge(now int64) {
	s.nextPurge = now + int64(purgeEvery)
	for k, until := range s.m {
		if until <= now {
			delete(s.m, k)
		}
	}
	if len(s.m) < s.peak/2 {
		m := make(map[jtiKey]int64, len(s.m))
		for k, until := range s.m {
			m[k] = until
		}
		s.m = m
		s.peak = len(m)
	}
}

// String describes the list without its content.
func (l *MemoryRevocationList) String() string {
	return fmt.Sprintf("verifier.MemoryRevocationList(%d kid policies)", len(*l.kids.Load()))
}
