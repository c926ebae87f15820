package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
)

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

// WithRealm adds realm="..." to every challenge. The realm is printable
// ASCII without '"' or '\' (no CR, LF or other control character, so it
// cannot break out of the header); NewMiddleware refuses any other.
func WithRealm(realm string) MiddlewareOption {
	return func(m *middleware) {
		for i := 0; i < len(realm); i++ {
			if c := realm[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				m.err = fmt.Errorf("%w: WithRealm: byte %#02x at %d; want printable ASCII without '\"' or '\\'", ErrPolicy, c, i)
				return
			}
		}
		m.realm = realm
	}
}

// WithRequiredScopes requires every scope listed, on top of the Policy's
// RequiredScopes, for every route behind the middleware; a token without
// one gets 403 insufficient_scope. A scope that is not an RFC 6749 scope
// token can never be granted (so every request is refused) and is left
// out of the challenge.
func WithRequiredScopes(scopes ...string) MiddlewareOption {
	return func(m *middleware) { m.scopes = append(m.scopes, scopes...) }
}

// WithErrorHook calls onError with the request and the reason of every
// refusal (a Verify error, or ErrScope for a missing route scope), for
// server-side logs. The reason never reaches the client.
func WithErrorHook(onError func(r *http.Request, err error)) MiddlewareOption {
	return func(m *middleware) { m.onError = onError }
}

// DefaultRetryAfter is the Retry-After of a 503 answer unless
// WithRetryAfter says otherwise.
const DefaultRetryAfter = 10 * time.Second

// WithRetryAfter sets the Retry-After of the 503 answers to an outage,
// rounded up to whole seconds, at least 1 (default DefaultRetryAfter).
func WithRetryAfter(d time.Duration) MiddlewareOption {
	return func(m *middleware) { m.retryAfter = d }
}

// retryAfter is the Retry-After value of d: whole seconds rounded up, at
// least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64(max((d+time.Second-1)/time.Second, 1)), 10)
}

// Refusal is an answer of the middleware that does not reach the handler,
// as WithErrorBody sees it. It never says why a token failed.
type Refusal struct {
	Status int      // 401, 403 or 503
	Error  string   // RFC 6750 error code: "invalid_token", "insufficient_scope", or "" (no token; an outage)
	Scopes []string // with insufficient_scope: the scopes the request needs
}

// WithErrorBody writes the body of every refusal with body instead of the
// status text: body returns the Content-Type and the bytes, e.g.
// ProblemDetails. The status and the headers (WWW-Authenticate,
// Retry-After, Cache-Control: no-store) are the middleware's. body may be
// called concurrently.
func WithErrorBody(body func(r *http.Request, f Refusal) (contentType string, b []byte)) MiddlewareOption {
	return func(m *middleware) { m.body = body }
}

// ProblemDetails is a WithErrorBody writer of RFC 9457 problem details:
// {"type":"about:blank","title":<status text>,"status":<status>}, as
// application/problem+json. Nothing in it says why the token failed.
func ProblemDetails(_ *http.Request, f Refusal) (string, []byte) {
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}{"about:blank", http.StatusText(f.Status), f.Status})
	return "application/problem+json", b
}

type middleware struct {
	err        error // a refused option or a nil Verifier: every request is refused
	v          *Verifier
	realm      string
	scopes     []string
	onError    func(r *http.Request, err error)
	retryAfter time.Duration
	body       func(r *http.Request, f Refusal) (string, []byte)
}

type verifiedKey struct{}

// verified is what Middleware leaves in the request context: the claims,
// and itself so that RequireScopes answers with the same realm and hook.
type verified struct {
	claims *tokenkms.Claims
	m      *middleware
}

// ClaimsFromContext returns the claims of the token that Middleware
// verified for this request.
func ClaimsFromContext(ctx context.Context) (*tokenkms.Claims, bool) {
	v, ok := ctx.Value(verifiedKey{}).(*verified)
	if !ok || v.claims == nil {
		return nil, false
	}
	return v.claims, true
}

// ContextWithClaims returns a copy of ctx holding c as the verified claims
// of the request, as Middleware leaves them: ClaimsFromContext returns c
// and RequireScopes checks c's scopes (answering without realm or error
// hook). It is for handler tests, and for hosts that verify the token in
// another layer: whatever c holds is trusted as if Verify had checked it,
// so it must never come from the request itself.
func ContextWithClaims(ctx context.Context, c *tokenkms.Claims) context.Context {
	return context.WithValue(ctx, verifiedKey{}, &verified{claims: c, m: &middleware{}})
}

// Middleware verifies the bearer token of every request (RFC 6750 §2.1,
// Authorization header only) and passes the claims to next in the request
// context (ClaimsFromContext). It answers, with a body that never says why:
//   - no Authorization header, or one of another scheme: 401 with a bare
//     "WWW-Authenticate: Bearer" challenge;
//   - a token that fails Verify: 401 Bearer error="invalid_token";
//   - a token without a scope the Policy or WithRequiredScopes requires:
//     403 Bearer error="insufficient_scope", scope="...";
//   - an outage of the key source or of the revocation list (ErrKeySource,
//     ErrRevocationCheck): 503 with Retry-After and no challenge, since
//     the token may well be valid.
//
// WithErrorBody sets the body of these answers (RFC 9457 problem details
// with ProblemDetails).
//
// A nil Verifier or a refused option (see NewMiddleware, which reports
// them) makes it refuse every request with 401 invalid_token, giving the
// error hook the reason: it fails closed.
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	mw, _ := NewMiddleware(v, opts...)
	return mw
}

// NewMiddleware is Middleware that also reports a nil Verifier or a refused
// option (an invalid WithRealm) with an error wrapping ErrPolicy. The
// middleware it returns then refuses every request, as Middleware's does.
func NewMiddleware(v *Verifier, opts ...MiddlewareOption) (func(http.Handler) http.Handler, error) {
	m := &middleware{v: v, retryAfter: DefaultRetryAfter}
	if v == nil {
		m.err = errNoVerifier
	}
	for _, o := range opts {
		if o != nil {
			o(m)
		}
	}
	m.scopes = slices.Clone(m.scopes)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if m.err != nil {
				m.refuse(w, r, http.StatusUnauthorized, "invalid_token", nil, m.err)
				return
			}
			token, ok := bearer(r)
			if !ok {
				m.refuse(w, r, http.StatusUnauthorized, "", nil, errNoToken)
				return
			}
			c, err := m.v.Verify(r.Context(), token)
			switch {
			case errors.Is(err, ErrKeySource), errors.Is(err, ErrRevocationCheck):
				m.refuse(w, r, http.StatusServiceUnavailable, "", nil, err)
				return
			case errors.Is(err, ErrScope):
				m.refuse(w, r, http.StatusForbidden, "insufficient_scope", m.neededScopes(), err)
				return
			case err != nil:
				m.refuse(w, r, http.StatusUnauthorized, "invalid_token", nil, err)
				return
			}
			if missing := firstMissing(c, m.scopes); missing != "" {
				m.refuse(w, r, http.StatusForbidden, "insufficient_scope", m.neededScopes(), scopeError(missing))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verifiedKey{}, &verified{claims: c, m: m})))
		})
	}, m.err
}

// RequireScopes is a per-route middleware, placed behind Middleware: it
// answers 403 insufficient_scope (with Middleware's realm and error hook)
// unless the request's token grants every scope listed. A request that did
// not pass Middleware gets 401.
func RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	scopes = slices.Clone(scopes)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, ok := r.Context().Value(verifiedKey{}).(*verified)
			if !ok || v.claims == nil {
				(&middleware{}).refuse(w, r, http.StatusUnauthorized, "", nil, errNoToken)
				return
			}
			if missing := firstMissing(v.claims, scopes); missing != "" {
				v.m.refuse(w, r, http.StatusForbidden, "insufficient_scope", scopes, scopeError(missing))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Reasons given to the error hook for refusals that Verify did not make.
var (
	errNoToken    = errors.New("verifier: no bearer token in the request")
	errNoVerifier = fmt.Errorf("%w: Middleware has a nil Verifier", ErrPolicy)
)

func scopeError(missing string) error {
	return &scopeMissing{scope: missing}
}

// scopeMissing is the hook's reason for a route scope the token lacks.
type scopeMissing struct{ scope string }

func (e *scopeMissing) Error() string { return ErrScope.Error() + ": route requires " + e.scope }
func (e *scopeMissing) Unwrap() error { return ErrScope }

func firstMissing(c *tokenkms.Claims, scopes []string) string {
	for _, s := range scopes {
		if !c.HasScope(s) {
			return s
		}
	}
	return ""
}

// neededScopes lists the scopes a request needs: the Policy's and the
// middleware's.
func (m *middleware) neededScopes() []string {
	return append(append([]string(nil), m.v.p.RequiredScopes...), m.scopes...)
}

// bearer extracts the token of a single "Authorization: Bearer <token>"
// header (scheme case-insensitive). A second Authorization header, or a
// token with spaces, gives a token Verify refuses.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", false
	}
	scheme, token, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	if len(h) > 1 {
		return "", true
	}
	return strings.TrimSpace(token), true
}

// refuse answers status: 401 and 403 with a Bearer challenge (RFC 6750
// §3), 503 with Retry-After; the body is the status text unless
// WithErrorBody says otherwise.
func (m *middleware) refuse(w http.ResponseWriter, r *http.Request, status int, code string, scopes []string, err error) {
	if m.onError != nil {
		m.onError(r, err)
	}
	scopes = slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return !jose.ValidScopeToken(s) })
	hd := w.Header()
	if status == http.StatusServiceUnavailable {
		hd.Set("Retry-After", retryAfter(m.retryAfter))
	} else {
		var b strings.Builder
		b.WriteString("Bearer")
		sep := " "
		if m.realm != "" {
			b.WriteString(` realm="` + m.realm + `"`)
			sep = ", "
		}
		if code != "" {
			b.WriteString(sep + `error="` + code + `"`)
			sep = ", "
		}
		if len(scopes) > 0 {
			b.WriteString(sep + `scope="` + strings.Join(scopes, " ") + `"`)
		}
		hd.Set("WWW-Authenticate", b.String())
	}
	ctype, body := "text/plain; charset=utf-8", []byte(http.StatusText(status)+"\n")
	if m.body != nil {
		ctype, body = m.body(r, Refusal{Status: status, Error: code, Scopes: scopes})
	}
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Type", ctype)
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}
