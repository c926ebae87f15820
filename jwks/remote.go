package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/verifier"
)

// Defaults of a RemoteSet, each changed by an option.
const (
	DefaultMaxBodySize        = 1 << 20
	DefaultTimeout            = 10 * time.Second
	DefaultMinRefreshInterval = 30 * time.Second
	DefaultMaxStale           = 24 * time.Hour
	// DefaultTTL is how long a set is fresh when the server sends no
	// usable Cache-Control max-age.
	DefaultTTL = DefaultMaxAge
	// MaxTTL caps the server's max-age.
	MaxTTL = 24 * time.Hour
)

// maxNegative bounds the negative cache of unknown kids, and maxNegativeKID
// the length of a kid it keeps (longer ones are only rate-limited).
const (
	maxNegative    = 4096
	maxNegativeKID = 256
)

// RemoteOption configures NewRemoteSet.
type RemoteOption func(*RemoteSet)

// WithHTTPClient fetches with c (its Transport, e.g. for a private CA)
// instead of a fresh client. The RemoteSet still applies its timeout and
// its redirect policy.
func WithHTTPClient(c *http.Client) RemoteOption {
	return func(s *RemoteSet) {
		if c != nil {
			s.client = c
		}
	}
}

// AllowInsecureLoopback allows a plain http URL whose host is 127.0.0.1,
// ::1 or localhost, for tests and sidecars. Any other http URL is refused.
func AllowInsecureLoopback() RemoteOption {
	return func(s *RemoteSet) { s.insecureLoopback = true }
}

// WithMaxBodySize caps the document size (default 1 MiB).
func WithMaxBodySize(n int64) RemoteOption {
	return func(s *RemoteSet) { s.maxBody = n }
}

// WithTimeout bounds each fetch (default 10 s).
func WithTimeout(d time.Duration) RemoteOption {
	return func(s *RemoteSet) { s.timeout = d }
}

// WithMinRefreshInterval sets the shortest time between two fetches
// triggered by unknown kids, and between two fetches started because the
// set expired; the life of a negative cache entry, the retry delay after a
// failed background refresh and the floor of the server's max-age (default
// 30 s).
func WithMinRefreshInterval(d time.Duration) RemoteOption {
	return func(s *RemoteSet) { s.minRefresh = d }
}

// WithMaxStale sets how long after its expiry the last good set may still
// be used while refreshes fail (default 24 h). Past it, VerificationKey
// fails with ErrStale (and verifier.ErrKeySource).
func WithMaxStale(d time.Duration) RemoteOption {
	return func(s *RemoteSet) { s.maxStale = d }
}

// WithAlgorithms restricts the algorithms whose keys are used (default:
// ES256, ES384, ES512, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512).
// A name outside that table makes NewRemoteSet fail.
func WithAlgorithms(algs ...string) RemoteOption {
	return func(s *RemoteSet) { s.algs = slices.Clone(algs) }
}

// WithLogger reports through l what the operator must know: each key a
// fetched set skips (kid clipped, reason; at Info for keys that are simply
// not signature keys, SkipUse, SkipKeyOps and SkipKeyType, at Warn for
// the others), a document refused (Error), a fetch that failed (Warn).
// Default: slog.Default(). Lines about skipped keys are written when the
// list of skipped keys changes, not at every fetch.
func WithLogger(l *slog.Logger) RemoteOption {
	return func(s *RemoteSet) { s.log = l }
}

// RemoteSet is a verifier.KeySource that reads a JWK set over HTTPS, for
// services that verify Core's tokens in another process. It answers
// VerificationKey from memory; fetches happen at construction, in the
// background after Start, on Refresh, when a lookup finds the set expired
// (at most once per minimum refresh interval, started or not), and at most
// once per minimum refresh interval for kids it does not know (a budget of
// their own, which the other fetches do not use up).
type RemoteSet struct {
	url              string
	client           *http.Client
	insecureLoopback bool
	maxBody          int64
	timeout          time.Duration
	minRefresh       time.Duration
	maxStale         time.Duration
	algs             []string
	log              *slog.Logger
	logURL           string // the URL without its query, for log lines

	snap      atomic.Pointer[snapshot]
	lastFetch atomic.Int64 // start of the last fetch of any kind, Unix ns; written under mu

	base   context.Context // cancelled by Close: ends fetches and the loop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	excluded atomic.Pointer[map[string]bool] // kids never served again (Exclude); copy on write under mu

	mu       sync.Mutex
	inflight *fetchCall
	lastMiss time.Time // start of the last fetch an unknown kid triggered
	negative map[string]time.Time
	started  bool
	closed   bool
	fetches  uint64
	failures uint64
	lastErr  error
}

// snapshot is an immutable view of the last good set.
type snapshot struct {
	*parsed
	etag      string
	fetchedAt time.Time
	expires   time.Time
	refreshAt time.Time
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// NewRemoteSet checks url and options and fetches the set once with ctx,
// so a RemoteSet that exists has keys to answer with. Call Start to keep
// it fresh in the background and Close when done.
func NewRemoteSet(ctx context.Context, rawURL string, opts ...RemoteOption) (*RemoteSet, error) {
	s := &RemoteSet{
		url:        rawURL,
		maxBody:    DefaultMaxBodySize,
		timeout:    DefaultTimeout,
		minRefresh: DefaultMinRefreshInterval,
		maxStale:   DefaultMaxStale,
		algs:       jose.Names(),
		negative:   make(map[string]time.Time),
	}
	for _, o := range opts {
		o(s)
	}
	switch {
	case s.maxBody <= 0:
		return nil, fmt.Errorf("%w: body size limit must be positive", ErrOption)
	case s.timeout <= 0:
		return nil, fmt.Errorf("%w: timeout must be positive", ErrOption)
	case s.minRefresh <= 0:
		return nil, fmt.Errorf("%w: minimum refresh interval must be positive", ErrOption)
	case s.maxStale < 0:
		return nil, fmt.Errorf("%w: maximum staleness must not be negative", ErrOption)
	case len(s.algs) == 0:
		return nil, fmt.Errorf("%w: no algorithm allowed", ErrOption)
	}
	for _, a := range s.algs {
		if _, ok := jose.Lookup(a); !ok {
			return nil, fmt.Errorf("%w: algorithm %q not supported", ErrOption, a)
		}
	}
	if err := checkURL(rawURL, s.insecureLoopback); err != nil {
		return nil, err
	}
	s.client = safeClient(s.client, s.timeout, s.insecureLoopback)
	if s.log == nil {
		s.log = slog.Default()
	}
	if u, err := url.Parse(rawURL); err == nil {
		u.RawQuery, u.Fragment = "", ""
		s.logURL = u.String()
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	if err := s.Refresh(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// VerificationKey returns the key kid names. It implements
// verifier.KeySource. A kid the set publishes but does not use gives an
// error wrapping verifier.ErrKeyUnusable with the SkipReason. A kid not in
// the set gives an error wrapping verifier.ErrUnknownKID at once, except
// that at most one caller per minimum refresh interval triggers a refresh
// and waits for it (bounded by its ctx and the fetch timeout); the kid is
// then looked up again. A set past its expiry is refreshed in the
// background (rate-limited) while it still answers, until MaxStale.
func (s *RemoteSet) VerificationKey(ctx context.Context, kid string) (verifier.Key, error) {
	if ex := s.excluded.Load(); ex != nil && (*ex)[kid] {
		return verifier.Key{}, fmt.Errorf("%w: kid %q revoked by the revocation feed", verifier.ErrKeyCompromised, jose.Clip(kid))
	}
	snap := s.snap.Load()
	if snap == nil {
		return verifier.Key{}, fmt.Errorf("%w: %w", verifier.ErrKeySource, ErrClosed)
	}
	now := time.Now()
	if now.After(snap.expires) {
		s.refreshExpired(now)
		if now.After(snap.expires.Add(s.maxStale)) {
			return verifier.Key{}, fmt.Errorf("%w: %w: last good set expired at %s", verifier.ErrKeySource, ErrStale, snap.expires.Format(time.RFC3339))
		}
	}
	if k, ok, err := snap.lookup(kid); ok {
		return k, err
	}
	if kid == "" {
		return verifier.Key{}, fmt.Errorf("%w: empty kid", verifier.ErrUnknownKID)
	}
	return s.miss(ctx, kid, now)
}

// lookup answers for kid from the snapshot: its key, or why it is unusable.
// ok is false when the set does not name kid.
func (p *parsed) lookup(kid string) (verifier.Key, bool, error) {
	if k, ok := p.keys[kid]; ok {
		return k, true, nil
	}
	if r, ok := p.unusable[kid]; ok {
		return verifier.Key{}, true, fmt.Errorf("%w: %s: kid %q", verifier.ErrKeyUnusable, r, jose.Clip(kid))
	}
	return verifier.Key{}, false, nil
}

// current looks kid up in the current snapshot.
func (s *RemoteSet) current(kid string) (verifier.Key, bool, error) {
	if snap := s.snap.Load(); snap != nil {
		return snap.lookup(kid)
	}
	return verifier.Key{}, false, nil
}

// wait waits for the fetch to end, or for ctx.
func (c *fetchCall) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refreshExpired starts a background fetch for an expired set unless one
// runs or one started within the minimum refresh interval.
func (s *RemoteSet) refreshExpired(now time.Time) {
	if now.Sub(time.Unix(0, s.lastFetch.Load())) < s.minRefresh {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.inflight == nil && now.Sub(time.Unix(0, s.lastFetch.Load())) >= s.minRefresh {
		s.startLocked()
	}
}

// miss looks for a kid the set does not name with a fetch that starts after
// the miss: it waits for the fetch in flight, if any, then joins or starts
// the next one. Such fetches have a budget of one per minimum refresh
// interval, apart from the background ones; a kid missed again is cached
// for one interval.
func (s *RemoteSet) miss(ctx context.Context, kid string, now time.Time) (verifier.Key, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return verifier.Key{}, fmt.Errorf("%w: %w", verifier.ErrKeySource, ErrClosed)
	}
	if exp, ok := s.negative[kid]; ok && now.Before(exp) {
		s.mu.Unlock()
		return verifier.Key{}, fmt.Errorf("%w: kid %q (cached miss)", verifier.ErrUnknownKID, jose.Clip(kid))
	}
	if now.Sub(s.lastMiss) < s.minRefresh {
		s.mu.Unlock()
		return verifier.Key{}, fmt.Errorf("%w: kid %q (refresh rate-limited)", verifier.ErrUnknownKID, jose.Clip(kid))
	}
	s.lastMiss = now
	c := s.inflight
	s.mu.Unlock()
	if c != nil { // it may have started before kid was published
		if err := c.wait(ctx); err != nil {
			return verifier.Key{}, fmt.Errorf("%w: kid %q (refresh not awaited: %w)", verifier.ErrUnknownKID, jose.Clip(kid), err)
		}
		if k, ok, err := s.current(kid); ok {
			return k, err
		}
	}
	s.mu.Lock()
	if c = s.inflight; c == nil && !s.closed {
		c = s.startLocked()
	}
	s.mu.Unlock()
	if c == nil {
		return verifier.Key{}, fmt.Errorf("%w: %w", verifier.ErrKeySource, ErrClosed)
	}
	if err := c.wait(ctx); err != nil {
		return verifier.Key{}, fmt.Errorf("%w: kid %q (refresh not awaited: %w)", verifier.ErrUnknownKID, jose.Clip(kid), err)
	}
	if k, ok, err := s.current(kid); ok {
		return k, err
	}
	if len(kid) <= maxNegativeKID {
		s.mu.Lock()
		if len(s.negative) >= maxNegative {
			clear(s.negative)
		}
		s.negative[kid] = now.Add(s.minRefresh)
		s.mu.Unlock()
	}
	if c.err != nil {
		return verifier.Key{}, fmt.Errorf("%w: kid %q (refresh failed: %v)", verifier.ErrUnknownKID, jose.Clip(kid), c.err)
	}
	return verifier.Key{}, fmt.Errorf("%w: kid %q", verifier.ErrUnknownKID, jose.Clip(kid))
}

// Refresh fetches the set now, or joins the fetch in flight, and waits for
// it with ctx. On failure the last good set stays in use.
func (s *RemoteSet) Refresh(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	c := s.inflight
	if c == nil {
		c = s.startLocked()
	}
	s.mu.Unlock()
	if err := c.wait(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
	return c.err
}

// startLocked starts a fetch in its own goroutine, bounded by the set's
// life and the timeout rather than by one caller's ctx. s.mu is held.
func (s *RemoteSet) startLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	s.inflight = c
	s.lastFetch.Store(time.Now().UnixNano())
	s.fetches++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.err = s.fetch()
		s.mu.Lock()
		s.inflight = nil
		s.lastErr = c.err
		if c.err != nil {
			s.failures++
		}
		s.mu.Unlock()
		switch {
		case errors.Is(c.err, ErrPrivateMaterial), errors.Is(c.err, ErrNoUsableKeys):
			s.log.Error("jwks: key set refused", "url", s.logURL, "error", c.err)
		case c.err != nil && !errors.Is(c.err, ErrClosed):
			s.log.Warn("jwks: key set fetch failed", "url", s.logURL, "error", c.err)
		}
		close(c.done)
	}()
	return c
}

// Start refreshes the set in the background until ctx is done or Close is
// called: at three quarters of its lifetime, and every minimum refresh
// interval after a failure.
func (s *RemoteSet) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return ErrStarted
	}
	s.started = true
	background(&s.wg, ctx, s.base, s.loop)
	return nil
}

// background runs loop in a goroutine wg counts, under a context that ends
// with ctx or with base (which Close cancels): the shared shape of the
// Start loops of RemoteSet and RevocationFeed.
func background(wg *sync.WaitGroup, ctx, base context.Context, loop func(context.Context)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(base, cancel)()
		loop(ctx)
	}()
}

// sleep waits d (none when d <= 0) and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *RemoteSet) loop(ctx context.Context) {
	wait := s.minRefresh
	if snap := s.snap.Load(); snap != nil {
		wait = time.Until(snap.refreshAt)
	}
	for sleep(ctx, wait) {
		if err := s.Refresh(ctx); err != nil {
			wait = s.minRefresh
			continue
		}
		wait = time.Until(s.snap.Load().refreshAt)
	}
}

// Close stops the background refresh and any fetch in flight, and waits
// for them. Later calls of VerificationKey fail.
func (s *RemoteSet) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.snap.Store(nil)
	return nil
}

// fetch gets the document, revalidating with the ETag, and swaps in the
// new snapshot on success.
func (s *RemoteSet) fetch() error {
	ctx, cancel := context.WithTimeout(s.base, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
	req.Header.Set("Accept", MediaType+", application/json")
	old := s.snap.Load()
	if old != nil && old.etag != "" {
		req.Header.Set("If-None-Match", old.etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	now := time.Now()
	ttl := s.ttl(resp.Header.Values("Cache-Control"))
	next := &snapshot{fetchedAt: now, expires: now.Add(ttl), refreshAt: now.Add(ttl * 3 / 4)}
	switch resp.StatusCode {
	case http.StatusNotModified:
		if old == nil || old.etag == "" {
			return fmt.Errorf("%w: 304 without a cached set", ErrFetch)
		}
		next.parsed, next.etag = old.parsed, old.etag
	case http.StatusOK:
		body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
		if err != nil {
			return fmt.Errorf("%w: read body: %w", ErrFetch, err)
		}
		if int64(len(body)) > s.maxBody {
			return fmt.Errorf("%w: over %d bytes", ErrTooLarge, s.maxBody)
		}
		p, err := s.parse(body)
		if err != nil {
			return err
		}
		next.parsed, next.etag = p, resp.Header.Get("ETag")
	default:
		return fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.snap.Store(next)
	clear(s.negative)
	s.mu.Unlock()
	if old == nil || !slices.Equal(old.skipped, next.skipped) {
		for _, k := range next.skipped {
			s.log.Log(context.Background(), k.Reason.level(), "jwks: key skipped", "url", s.logURL, "index", k.Index, "kid", k.KID, "reason", string(k.Reason))
		}
	}
	return nil
}

// ttl reads max-age from Cache-Control: no-store and no-cache count as 0;
// the result is clamped to [minimum refresh interval, MaxTTL], DefaultTTL
// when absent.
func (s *RemoteSet) ttl(values []string) time.Duration {
	ttl := time.Duration(-1)
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				ttl = 0
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 && ttl != 0 {
					ttl = time.Duration(min(n, int64(MaxTTL/time.Second))) * time.Second
				}
			}
		}
	}
	if ttl < 0 {
		ttl = DefaultTTL
	}
	return min(max(ttl, s.minRefresh), MaxTTL)
}

// Stats describes a RemoteSet, for diagnostics and metrics.
type Stats struct {
	Keys      int          // usable keys in the current set
	Skipped   []SkippedKey // keys of the current set that are not used, by Index
	FetchedAt time.Time    // when the current set was fetched (or revalidated with a 304)
	Expires   time.Time    // when it expires; it is used until Expires + MaxStale
	Fetches   uint64       // fetches started, of any kind
	Failures  uint64       // fetches that failed, refused documents included
	LastError error        // the error of the last fetch, nil if it succeeded
}

// Stats returns the state of the set. After Close it reports no keys.
func (s *RemoteSet) Stats() Stats {
	s.mu.Lock()
	st := Stats{Fetches: s.fetches, Failures: s.failures, LastError: s.lastErr}
	s.mu.Unlock()
	if snap := s.snap.Load(); snap != nil {
		st.Keys, st.Skipped = len(snap.keys), slices.Clone(snap.skipped)
		st.FetchedAt, st.Expires = snap.fetchedAt, snap.expires
	}
	return st
}

// Skipped returns the keys of the current set that are not used, with
// their reasons.
func (s *RemoteSet) Skipped() []SkippedKey { return s.Stats().Skipped }

// Exclude stops the set from serving kid, now and after every later
// fetch, whatever the JWKS document says: VerificationKey answers
// verifier.ErrKeyCompromised. A RevocationFeed calls it for every kid the
// issuer revoked whole (a compromised key), so that the key stops
// verifying at once rather than when the JWKS cache expires.
func (s *RemoteSet) Exclude(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]bool{kid: true}
	if old := s.excluded.Load(); old != nil {
		if (*old)[kid] {
			return
		}
		maps.Copy(next, *old)
	}
	s.excluded.Store(&next)
}

// Keys returns the kids of the current set, sorted, for diagnostics.
func (s *RemoteSet) Keys() []string {
	snap := s.snap.Load()
	if snap == nil {
		return nil
	}
	out := make([]string, 0, len(snap.keys))
	for kid := range snap.keys {
		out = append(out, kid)
	}
	slices.Sort(out)
	return out
}

var _ verifier.KeySource = (*RemoteSet)(nil)
