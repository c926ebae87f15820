package verifier

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"
)

// JTIDigest is what a revocation log records of a jti and what a
// revocation feed publishes: the first 8 bytes of its SHA-256. Publishing
// digests rather than jtis keeps a feed compact (12 bytes an entry) and
// says nothing of the tokens; two jtis share a digest with probability
// 2⁻⁶⁴ per pair, which can only make a token look revoked, never the
// reverse.
type JTIDigest [8]byte

// DigestJTI returns the digest of jti.
func DigestJTI(jti string) JTIDigest {
	sum := sha256.Sum256([]byte(jti))
	return JTIDigest(sum[:8])
}

// JTIRevocation is one jti revocation in a revocation log.
type JTIRevocation struct {
	Seq    uint64 // the change that recorded it
	Digest JTIDigest
	Until  int64 // Unix seconds, rounded up: the horizon (until + MaxLeeway, RevocationHorizon)
}

// KIDRevocation is one kid policy in a revocation log: every token of KID
// issued before IssuedBefore is revoked.
type KIDRevocation struct {
	Seq          uint64
	KID          string
	IssuedBefore time.Time
}

// RevocationChanges is what a logged MemoryRevocationList reports to a
// revocation feed: the changes after cursor From, up to and including
// cursor To, the list's head. Full changes (From 0) are the whole live
// content. Applying changes is a merge (a later until or cutoff wins), so
// applying a change twice, or a full snapshot over older content, is safe.
//
// The slices are read-only: JTIs shares the log's memory.
type RevocationChanges struct {
	Epoch    uint64 // identifies the list: a cursor of another epoch means nothing to it
	From, To uint64
	Full     bool
	KIDs     []KIDRevocation
	JTIs     []JTIRevocation // expired entries may remain; readers skip them
}

// revocationLog is the change log of a logged list, in the order of
// changes. Compaction drops expired jti entries into a new array, so that
// slices handed out before stay intact.
type revocationLog struct {
	mu          sync.Mutex
	epoch       uint64
	seq         uint64
	jtis        []JTIRevocation // Seq increasing
	kids        []KIDRevocation // Seq increasing; never compacted
	changed     chan struct{}   // closed at the next change; nil until someone waits
	nextCompact int64           // Unix seconds
}

// NewLoggedRevocationList returns an empty MemoryRevocationList that also
// keeps the log of its changes that a revocation feed publishes (Since,
// Wait; see jwks.NewRevocationHandler). Only real changes are logged: a
// revocation that neither adds a jti nor extends an until or a cutoff
// (a replay, as when a durable store feeds the list again) is not. The log costs 24 bytes per jti
// revocation until it expires, on top of the list's own table; a list
// made by NewMemoryRevocationList keeps none.
func NewLoggedRevocationList(now func() time.Time) *MemoryRevocationList {
	l := NewMemoryRevocationList(now)
	epoch := rand.Uint64()
	for epoch == 0 {
		epoch = rand.Uint64()
	}
	l.log = &revocationLog{epoch: epoch}
	return l
}

// appendJTI records a jti revocation until the Unix second until.
func (g *revocationLog) appendJTI(d JTIDigest, until, now int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now >= g.nextCompact {
		g.compact(now)
		g.nextCompact = now + int64(purgeEvery/time.Second)
	}
	g.seq++
	g.jtis = append(g.jtis, JTIRevocation{Seq: g.seq, Digest: d, Until: until})
	g.notify()
}

// appendKID records a kid policy.
func (g *revocationLog) appendKID(kid string, issuedBefore time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	g.kids = append(g.kids, KIDRevocation{Seq: g.seq, KID: kid, IssuedBefore: issuedBefore})
	g.notify()
}

// notify wakes the waiters; g.mu is held.
func (g *revocationLog) notify() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// compact drops the expired jti entries when they are a quarter of the
// log or more, into a new array; g.mu is held.
func (g *revocationLog) compact(now int64) {
	dead := 0
	for _, e := range g.jtis {
		if e.Until <= now {
			dead++
		}
	}
	if dead == 0 || dead*4 < len(g.jtis) {
		return
	}
	live := make([]JTIRevocation, 0, len(g.jtis)-dead)
	for _, e := range g.jtis {
		if e.Until > now {
			live = append(live, e)
		}
	}
	g.jtis = live
}

// Cursor returns the list's epoch and head: the cursor up to which Since
// reports changes. It fails with ErrNotLogged on a list without a log.
func (l *MemoryRevocationList) Cursor() (epoch, head uint64, err error) {
	g := l.log
	if g == nil {
		return 0, 0, ErrNotLogged
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.epoch, g.seq, nil
}

// Since returns the changes after cursor, up to the list's head. A cursor
// of another epoch, 0, or past the head gives the full content. It fails
// with ErrNotLogged on a list without a log (NewMemoryRevocationList).
func (l *MemoryRevocationList) Since(epoch, cursor uint64) (RevocationChanges, error) {
	g := l.log
	if g == nil {
		return RevocationChanges{}, ErrNotLogged
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if epoch != g.epoch || cursor > g.seq {
		cursor = 0
	}
	c := RevocationChanges{Epoch: g.epoch, From: cursor, To: g.seq, Full: cursor == 0}
	i := sort.Search(len(g.jtis), func(i int) bool { return g.jtis[i].Seq > cursor })
	c.JTIs = g.jtis[i:len(g.jtis):len(g.jtis)]
	k := sort.Search(len(g.kids), func(i int) bool { return g.kids[i].Seq > cursor })
	c.KIDs = slices.Clone(g.kids[k:])
	return c, nil
}

// Wait blocks until the list has changes after cursor (at once for a
// cursor of another epoch or past the head), or ctx is done. It fails with
// ErrNotLogged on a list without a log, and with ctx's error.
func (l *MemoryRevocationList) Wait(ctx context.Context, epoch, cursor uint64) error {
	g := l.log
	if g == nil {
		return ErrNotLogged
	}
	g.mu.Lock()
	if epoch != g.epoch || cursor != g.seq {
		g.mu.Unlock()
		return nil
	}
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	ch := g.changed
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
