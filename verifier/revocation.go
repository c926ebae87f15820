package verifier

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// revocationShardBits is log2 of the number of independently written jti
// shards; a shard is chosen by the top bits of the jti's second hash.
const (
	revocationShardBits = 8
	revocationShards    = 1 << revocationShardBits
	shardShift          = 64 - revocationShardBits
)

// purgeEvery is how often, at most, a shard drops its expired jtis when it
// is written to.
const purgeEvery = time.Minute

// Table layout and sizing. A slot is two words: the first hash (emptyHash0
// when free), then the 32-bit tag above the 32-bit expiry offset. A table
// is grown when more than maxLoadNum/maxLoadDen of its slots would be
// taken, and a rebuild sizes it so that at most half is.
const (
	slotWords    = 2              // uint64 words per slot
	slotBytes    = slotWords * 8  // bytes per slot
	slotsPerLine = 64 / slotBytes // slots in a 64-byte cache line
	minSlots     = 16
	maxLoadNum   = 3
	maxLoadDen   = 4

	tagShift   = 32              // the tag sits above the expiry in word 1
	expiryMask = 1<<tagShift - 1 // the expiry bits of word 1
	maxExpiry  = math.MaxUint32  // the furthest expiry offset, in seconds
	emptyHash0 = 0               // word 0 of a free slot
	takenHash0 = 1               // word 0 of a jti whose first hash is 0
)

// A shard header (mu, tab, used, nextPurge: 32 bytes on 64-bit platforms)
// is padded to a cache line.
const shardPad = 64 - 32

// MemoryRevocationList is an in-process RevocationList sized for a real
// incident: ten million revoked jtis take about 270 MB (16-byte slots, 3/8
// to 3/4 of them taken as the list grows: 27 bytes per entry at 10M), and
// a lookup costs two keyed hashes and, typically, one cache line.
//
// A jti is never stored: it is kept as a 104-bit keyed hash (two maphash
// sums under seeds drawn for this list: 64 bits stored whole, 32 stored as
// a tag, 8 choosing the shard). Two jtis share an entry with probability
// 2⁻¹⁰⁴ per pair, an attacker who does not know the seeds cannot make them
// collide, and a collision can only make a token look revoked (the entry
// keeps the later of the two untils), never the reverse.
//
// Each of 256 shards is an open-addressing table (linear probing) of
// 16-byte slots: the first hash, then the tag and the until as whole
// seconds after the list was made (a fractional until is rounded up, one
// before the list was made is held to its first second, one more than 136
// years after it is held for 136 years: each only extends a revocation). An entry is forgotten once its until has passed: lookups
// ignore it at once, and a shard drops expired entries at most once a
// minute when it is written to, or when Purge is called, by rebuilding its
// table for the entries left, so memory returns to the runtime; a shard
// left empty holds no table at all.
//
// Kid policies (every token of a kid issued before a cutoff) live in an
// immutable map swapped on write. They are never forgotten: a compromised
// kid stays revoked.
//
// It is safe for concurrent use, and Revoked takes no lock: it loads the
// shard's current table and reads its slots atomically. A writer holds its
// shard's mutex, fills a slot's second word before its first (so a reader
// that sees the hash sees its until), never frees a slot in place, and
// publishes a rebuilt table with one atomic swap; a reader still on the
// old table sees every entry written before the swap.
type MemoryRevocationList struct {
	now     func() time.Time
	seeds   [2]maphash.Seed
	baseSec int64 // Unix seconds the stored expiries count from
	shards  [revocationShards]jtiShard

	kidMu sync.Mutex                           // serializes kid policy writers
	kids  atomic.Pointer[map[string]time.Time] // kid → issued-before cutoff
}

// jtiShard is one open-addressing table and its writer state, padded to a
// cache line so that writers of one shard do not slow readers of another.
type jtiShard struct {
	mu        sync.Mutex               // serializes writers (insert, purge, rebuild)
	tab       atomic.Pointer[jtiTable] // nil while the shard is empty
	used      int                      // slots taken in *tab, expired included; under mu
	nextPurge int64                    // Unix seconds; under mu
	_         [shardPad]byte
}

// jtiTable is a power-of-two array of slots. Slot i is words 2i and 2i+1:
// word 0 is the first hash (emptyHash0 when free), word 1 the tag above the
// expiry offset. Once the table is published, lookups read its slots and
// writers write them with sync/atomic only; a writer, holding the shard's
// mutex, may read them plainly.
type jtiTable struct {
	words []uint64
	mask  uint64 // number of slots - 1
}

// jtiKey is the keyed hash of one jti as the tables hold it.
type jtiKey struct {
	h0    uint64 // never emptyHash0; picks the home slot
	tag   uint64 // 32 bits, shifted into place in word 1
	shard uint64 // index into MemoryRevocationList.shards
}

// NewMemoryRevocationList returns an empty list that reads the time from
// now (time.Now when nil).
func NewMemoryRevocationList(now func() time.Time) *MemoryRevocationList {
	if now == nil {
		now = time.Now
	}
	l := &MemoryRevocationList{
		now:     now,
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		baseSec: now().Unix(),
	}
	empty := map[string]time.Time{}
	l.kids.Store(&empty)
	return l
}

func (l *MemoryRevocationList) key(jti string) jtiKey {
	h0 := maphash.String(l.seeds[0], jti)
	if h0 == emptyHash0 {
		h0 = takenHash0
	}
	h1 := maphash.String(l.seeds[1], jti)
	return jtiKey{h0: h0, tag: (h1 & expiryMask) << tagShift, shard: h1 >> shardShift}
}

// offset returns t as whole seconds after the list's base, rounded up and
// clamped to [1, maxExpiry]: never earlier than t within the range.
func (l *MemoryRevocationList) offset(t time.Time) uint64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	off := sec - l.baseSec
	switch {
	case off < 1:
		return 1
	case off > maxExpiry:
		return maxExpiry
	}
	return uint64(off)
}

// RevokeJTI revokes the token with this jti until the given time (its
// expiry: later the token is refused anyway). Revoking it again keeps the
// later until. A past until changes nothing.
func (l *MemoryRevocationList) RevokeJTI(_ context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("%w: empty jti", ErrArgument)
	}
	now := l.now()
	if !until.After(now) {
		return nil
	}
	k := l.key(jti)
	s := &l.shards[k.shard]
	nowOff := now.Unix() - l.baseSec
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Unix() >= s.nextPurge {
		s.purge(nowOff)
		s.nextPurge = now.Unix() + int64(purgeEvery/time.Second)
	}
	s.insert(k, l.offset(until), nowOff)
	return nil
}

// insert records k until the expiry offset exp; s.mu is held.
func (s *jtiShard) insert(k jtiKey, exp uint64, nowOff int64) {
	t := s.tab.Load()
	if t != nil {
		if i, ok := t.find(k); ok {
			w1 := atomic.LoadUint64(&t.words[i+1])
			if exp > w1&expiryMask {
				atomic.StoreUint64(&t.words[i+1], k.tag|exp)
			}
			return
		}
	}
	if t == nil || uint64(s.used+1)*maxLoadDen > (t.mask+1)*maxLoadNum {
		t = s.rebuild(nowOff, 1)
	}
	i := t.free(k.h0)
	atomic.StoreUint64(&t.words[i+1], k.tag|exp)
	atomic.StoreUint64(&t.words[i], k.h0)
	s.used++
}

// home returns the first slot of h0's probe path: the first of a group of
// slotsPerLine, so that a lookup usually reads one cache line.
func (t *jtiTable) home(h0 uint64) uint64 {
	return h0 * slotsPerLine & t.mask
}

// find returns the word index of k's slot in t.
func (t *jtiTable) find(k jtiKey) (int, bool) {
	for i := t.home(k.h0); ; i = (i + 1) & t.mask {
		w := int(i * slotWords)
		switch atomic.LoadUint64(&t.words[w]) {
		case emptyHash0:
			return 0, false
		case k.h0:
			if atomic.LoadUint64(&t.words[w+1])&^expiryMask == k.tag {
				return w, true
			}
		}
	}
}

// free returns the word index of the first free slot on h0's probe path.
func (t *jtiTable) free(h0 uint64) int {
	for i := t.home(h0); ; i = (i + 1) & t.mask {
		w := int(i * slotWords)
		if atomic.LoadUint64(&t.words[w]) == emptyHash0 {
			return w
		}
	}
}

// rebuild moves the live entries of s, and room for extra more, into a new
// table sized so that at most half of it is used, publishes it and returns
// it; s.mu is held. With nothing to hold, the shard drops its table.
func (s *jtiShard) rebuild(nowOff int64, extra int) *jtiTable {
	old := s.tab.Load()
	live := 0
	if old != nil {
		for w := 0; w < len(old.words); w += slotWords {
			if old.words[w] != emptyHash0 && int64(old.words[w+1]&expiryMask) > nowOff {
				live++
			}
		}
	}
	if live+extra == 0 {
		s.tab.Store(nil)
		s.used = 0
		return nil
	}
	slots := max(minSlots, 1<<bits.Len(uint(2*(live+extra)-1)))
	t := &jtiTable{words: make([]uint64, slots*slotWords), mask: uint64(slots - 1)}
	// t is not yet published: plain writes, ordered before any reader by
	// the atomic Store below.
	if old != nil {
		for w := 0; w < len(old.words); w += slotWords {
			h0, w1 := old.words[w], old.words[w+1]
			if h0 == emptyHash0 || int64(w1&expiryMask) <= nowOff {
				continue
			}
			i := t.home(h0)
			for t.words[i*slotWords] != emptyHash0 {
				i = (i + 1) & t.mask
			}
			t.words[i*slotWords], t.words[i*slotWords+1] = h0, w1
		}
	}
	s.tab.Store(t)
	s.used = live
	return t
}

// purge drops the expired entries of s, if any, by rebuilding its table;
// s.mu is held.
func (s *jtiShard) purge(nowOff int64) {
	t := s.tab.Load()
	if t == nil {
		return
	}
	for w := 0; w < len(t.words); w += slotWords {
		if t.words[w] != emptyHash0 && int64(t.words[w+1]&expiryMask) <= nowOff {
			s.rebuild(nowOff, 0)
			return
		}
	}
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
// cutoff is after issuedAt. It takes no lock.
func (l *MemoryRevocationList) Revoked(_ context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	if kids := *l.kids.Load(); len(kids) > 0 {
		if cut, ok := kids[kid]; ok && issuedAt.Before(cut) {
			return true, nil
		}
	}
	k := l.key(jti)
	t := l.shards[k.shard].tab.Load()
	if t == nil {
		return false, nil
	}
	w, ok := t.find(k)
	if !ok {
		return false, nil
	}
	exp := int64(atomic.LoadUint64(&t.words[w+1]) & expiryMask)
	return l.now().Unix()-l.baseSec < exp, nil
}

// Purge drops every expired jti now, shard by shard, and returns how many
// entries remain. Hosts with a bursty revocation pattern may call it
// periodically; the list also purges on its own as it is written to.
func (l *MemoryRevocationList) Purge() int {
	nowOff := l.now().Unix() - l.baseSec
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.purge(nowOff)
		n += s.used
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of jti entries held, expired ones not yet purged
// included.
func (l *MemoryRevocationList) Len() int {
	return l.Stats().JTIs
}

// RevocationStats describes the memory a MemoryRevocationList holds, for
// monitoring; it says nothing of the content.
type RevocationStats struct {
	JTIs        int // jti entries held, expired ones not yet purged included
	Slots       int // table slots allocated for them, over all shards
	Bytes       int // bytes of those slots
	KIDPolicies int // kid policies
}

// Stats returns the list's current size.
func (l *MemoryRevocationList) Stats() RevocationStats {
	st := RevocationStats{KIDPolicies: len(*l.kids.Load())}
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.JTIs += s.used
		if t := s.tab.Load(); t != nil {
			st.Slots += int(t.mask + 1)
		}
		s.mu.Unlock()
	}
	st.Bytes = st.Slots * slotBytes
	return st
}

// String describes the list without its content.
func (l *MemoryRevocationList) String() string {
	return fmt.Sprintf("verifier.MemoryRevocationList(%d kid policies)", len(*l.kids.Load()))
}
