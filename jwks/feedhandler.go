package jwks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// Defaults of a revocation handler.
const (
	// DefaultFeedRefresh is how old a document the handler serves may be
	// before it signs it again, and its Cache-Control max-age.
	DefaultFeedRefresh = time.Second
	// DefaultFeedMaxWait caps the wait of a long-poll.
	DefaultFeedMaxWait = 30 * time.Second
	// DefaultFeedSignTimeout bounds each signature of a document.
	DefaultFeedSignTimeout = 10 * time.Second
)

// maxCachedDocs bounds the documents the handler keeps for the current
// head, one per cursor its clients are at.
const maxCachedDocs = 1024

// RevocationLog is the change log a revocation handler publishes.
// *verifier.MemoryRevocationList made by verifier.NewLoggedRevocationList
// implements it, and so does *pgstore.RevocationCache with
// CacheConfig.Log; both answer verifier.ErrNotLogged otherwise, which
// NewRevocationHandler refuses.
type RevocationLog interface {
	Cursor() (epoch, head uint64, err error)
	Since(epoch, cursor uint64) (verifier.RevocationChanges, error)
	Wait(ctx context.Context, epoch, cursor uint64) error
}

// RevocationHandlerConfig configures NewRevocationHandler.
type RevocationHandlerConfig struct {
	Log  RevocationLog     // the issuer's revocations; required
	Keys signer.ActiveKeys // signs the documents (*keyring.Keyring); required
	Set  string            // the key set whose Active key signs; required
	// Issuer is stated in every document ("iss"); a client configured
	// with an Issuer refuses documents that state another.
	Issuer string
	// Refresh is how old a document may be before it is signed again,
	// and the Cache-Control max-age (default DefaultFeedRefresh). Clients
	// measure their freshness from the signing time, so this is also what
	// a cache in front adds to their staleness.
	Refresh time.Duration
	// MaxWait caps a long-poll's wait (default DefaultFeedMaxWait).
	MaxWait time.Duration
	// SignTimeout bounds each signature (default DefaultFeedSignTimeout).
	SignTimeout time.Duration
	// OnError receives the error behind every 500 answer. It never holds
	// a jti or key material.
	OnError func(r *http.Request, err error)
	// Now is the clock of the signing times; default time.Now.
	Now func() time.Time
}

type revocationHandler struct {
	cfg          RevocationHandlerConfig
	cacheControl string

	mu   sync.Mutex // one document built and signed at a time
	docs map[docKey]*servedDoc
}

type docKey struct {
	epoch, from, to uint64
}

// servedDoc is a document ready to serve.
type servedDoc struct {
	p      *payload
	body   []byte // JWS, '\n', payload
	etag   string
	signed time.Time
}

// NewRevocationHandler returns an http.Handler that publishes the
// revocations of cfg.Log as signed documents (see the package doc, Revocation
// feed). GET with no query answers the full content; "cursor" (the
// client's last position, "EPOCH.SEQ") asks for the changes since it;
// "wait" (whole seconds, at most MaxWait) makes a request at the head wait
// for the next change, or answer a fresh empty document when the wait
// ends. Answers carry a strong ETag and honour If-None-Match. It fails
// with ErrOption if cfg is incomplete or out of range.
func NewRevocationHandler(cfg RevocationHandlerConfig) (http.Handler, error) {
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultFeedRefresh
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultFeedMaxWait
	}
	if cfg.SignTimeout == 0 {
		cfg.SignTimeout = DefaultFeedSignTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Log == nil:
		return nil, fmt.Errorf("%w: revocation handler without a Log", ErrOption)
	case cfg.Keys == nil || cfg.Set == "":
		return nil, fmt.Errorf("%w: revocation handler without Keys and Set to sign with", ErrOption)
	case cfg.Refresh < time.Second || cfg.MaxWait < 0 || cfg.SignTimeout < 0:
		return nil, fmt.Errorf("%w: Refresh under 1s, or a negative MaxWait or SignTimeout", ErrOption)
	}
	if _, _, err := cfg.Log.Cursor(); errors.Is(err, verifier.ErrNotLogged) {
		return nil, fmt.Errorf("%w: %w: make the issuer's list with verifier.NewLoggedRevocationList (pgstore: CacheConfig.Log)", ErrOption, err)
	}
	return &revocationHandler{
		cfg:          cfg,
		cacheControl: fmt.Sprintf("public, max-age=%d", int64(cfg.Refresh/time.Second)),
		docs:         make(map[docKey]*servedDoc),
	}, nil
}

func (h *revocationHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	cur, err := parseCursor(q.Get("cursor"))
	wait := time.Duration(0)
	if s := q.Get("wait"); err == nil && s != "" {
		n, perr := strconv.ParseUint(s, 10, 16)
		if perr != nil {
			err = fmt.Errorf("%w: bad wait", ErrFeedRequest)
		}
		wait = min(time.Duration(n)*time.Second, h.cfg.MaxWait)
	}
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		h.cfg.Log.Wait(ctx, cur.epoch, cur.seq) // a timeout answers the head as it is
		cancel()
		if r.Context().Err() != nil {
			return // the client left
		}
	}
	doc, err := h.document(r.Context(), cur)
	if err != nil {
		writeInternalError(w, r, h.cfg.OnError, err)
		return
	}
	writeDocument(w, r, h.cacheControl, doc.etag, FeedMediaType, doc.body)
}

// document returns the signed document of the changes after cur, from the
// cache when one was signed less than Refresh ago. Documents are kept for
// the current head only: a request always gets the changes up to it.
func (h *revocationHandler) document(ctx context.Context, cur cursor) (*servedDoc, error) {
	c, err := h.cfg.Log.Since(cur.epoch, cur.seq)
	if err != nil {
		return nil, fmt.Errorf("jwks: revocation log: %w", err)
	}
	key := docKey{c.Epoch, c.From, c.To}
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.docs[key]
	if d != nil && now.Sub(d.signed) < h.cfg.Refresh {
		return d, nil
	}
	var p *payload
	if d != nil {
		p = d.p
	} else if p, err = encodePayload(c, now.Unix()); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, h.cfg.SignTimeout)
	defer cancel()
	jws, err := sign(sctx, h.cfg.Keys, h.cfg.Set, h.cfg.Issuer, c, p, now)
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(jws)+1+len(p.body))
	body = append(append(append(body, jws...), '\n'), p.body...)
	d = &servedDoc{p: p, body: body, signed: now,
		etag: fmt.Sprintf(`"%x.%d.%d.%d"`, c.Epoch, c.From, c.To, now.UnixMilli())}
	for k := range h.docs {
		if k.epoch != key.epoch || k.to != key.to || len(h.docs) >= maxCachedDocs {
			delete(h.docs, k)
		}
	}
	h.docs[key] = d
	return d, nil
}
