package jwks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/verifier"
)

// Defaults of a RevocationFeed.
const (
	// DefaultFeedMaxAge is how old the newest verified document may be
	// before Revoked fails closed.
	DefaultFeedMaxAge = 30 * time.Second
	// DefaultFeedMaxSize caps a document: about 5.5 million jti entries.
	DefaultFeedMaxSize = 64 << 20
	// maxFeedSkew is how far in the future a document's signing time may
	// be (clock skew); a later one is refused.
	maxFeedSkew = verifier.MaxLeeway
)

// RevocationFeedConfig configures NewRevocationFeed.
type RevocationFeedConfig struct {
	// URL of the issuer's revocation handler; https, or http to a
	// loopback host with AllowInsecureLoopback. Required.
	URL string
	// Keys checks the documents' signatures: the issuer's JWKS, normally
	// the *RemoteSet the verifier uses. Required. A *RemoteSet is also
	// refreshed when a document is signed by a kid it does not know yet
	// (at most once a second), and told to Exclude every kid the issuer
	// revokes whole.
	Keys verifier.KeySource
	// Issuer, when set, must be the "iss" of every document.
	Issuer string
	// MaxAge bounds staleness: Revoked fails with ErrFeedStale once the
	// newest verified document was signed longer ago than this (default
	// DefaultFeedMaxAge). It includes the clock skew between issuer and
	// verifier and the handler's Refresh when a cache is in front.
	MaxAge time.Duration
	// Wait is the long-poll wait of each request (default MaxAge/3, in
	// whole seconds, at least 1 s); it must be shorter than MaxAge. Zero
	// Wait is the default; a poll with no wait is PollInterval.
	Wait time.Duration
	// PollInterval, when set, replaces long-polling by plain polling at
	// this period (for a CDN in front, which does not hold requests). It
	// must be shorter than MaxAge.
	PollInterval time.Duration
	// Timeout bounds each request beyond its wait (default 10 s).
	Timeout time.Duration
	// MaxSize caps a document (default DefaultFeedMaxSize).
	MaxSize int64
	// Retry is the pause after a failed request (default 1 s).
	Retry time.Duration
	// HTTPClient, when set, is used with its Transport (e.g. a private
	// CA); its Timeout is replaced by per-request deadlines and its
	// redirects are checked as the URL is.
	HTTPClient            *http.Client
	AllowInsecureLoopback bool
	// OnError receives the failures Start's loop survives. Errors never
	// hold a jti.
	OnError func(error)
	// Now is the clock of freshness and of the jtis' expiry; default
	// time.Now.
	Now func() time.Time
}

// RevocationFeed is a verifier.RevocationList that follows an issuer's
// revocation feed (NewRevocationHandler): the content is held in a
// verifier.MemoryRevocationList, so Revoked costs one SHA-256 of the jti
// more than an in-process lookup, and no I/O. Start follows the feed by
// long-polling; Revoked fails with ErrFeedStale (the verifier answers
// verifier.ErrRevocationCheck) once the newest document it verified is
// older than MaxAge, so a verifier cut from its issuer refuses tokens
// instead of accepting revoked ones. RevokeJTI and RevokeKID fail with
// ErrReadOnly.
type RevocationFeed struct {
	cfg    RevocationFeedConfig
	url    *url.URL
	client *http.Client
	list   *verifier.MemoryRevocationList

	fresh atomic.Int64 // Unix milliseconds: signing time of the newest verified document

	pollMu sync.Mutex // one poll at a time; guards cur and dead
	cur    cursor
	dead   map[string]bool // kids revoked whole: their documents are refused

	stats struct {
		docs, full, bytes atomic.Int64
	}

	base   context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	start  bool
	closed atomic.Bool
}

// FeedStats counts what a RevocationFeed received, for monitoring.
type FeedStats struct {
	Documents int64     // verified documents applied
	FullSyncs int64     // of them, full snapshots
	Bytes     int64     // body bytes of the verified documents
	Fresh     time.Time // signing time of the newest
	KIDs      int       // kid policies held
	JTIs      int       // jti entries held
}

// NewRevocationFeed checks cfg, fetches the full content once with ctx
// and verifies it, so a feed that exists answers Revoked. Call Start to
// follow the feed and Close when done.
func NewRevocationFeed(ctx context.Context, cfg RevocationFeedConfig) (*RevocationFeed, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultFeedMaxAge
	}
	if cfg.Wait == 0 && cfg.PollInterval == 0 {
		cfg.Wait = max(cfg.MaxAge/3/time.Second*time.Second, time.Second)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultFeedMaxSize
	}
	if cfg.Retry == 0 {
		cfg.Retry = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Keys == nil:
		return nil, fmt.Errorf("%w: revocation feed without Keys to check its signatures", ErrOption)
	case cfg.MaxAge < 0 || cfg.Wait < 0 || cfg.PollInterval < 0 || cfg.Timeout < 0 || cfg.MaxSize < 0 || cfg.Retry < 0:
		return nil, fmt.Errorf("%w: negative duration or size", ErrOption)
	case cfg.Wait > 0 && cfg.PollInterval > 0:
		return nil, fmt.Errorf("%w: Wait (long-polling) and PollInterval (polling) both set", ErrOption)
	case cfg.Wait >= cfg.MaxAge || cfg.PollInterval >= cfg.MaxAge || cfg.Retry >= cfg.MaxAge:
		return nil, fmt.Errorf("%w: Wait, PollInterval and Retry must be shorter than MaxAge %v, or the feed goes stale between two documents", ErrOption, cfg.MaxAge)
	case cfg.Wait%time.Second != 0:
		return nil, fmt.Errorf("%w: Wait must be whole seconds", ErrOption)
	}
	if err := checkURL(cfg.URL, cfg.AllowInsecureLoopback); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInsecureURL, err)
	}
	f := &RevocationFeed{
		cfg:    cfg,
		url:    u,
		client: safeClient(cfg.HTTPClient, 0, cfg.AllowInsecureLoopback),
		list:   verifier.NewMemoryRevocationList(cfg.Now),
		dead:   make(map[string]bool),
	}
	f.base, f.cancel = context.WithCancel(context.Background())
	if err := f.Sync(ctx); err != nil {
		f.cancel()
		return nil, err
	}
	return f, nil
}

// String describes the feed without its content.
func (f *RevocationFeed) String() string {
	return fmt.Sprintf("jwks.RevocationFeed(%s, max age %v)", f.url.Redacted(), f.cfg.MaxAge)
}

// Revoked reports whether the token (kid, jti, issuedAt) is revoked in
// the issuer's feed. It fails with ErrFeedStale when the newest verified
// document is older than MaxAge, and with ErrClosed after Close.
func (f *RevocationFeed) Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	if f.closed.Load() {
		return false, ErrClosed
	}
	if age := f.cfg.Now().Sub(time.UnixMilli(f.fresh.Load())); age > f.cfg.MaxAge {
		return false, fmt.Errorf("%w: newest document signed %v ago, more than %v (is Start running, is the issuer reachable?)", ErrFeedStale, age.Round(time.Millisecond), f.cfg.MaxAge)
	}
	d := verifier.DigestJTI(jti)
	return f.list.Revoked(ctx, kid, string(d[:]), issuedAt)
}

// RevokeJTI fails with ErrReadOnly: revoke on the issuer.
func (f *RevocationFeed) RevokeJTI(context.Context, string, time.Time) error { return ErrReadOnly }

// RevokeKID fails with ErrReadOnly: revoke on the issuer.
func (f *RevocationFeed) RevokeKID(context.Context, string, time.Time) error { return ErrReadOnly }

// Sync fetches the changes since the last document now, without waiting
// at the head, and applies them; ctx bounds the request. It waits first
// for a long-poll of Start in flight, if any (at most Wait + Timeout).
func (f *RevocationFeed) Sync(ctx context.Context) error {
	return f.poll(ctx, 0)
}

// Start follows the feed in the background until ctx is done or Close is
// called: a long-poll after another (or a poll every PollInterval), a
// pause of Retry after a failure, which goes to OnError, and then a
// request that does not wait, so that the feed is fresh again as soon as
// the issuer answers.
func (f *RevocationFeed) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed.Load():
		return ErrClosed
	case f.start:
		return ErrStarted
	}
	f.start = true
	background(&f.wg, ctx, f.base, f.loop)
	return nil
}

func (f *RevocationFeed) loop(ctx context.Context) {
	wait := f.cfg.Wait
	for ctx.Err() == nil {
		pause := f.cfg.PollInterval
		err := f.poll(ctx, wait)
		// After a failure, the next request asks for a fresh document at
		// once rather than waiting at the head.
		wait = f.cfg.Wait
		if err != nil {
			wait = 0
			if ctx.Err() != nil {
				return
			}
			if f.cfg.OnError != nil {
				f.cfg.OnError(err)
			}
			pause = f.cfg.Retry
		}
		if pause > 0 && !sleep(ctx, pause) {
			return
		}
	}
}

// Close stops the loop and any request in flight and waits for them.
// Later calls of Revoked fail with ErrClosed.
func (f *RevocationFeed) Close() error {
	f.mu.Lock()
	if f.closed.Swap(true) {
		f.mu.Unlock()
		return ErrClosed
	}
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	return nil
}

// RevocationUpdatedAt is the signing time of the newest document applied
// (verifier.RevocationFreshness: a Verifier checking against the feed
// exports its staleness), zero before the first.
func (f *RevocationFeed) RevocationUpdatedAt() time.Time {
	if ms := f.fresh.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// Stats returns what the feed received and holds.
func (f *RevocationFeed) Stats() FeedStats {
	st := f.list.Stats()
	return FeedStats{
		Documents: f.stats.docs.Load(), FullSyncs: f.stats.full.Load(), Bytes: f.stats.bytes.Load(),
		Fresh: time.UnixMilli(f.fresh.Load()), KIDs: st.KIDPolicies, JTIs: st.JTIs,
	}
}

// poll makes one request, with a long-poll wait, and applies the answer.
func (f *RevocationFeed) poll(ctx context.Context, wait time.Duration) error {
	f.pollMu.Lock()
	defer f.pollMu.Unlock()
	u := *f.url
	q := u.Query()
	if f.cur.epoch != 0 {
		q.Set("cursor", f.cur.String())
	}
	if wait > 0 {
		q.Set("wait", strconv.FormatInt(int64(wait/time.Second), 10))
	}
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, wait+f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
	req.Header.Set("Accept", FeedMediaType)
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxSize+1))
	if err != nil {
		return fmt.Errorf("%w: read body: %w", ErrFetch, err)
	}
	if int64(len(body)) > f.cfg.MaxSize {
		return fmt.Errorf("%w: revocation document over %d bytes", ErrTooLarge, f.cfg.MaxSize)
	}
	var refresh func(context.Context) error
	if r, ok := f.cfg.Keys.(keyRefresher); ok {
		refresh = r.Refresh
	}
	d, err := verifyDocument(ctx, body, f.cfg.Keys, refresh, func(kid string) bool { return f.dead[kid] })
	if err != nil {
		return err
	}
	return f.apply(ctx, d, len(body))
}

// excluder is a KeySource that can stop serving a kid (*RemoteSet).
type excluder interface {
	Exclude(kid string)
}

// apply merges a verified document into the list, then moves the cursor
// and the freshness; f.pollMu is held.
func (f *RevocationFeed) apply(ctx context.Context, d *document, size int) error {
	m := d.m
	if f.cfg.Issuer != "" && m.Issuer != f.cfg.Issuer {
		return fmt.Errorf("%w: issuer %q", ErrFeedDocument, jose.Clip(m.Issuer))
	}
	now := f.cfg.Now()
	if time.UnixMilli(m.TS).After(now.Add(maxFeedSkew)) {
		return fmt.Errorf("%w: signed %v in the future", ErrFeedDocument, time.UnixMilli(m.TS).Sub(now).Round(time.Second))
	}
	if !m.Full && (d.epoch != f.cur.epoch || m.From != f.cur.seq) {
		err := fmt.Errorf("%w: changes %d..%d do not follow cursor %d", ErrFeedDocument, m.From, m.To, f.cur.seq)
		f.cur = cursor{} // out of step: start over with a full snapshot
		return err
	}
	ex, _ := f.cfg.Keys.(excluder)
	for _, k := range d.kids {
		if err := f.list.RevokeKID(ctx, k.KID, k.IssuedBefore); err != nil {
			return err
		}
		// A cutoff beyond any iat a verifier accepts revokes the key whole.
		if k.IssuedBefore.After(now.Add(verifier.MaxLeeway)) {
			f.dead[k.KID] = true
			if ex != nil {
				ex.Exclude(k.KID)
			}
		}
	}
	for _, j := range d.jtis {
		// The feed carries the horizon; RevokeJTI adds MaxLeeway to an until.
		if err := f.list.RevokeJTI(ctx, string(j.Digest[:]), time.Unix(j.Until, 0).Add(-verifier.MaxLeeway)); err != nil {
			return err
		}
	}
	f.cur = cursor{d.epoch, m.To}
	for {
		old := f.fresh.Load()
		if m.TS <= old || f.fresh.CompareAndSwap(old, m.TS) {
			break
		}
	}
	f.stats.docs.Add(1)
	f.stats.bytes.Add(int64(size))
	if m.Full {
		f.stats.full.Add(1)
	}
	return nil
}

var (
	_ verifier.RevocationList = (*RevocationFeed)(nil)
	_ keyRefresher            = (*RemoteSet)(nil)
	_ excluder                = (*RemoteSet)(nil)
)
