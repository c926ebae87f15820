package jwks

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

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
// triggered by unknown kids, the life of a negative cache entry, the retry
// delay after a failed background refresh and the floor of the server's
// max-age (default 30 s).
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

// RemoteSet is a verifier.KeySource that reads a JWK set over HTTPS, for
// services that verify Core's tokens in another process. It answers
// VerificationKey from memory; fetches happen at construction, in the
// background after Start, on Refresh, and at most once per minimum refresh
// interval for a kid it does not know.
type RemoteSet struct {
	url              string
	client           *http.Client
	insecureLoopback bool
	maxBody          int64
	timeout          time.Duration
	minRefresh       time.Duration
	maxStale         time.Duration
	algs             []string

	snap atomic.Pointer[snapshot]

	base   context.Context // cancelled by Close: ends fetches and the loop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	inflight  *fetchCall
	lastFetch time.Time // start of the last fetch of any kind
	negative  map[string]time.Time
	started   bool
	closed    bool
}

// snapshot is an immutable view of the last good set.
type snapshot struct {
	keys      map[string]verifier.Key
	etag      string
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
	if err := s.checkURL(rawURL); err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: s.timeout}
	if s.client != nil {
		*c = *s.client
		c.Timeout = s.timeout
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return fmt.Errorf("%w: too many redirects", ErrFetch)
		}
		if err := s.checkURL(req.URL.String()); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	s.client = c
	s.base, s.cancel = context.WithCancel(context.Background())
	if err := s.Refresh(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkURL accepts https, and http to a loopback host when allowed.
func (s *RemoteSet) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: cannot parse the URL", ErrInsecureURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL", ErrInsecureURL)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		if s.insecureLoopback && (h == "localhost" || ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback)) {
			return nil
		}
		return fmt.Errorf("%w: plain http to %q", ErrInsecureURL, h)
	}
	return fmt.Errorf("%w: scheme %q", ErrInsecureURL, u.Scheme)
}

// VerificationKey returns the key kid names. It implements
// verifier.KeySource. A kid not in the set gives an error wrapping
// verifier.ErrUnknownKID at once, except that at most one caller per
// minimum refresh interval triggers a refresh and waits for it (bounded by
// its ctx and the fetch timeout); the kid is then looked up again.
func (s *RemoteSet) VerificationKey(ctx context.Context, kid string) (verifier.Key, error) {
	snap := s.snap.Load()
	if snap == nil {
		return verifier.Key{}, fmt.Errorf("%w: %w", verifier.ErrKeySource, ErrClosed)
	}
	if time.Now().After(snap.expires.Add(s.maxStale)) {
		return verifier.Key{}, fmt.Errorf("%w: %w: last good set expired at %s", verifier.ErrKeySource, ErrStale, snap.expires.Format(time.RFC3339))
	}
	if k, ok := snap.keys[kid]; ok {
		return k, nil
	}
	if kid == "" {
		return verifier.Key{}, fmt.Errorf("%w: empty kid", verifier.ErrUnknownKID)
	}
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return verifier.Key{}, fmt.Errorf("%w: %w", verifier.ErrKeySource, ErrClosed)
	}
	if exp, ok := s.negative[kid]; ok && now.Before(exp) {
		s.mu.Unlock()
		return verifier.Key{}, fmt.Errorf("%w: kid %q (cached miss)", verifier.ErrUnknownKID, kid)
	}
	if s.inflight != nil || now.Sub(s.lastFetch) < s.minRefresh {
		s.mu.Unlock()
		return verifier.Key{}, fmt.Errorf("%w: kid %q (refresh rate-limited)", verifier.ErrUnknownKID, kid)
	}
	c := s.startLocked()
	s.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return verifier.Key{}, fmt.Errorf("%w: kid %q (refresh not awaited: %w)", verifier.ErrUnknownKID, kid, ctx.Err())
	}
	if snap := s.snap.Load(); snap != nil {
		if k, ok := snap.keys[kid]; ok {
			return k, nil
		}
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
		return verifier.Key{}, fmt.Errorf("%w: kid %q (refresh failed: %v)", verifier.ErrUnknownKID, kid, c.err)
	}
	return verifier.Key{}, fmt.Errorf("%w: kid %q", verifier.ErrUnknownKID, kid)
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
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrFetch, ctx.Err())
	}
}

// startLocked starts a fetch in its own goroutine, bounded by the set's
// life and the timeout rather than by one caller's ctx. s.mu is held.
func (s *RemoteSet) startLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	s.inflight = c
	s.lastFetch = time.Now()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.err = s.fetch()
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
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
	s.wg.Add(1)
	go s.loop(ctx)
	return nil
}

func (s *RemoteSet) loop(ctx context.Context) {
	defer s.wg.Done()
	wait := s.minRefresh
	if snap := s.snap.Load(); snap != nil {
		wait = time.Until(snap.refreshAt)
	}
	for {
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.base.Done():
			t.Stop()
			return
		case <-t.C:
		}
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
	next := &snapshot{expires: now.Add(ttl), refreshAt: now.Add(ttl * 3 / 4)}
	switch resp.StatusCode {
	case http.StatusNotModified:
		if old == nil || old.etag == "" {
			return fmt.Errorf("%w: 304 without a cached set", ErrFetch)
		}
		next.keys, next.etag = old.keys, old.etag
	case http.StatusOK:
		body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
		if err != nil {
			return fmt.Errorf("%w: read body: %w", ErrFetch, err)
		}
		if int64(len(body)) > s.maxBody {
			return fmt.Errorf("%w: over %d bytes", ErrTooLarge, s.maxBody)
		}
		keys, err := s.parse(body)
		if err != nil {
			return err
		}
		next.keys, next.etag = keys, resp.Header.Get("ETag")
	default:
		return fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.snap.Store(next)
	clear(s.negative)
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

// parse reads a JWK set and keeps the keys a verifier may use: kid set,
// "use" absent or "sig", "key_ops" absent or holding "verify", alg set and
// allowed, a public key that fits alg (RSA of at least 2048 bits). Other
// entries, including any private or symmetric key, are skipped. Two usable
// keys with one kid make the document malformed.
func (s *RemoteSet) parse(body []byte) (map[string]verifier.Key, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrMalformed)
	}
	keys := make(map[string]verifier.Key, len(doc.Keys))
	for _, raw := range doc.Keys {
		k, ok := s.usable(raw)
		if !ok {
			continue
		}
		if _, dup := keys[k.KID]; dup {
			return nil, fmt.Errorf("%w: duplicate kid %q", ErrMalformed, k.KID)
		}
		keys[k.KID] = k
	}
	return keys, nil
}

func (s *RemoteSet) usable(raw []byte) (verifier.Key, bool) {
	jk, err := jwk.ParseKey(raw)
	if err != nil {
		return verifier.Key{}, false
	}
	kid, ok := jk.KeyID()
	if !ok || kid == "" {
		return verifier.Key{}, false
	}
	if use, ok := jk.KeyUsage(); ok && use != string(jwk.ForSignature) {
		return verifier.Key{}, false
	}
	if ops, ok := jk.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return verifier.Key{}, false
	}
	a, ok := jk.Algorithm()
	if !ok || !slices.Contains(s.algs, a.String()) {
		return verifier.Key{}, false
	}
	alg, ok := jose.Lookup(a.String())
	if !ok {
		return verifier.Key{}, false
	}
	if priv, err := jwk.IsPrivateKey(jk); err != nil || priv {
		return verifier.Key{}, false
	}
	var pub any
	if err := jwk.Export(jk, &pub); err != nil {
		return verifier.Key{}, false
	}
	if err := alg.CheckKey(pub); err != nil {
		return verifier.Key{}, false
	}
	if rk, ok := pub.(*rsa.PublicKey); ok && jose.CheckImportedRSA(rk) != nil {
		return verifier.Key{}, false
	}
	return verifier.Key{KID: kid, Algorithm: alg.Name, Public: pub}, true
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
