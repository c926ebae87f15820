package verifier

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// revocationShardBits is log2 of the number of independently written jti
// shards; a shard is chosen by the top bits of the jti's hash. Few shards
// make large tables: from about a million jtis on, each is a whole number
// of huge pages (see newTableWords).
const (
	revocationShardBits = 4
	revocationShards    = 1 << revocationShardBits
	shardShift          = 64 - revocationShardBits
)

// purgeEvery is how often, at most, a shard drops its expired jtis when it
// is written to.
const purgeEvery = time.Minute

// Table layout and sizing. A slot is two words: the jti's hash (emptyHash
// when free), then its expiry offset. A table is grown when more than
// maxLoadNum/maxLoadDen of its slots would be taken, and a rebuild sizes it
// so that at most half is.
const (
	slotWords    = 2              // uint64 words per slot
	slotBytes    = slotWords * 8  // bytes per slot
	slotsPerLine = 64 / slotBytes // slots in a 64-byte cache line
	lineWords    = slotsPerLine * slotWords
	minSlots     = 16
	maxLoadNum   = 3
	maxLoadDen   = 4

	emptyHash = 0 // word 0 of a free slot
	takenHash = 1 // word 0 of a jti whose hash is 0
)

// A shard header (mu, tab, used, nextPurge: 32 bytes on 64-bit platforms)
// is padded to a cache line.
const shardPad = 64 - 32

// MemoryRevocationList is an in-process RevocationList sized for a real
// incident: ten million revoked jtis take about 270 MB (16-byte slots, 3/8
// to 3/4 of them taken as the list grows: 27 bytes per entry at 10M), and
// a lookup costs one keyed hash and, typically, one cache line.
//
// A jti is never stored: it is kept as a 64-bit keyed hash (maphash under
// a seed drawn for this list). Two jtis share an entry with probability
// 2⁻⁶⁴ per pair (a jti never revoked matches one of ten million entries
// with probability 5·10⁻¹³), an attacker who does not know the seed cannot
// make them collide, and a collision can only make a token look revoked
// (the entry keeps the later of the two untils), never the reverse.
//
// Each of 16 shards, chosen by the hash's top bits, is an open-addressing
// table (linear probing) of 16-byte slots: the hash, then the until as whole
// seconds after the list was made (a fractional until is rounded up, one
// before the list was made is held to its first second: each only extends a
// revocation). A jti's probe path starts at the first slot of a cache line,
// and a lookup reads that line whole and decides it without a branch on its
// contents. On Linux a table of 2 MiB or more (a shard past about 49,000
// jtis, a list past about 800,000) is mapped outside the Go heap on
// transparent huge pages, so that a lookup in a large list costs a cache
// miss but no page walk; Stats reports those bytes as MappedBytes, which
// GOMEMLIMIT does not count. An entry is forgotten once its until has
// passed: lookups ignore it at once, and a shard drops expired entries at
// most once a minute when it is written to, or when Purge is called, by
// rebuilding its table for the entries left, so memory returns to the system
// (a mapped table is unmapped by the first garbage collection after no
// lookup can still be reading it, and the runtime collects at least every
// two minutes unless GOGC=off); a shard left empty holds no table at all.
//
// Kid policies (every token of a kid issued before a cutoff) live in an
// immutable table swapped on write. They are never forgotten: a compromised
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
	seed    maphash.Seed
	baseSec int64 // Unix seconds the stored expiries count from
	shards  [revocationShards]jtiShard

	kidMu sync.Mutex               // serializes kid policy writers
	kids  atomic.Pointer[kidTable] // kid → issued-before cutoff

	log *revocationLog // nil unless made by NewLoggedRevocationList
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

// jtiTable is a power-of-two array of slots, a whole number of cache lines.
// Slot i is words 2i and 2i+1: the hash (emptyHash when free), then the
// expiry offset. Once the table is published, lookups read its slots and
// writers write them with sync/atomic only; a writer, holding the shard's
// mutex, may read them plainly.
type jtiTable struct {
	words  []uint64
	mask   uint64 // number of slots - 1
	mapped bool   // words are outside the Go heap (see newTableWords)
}

// NewMemoryRevocationList returns an empty list that reads the time from
// now (time.Now when nil).
func NewMemoryRevocationList(now func() time.Time) *MemoryRevocationList {
	if now == nil {
		now = time.Now
	}
	l := &MemoryRevocationList{
		now:     now,
		seed:    maphash.MakeSeed(),
		baseSec: now().Unix(),
	}
	l.kids.Store(&kidTable{})
	return l
}

// hash returns the keyed hash of jti as the tables hold it: never
// emptyHash.
func (l *MemoryRevocationList) hash(jti string) uint64 {
	h := maphash.String(l.seed, jti)
	if h == emptyHash {
		h = takenHash
	}
	return h
}

// shard returns the shard of the jti whose hash is h.
func (l *MemoryRevocationList) shard(h uint64) *jtiShard {
	return &l.shards[h>>shardShift]
}

// offset returns t as whole seconds after the list's base, rounded up and
// at least 1: never earlier than t.
func (l *MemoryRevocationList) offset(t time.Time) uint64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return uint64(max(sec-l.baseSec, 1))
}

// RevokeJTI revokes the token with this jti until the given time (its
// expiry) plus MaxLeeway (RevocationHorizon: a verifier accepts a token
// until exp + its leeway). Revoking it again keeps the later until. An
// until whose horizon has passed changes nothing; one outside the range
// of CheckRevocationTime is refused.
func (l *MemoryRevocationList) RevokeJTI(_ context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("%w: empty jti", ErrArgument)
	}
	if err := CheckRevocationTime("until", until); err != nil {
		return err
	}
	now := l.now()
	until = RevocationHorizon(until)
	if !until.After(now) {
		return nil
	}
	h := l.hash(jti)
	s := l.shard(h)
	nowOff := now.Unix() - l.baseSec
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Unix() >= s.nextPurge {
		s.purge(nowOff)
		s.nextPurge = now.Unix() + int64(purgeEvery/time.Second)
	}
	if s.insert(h, l.offset(until), nowOff) && l.log != nil {
		l.log.appendJTI(DigestJTI(jti), l.baseSec+int64(l.offset(until)), now.Unix())
	}
	return nil
}

// insert records h until the expiry offset exp and reports whether that
// changed anything (a new entry or a later until); s.mu is held.
func (s *jtiShard) insert(h, exp uint64, nowOff int64) bool {
	t := s.tab.Load()
	if t != nil {
		if w, ok := t.find(h); ok {
			if exp <= atomic.LoadUint64(&t.words[w+1]) {
				return false
			}
			atomic.StoreUint64(&t.words[w+1], exp)
			return true
		}
	}
	if t == nil || uint64(s.used+1)*maxLoadDen > (t.mask+1)*maxLoadNum {
		t = s.rebuild(nowOff, 1)
	}
	w := t.free(h)
	atomic.StoreUint64(&t.words[w+1], exp)
	atomic.StoreUint64(&t.words[w], h)
	s.used++
	return true
}

// home returns the word index of the first slot of h's probe path: the
// start of a cache line, so that a lookup usually reads one line.
func (t *jtiTable) home(h uint64) uint64 {
	return (h * slotsPerLine & t.mask) * slotWords
}

// next returns the word index of the slot, or line, n words after w.
func (t *jtiTable) next(w, n uint64) uint64 {
	return (w + n) & (t.mask*slotWords + slotWords - 1)
}

// find returns the word index of h's slot in t. It reads t a cache line at
// a time from h's home line and decides each line without a branch on its
// contents: a lookup usually ends in its home line (it finds h there, or a
// free slot that ends h's probe path), so the one branch it takes is
// predicted, and the processor can go on to the next lookup's memory
// access while this one's is in flight.
func (t *jtiTable) find(h uint64) (int, bool) {
	for w := t.home(h); ; w = t.next(w, lineWords) {
		line := (*[lineWords]uint64)(t.words[w : w+lineWords])
		h0 := atomic.LoadUint64(&line[0])
		h1 := atomic.LoadUint64(&line[2])
		h2 := atomic.LoadUint64(&line[4])
		h3 := atomic.LoadUint64(&line[6])
		m0, m1, m2, m3 := isZero(h0^h), isZero(h1^h), isZero(h2^h), isZero(h3^h)
		free := isZero(h0) | isZero(h1) | isZero(h2) | isZero(h3)
		if found := m0 | m1 | m2 | m3; found|free != 0 {
			at := w | -m1&2 | -m2&4 | -m3&6
			return int(at), found != 0
		}
	}
}

// isZero returns 1 when x is 0 and 0 otherwise, without a branch.
func isZero(x uint64) uint64 {
	return 1 ^ (x|-x)>>63
}

// free returns the word index of the first free slot on h's probe path.
func (t *jtiTable) free(h uint64) int {
	for w := t.home(h); ; w = t.next(w, slotWords) {
		if atomic.LoadUint64(&t.words[w]) == emptyHash {
			return int(w)
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
			if old.words[w] != emptyHash && int64(old.words[w+1]) > nowOff {
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
	t := &jtiTable{mask: uint64(slots - 1)}
	t.words, t.mapped = newTableWords(t, slots*slotWords)
	// t is not yet published: plain writes, ordered before any reader by
	// the atomic Store below.
	if old != nil {
		for w := 0; w < len(old.words); w += slotWords {
			h, exp := old.words[w], old.words[w+1]
			if h == emptyHash || int64(exp) <= nowOff {
				continue
			}
			i := t.home(h)
			for t.words[i] != emptyHash {
				i = t.next(i, slotWords)
			}
			t.words[i], t.words[i+1] = h, exp
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
		if t.words[w] != emptyHash && int64(t.words[w+1]) <= nowOff {
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
	if err := CheckRevocationTime("issuedBefore", issuedBefore); err != nil {
		return err
	}
	l.kidMu.Lock()
	defer l.kidMu.Unlock()
	old := l.kids.Load()
	if cut, ok := old.cutoff(kid); ok && !issuedBefore.After(cut) {
		return nil
	}
	l.kids.Store(old.with(kidPolicy{kid: kid, cutoff: issuedBefore}))
	if l.log != nil {
		l.log.appendKID(kid, issuedBefore)
	}
	return nil
}

// kidTable is an immutable open-addressing table of kid policies, replaced
// whole on write. A Go map would do, but every Revoked call checks the kid
// while a large list's lookups wait on memory, and with a map there (or
// even a second maphash) back-to-back lookups measured markedly slower: a
// short lookup lets the processor start the next one's memory access
// sooner.
type kidTable struct {
	slots []kidPolicy // a power of two, at most half taken; kid "" when free
	n     int
}

type kidPolicy struct {
	kid    string
	cutoff time.Time
}

// cutoff returns the cutoff of kid's policy, if it has one.
func (t *kidTable) cutoff(kid string) (time.Time, bool) {
	if t.n == 0 {
		return time.Time{}, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := kidHash(kid) & mask; ; i = (i + 1) & mask {
		switch p := &t.slots[i]; p.kid {
		case "":
			return time.Time{}, false
		case kid:
			return p.cutoff, true
		}
	}
}

// kidHash is a cheap, unkeyed hash of kid: the table is built from the
// host's kid policies only, so a crafted kid cannot make it slower than
// its longest probe run.
func kidHash(kid string) uint64 {
	h := uint64(len(kid))
	for len(kid) >= 8 {
		h = (h ^ le64(kid)) * 0x9e3779b97f4a7c15
		kid = kid[8:]
	}
	for i := range len(kid) {
		h = (h ^ uint64(kid[i])) * 0x9e3779b97f4a7c15
	}
	return h ^ h>>32
}

// le64 returns the first 8 bytes of s as a little-endian integer: one load.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// with returns a copy of t in which p replaces any policy of p.kid.
func (t *kidTable) with(p kidPolicy) *kidTable {
	size := max(4, 1<<bits.Len(uint(2*(t.n+1)-1)))
	next := &kidTable{slots: make([]kidPolicy, size)}
	put := func(p kidPolicy) {
		mask := uint64(size - 1)
		i := kidHash(p.kid) & mask
		for next.slots[i].kid != "" && next.slots[i].kid != p.kid {
			i = (i + 1) & mask
		}
		if next.slots[i].kid == "" {
			next.n++
		}
		next.slots[i] = p
	}
	for _, q := range t.slots {
		if q.kid != "" {
			put(q)
		}
	}
	put(p)
	return next
}

// Revoked reports whether the token (kid, jti, issuedAt) is revoked: its
// jti is listed and not yet past its until, or its kid has a policy whose
// cutoff is after issuedAt. It takes no lock.
func (l *MemoryRevocationList) Revoked(_ context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	if kids := l.kids.Load(); kids.n > 0 {
		if cut, ok := kids.cutoff(kid); ok && issuedAt.Before(cut) {
			return true, nil
		}
	}
	h := l.hash(jti)
	t := l.shard(h).tab.Load()
	if t == nil {
		return false, nil
	}
	revoked := false
	if w, ok := t.find(h); ok {
		revoked = l.now().Unix()-l.baseSec < int64(atomic.LoadUint64(&t.words[w+1]))
	}
	runtime.KeepAlive(t) // t's words may be unmapped once t is unreachable
	return revoked, nil
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
	MappedBytes int // of Bytes, those mapped outside the Go heap (large tables, Linux)
	KIDPolicies int // kid policies
}

// Stats returns the list's current size.
func (l *MemoryRevocationList) Stats() RevocationStats {
	st := RevocationStats{KIDPolicies: l.kids.Load().n}
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.JTIs += s.used
		if t := s.tab.Load(); t != nil {
			st.Slots += int(t.mask + 1)
			if t.mapped {
				st.MappedBytes += len(t.words) * 8
			}
		}
		s.mu.Unlock()
	}
	st.Bytes = st.Slots * slotBytes
	return st
}

// Durable reports false: the list lives as long as the process
// (keyring.New refuses it next to a durable store unless told it is
// unsafe).
func (l *MemoryRevocationList) Durable() bool { return false }

// String describes the list without its content.
func (l *MemoryRevocationList) String() string {
	return fmt.Sprintf("verifier.MemoryRevocationList(%d kid policies)", l.kids.Load().n)
}
