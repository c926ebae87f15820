package jwks

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/verifier"
)

// MediaType is the Content-Type of a JWK set (RFC 7517 §8.5.1).
const MediaType = "application/jwk-set+json"

// DefaultMaxAge is the Cache-Control max-age the handler sends unless
// WithMaxAge or the KeySource says otherwise. The keyring's
// pre-publication delay and grace period must cover it (DESIGN.md, timing
// rules).
const DefaultMaxAge = 5 * time.Minute

// MaxAger is implemented by a KeySource whose policy fixes the JWKS
// max-age (*keyring.Keyring: the largest JWKSMaxAge of its signing sets,
// which their timing rules were checked against). NewHandler uses it
// unless WithMaxAge is given.
type MaxAger interface {
	JWKSMaxAge() time.Duration
}

// KeySource lists the public keys to publish. *keyring.Keyring implements
// it with the Pending, Active and Retiring signing keys of its sets.
type KeySource interface {
	PublicKeys(ctx context.Context) ([]verifier.Key, error)
}

// Option configures NewHandler.
type Option func(*handler)

// WithMaxAge sets the Cache-Control max-age, rounded down to whole seconds;
// a negative d counts as 0.
func WithMaxAge(d time.Duration) Option {
	return func(h *handler) { h.maxAge = max(d, 0) }
}

// WithErrorHandler gives f the error behind every 500 answer (a failing
// KeySource or a refused key), for the host's logs. The error never holds
// key material. f may be called concurrently.
func WithErrorHandler(f func(r *http.Request, err error)) Option {
	return func(h *handler) { h.onError = f }
}

// WithSets publishes only the keys of the named key sets. A remote
// verifier (RemoteSet) trusts every key its URL serves, so serve each
// API's trusted sets at their own URL, as an in-process verifier names
// them in verifier.Policy.KeySets. A name no key carries publishes
// nothing from it.
func WithSets(sets ...string) Option {
	sets = slices.Clone(sets)
	return func(h *handler) { h.sets = sets }
}

type handler struct {
	src          KeySource
	sets         []string // publish only these sets' keys; nil: all
	maxAge       time.Duration
	cacheControl string // from maxAge, once the options are applied
	onError      func(*http.Request, error)
	cache        atomic.Pointer[encoded]
}

// encoded is a JWK set ready to serve and the keys it was built from.
type encoded struct {
	keys []verifier.Key
	body []byte
	etag string
}

// NewHandler returns an http.Handler that serves the keys of src as a JWK
// set (RFC 7517): Content-Type application/jwk-set+json, Cache-Control
// "public, max-age=N, must-revalidate", a strong ETag (the quoted hex
// SHA-256 of the body) and 304 Not Modified for a matching If-None-Match.
// It answers GET and HEAD; other methods get 405 with an Allow header.
//
// Each JWK holds the public key, kid, alg and "use":"sig", nothing else:
// a private key given by mistake makes the handler answer 500 rather than
// publish it, as do a failing src and every other refused key. Keys are
// ordered by kid. The encoded set is cached and rebuilt only when the key
// list changes.
func NewHandler(src KeySource, opts ...Option) http.Handler {
	h := &handler{src: src, maxAge: DefaultMaxAge}
	if m, ok := src.(MaxAger); ok {
		h.maxAge = max(m.JWKSMaxAge(), 0)
	}
	for _, o := range opts {
		o(h)
	}
	h.cacheControl = fmt.Sprintf("public, max-age=%d, must-revalidate", int64(h.maxAge/time.Second))
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	enc, err := h.current(r.Context())
	if err != nil {
		writeInternalError(w, r, h.onError, err)
		return
	}
	writeDocument(w, r, h.cacheControl, enc.etag, MediaType, enc.body)
}

// writeInternalError tells onError (if any) why r failed and answers 500
// without saying why.
func writeInternalError(w http.ResponseWriter, r *http.Request, onError func(*http.Request, error), err error) {
	if onError != nil {
		onError(r, err)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// writeDocument answers r with a cacheable document: 304 when r's
// If-None-Match names etag, else 200 with body (no body for HEAD).
func writeDocument(w http.ResponseWriter, r *http.Request, cacheControl, etag, mediaType string, body []byte) {
	hdr := w.Header()
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("ETag", etag)
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", mediaType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// current returns the encoded set of the keys src gives now, from the
// cache when the list has not changed.
func (h *handler) current(ctx context.Context) (*encoded, error) {
	if h.src == nil {
		return nil, fmt.Errorf("jwks: handler without a key source")
	}
	keys, err := h.src.PublicKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("jwks: key source: %w", err)
	}
	keys = slices.Clone(keys)
	if h.sets != nil {
		keys = slices.DeleteFunc(keys, func(k verifier.Key) bool { return !slices.Contains(h.sets, k.Set) })
	}
	slices.SortFunc(keys, func(a, b verifier.Key) int { return cmp.Compare(a.KID, b.KID) })
	if c := h.cache.Load(); c != nil && sameKeys(c.keys, keys) {
		return c, nil
	}
	enc, err := encode(keys)
	if err != nil {
		return nil, err
	}
	h.cache.Store(enc)
	return enc, nil
}

// sameKeys reports whether a and b list the same kids, algorithms and
// public keys in the same order.
func sameKeys(a, b []verifier.Key) bool {
	return slices.EqualFunc(a, b, func(x, y verifier.Key) bool {
		eq, ok := x.Public.(interface{ Equal(crypto.PublicKey) bool })
		return x.KID == y.KID && x.Algorithm == y.Algorithm && ok && eq.Equal(y.Public)
	})
}

// encode builds the JWK set of keys, sorted by kid.
func encode(keys []verifier.Key) (*encoded, error) {
	set := jwk.NewSet()
	for i, k := range keys {
		if k.KID == "" {
			return nil, fmt.Errorf("%w: key without kid", ErrKey)
		}
		if i > 0 && keys[i-1].KID == k.KID {
			return nil, fmt.Errorf("%w: duplicate kid %q", ErrKey, k.KID)
		}
		jk, err := publicJWK(k)
		if err != nil {
			return nil, err
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("jwks: kid %q: %w", k.KID, err)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwks: encode set: %w", err)
	}
	sum := sha256.Sum256(body)
	return &encoded{keys: keys, body: body, etag: `"` + hex.EncodeToString(sum[:]) + `"`}, nil
}

// publicJWK converts one verification key to a JWK with kid, alg and use.
func publicJWK(k verifier.Key) (jwk.Key, error) {
	switch k.Public.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey, crypto.Signer, crypto.Decrypter, []byte:
		return nil, fmt.Errorf("%w: %w: kid %q holds %T", ErrKey, ErrPrivateKey, k.KID, k.Public)
	default:
		return nil, fmt.Errorf("%w: kid %q: unsupported key type %T", ErrKey, k.KID, k.Public)
	}
	alg, ok := jose.Lookup(k.Algorithm)
	if !ok {
		return nil, fmt.Errorf("%w: kid %q: algorithm %q", ErrKey, k.KID, k.Algorithm)
	}
	if err := alg.CheckKey(k.Public); err != nil {
		return nil, fmt.Errorf("%w: kid %q: %w", ErrKey, k.KID, err)
	}
	jk, err := jwk.Import(k.Public)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: %w", ErrKey, k.KID, err)
	}
	for _, f := range []struct {
		name string
		v    any
	}{{jwk.KeyIDKey, k.KID}, {jwk.AlgorithmKey, alg.Name}, {jwk.KeyUsageKey, jwk.ForSignature}} {
		if err := jk.Set(f.name, f.v); err != nil {
			return nil, fmt.Errorf("%w: kid %q: set %s: %w", ErrKey, k.KID, f.name, err)
		}
	}
	return jk, nil
}

// etagMatches applies If-None-Match (RFC 9110 §13.1.2): "*" or any listed
// entity tag equal to etag under weak comparison.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}
