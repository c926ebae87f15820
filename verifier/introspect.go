package verifier

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
)

// IntrospectionOption configures NewIntrospectionHandler.
type IntrospectionOption func(*introspection)

// WithIntrospectionErrorHook calls onError with the request and the reason
// of every answer other than active: the Verify error behind
// {"active":false}, a refused caller, a malformed request, an outage. The
// reason never reaches the caller.
func WithIntrospectionErrorHook(onError func(r *http.Request, err error)) IntrospectionOption {
	return func(h *introspection) { h.onError = onError }
}

// Reasons given to the introspection error hook for refusals that Verify
// did not make.
var (
	errIntrospectionMethod  = errors.New("verifier: introspection: method other than POST")
	errIntrospectionRequest = errors.New("verifier: introspection: malformed request")
	errIntrospectionCaller  = errors.New("verifier: introspection: caller not authenticated")
)

// maxIntrospectionBody bounds the form of an introspection request: the
// largest token a Policy accepts, its encoding and a few parameters.
const maxIntrospectionBody = 4*MaxMaxTokenSize + 4<<10

type introspection struct {
	v            *Verifier
	authenticate func(r *http.Request) error
	onError      func(r *http.Request, err error)
}

// NewIntrospectionHandler answers OAuth 2.0 token introspection (RFC 7662)
// from v: whether an access token is active, that is, passes every check of
// v's Policy (signature, key state, expiry, issuer, audience, revocation
// of its jti and kid...), and if so its claims.
//
// A request is a POST of application/x-www-form-urlencoded with "token"
// (once) and an optional "token_type_hint" (only access tokens are known,
// so it changes nothing). authenticate is the host's check of the caller
// (RFC 7662 §2.1: the endpoint must not answer anyone): it sees the
// request, its form parsed (r.PostForm), and returns nil to let it through.
//
// The answers, all with Cache-Control: no-store:
//   - 200 {"active":true, "scope", "client_id", "username", "token_type":
//     "Bearer", "exp", "iat", "nbf", "sub", "aud", "iss", "jti"}, members
//     without a value left out; "username" is the claim of that name when
//     the token carries one as a string;
//   - 200 {"active":false} and nothing else for any token v refuses;
//   - 401 {"error":"invalid_client"} with a WWW-Authenticate challenge of
//     the scheme the caller used (Basic if none) when authenticate refuses
//     (RFC 6749 §5.2), before the token is looked at;
//   - 400 {"error":"invalid_request"} for a request that is not such a
//     form, 405 for a method other than POST;
//   - 503 {"error":"temporarily_unavailable"} with Retry-After when the key
//     source or the revocation list is down (ErrKeySource,
//     ErrRevocationCheck): "inactive" would be a claim the server cannot
//     make.
//
// v's Policy decides which tokens are active: give the endpoint a Verifier
// whose Audience lists every resource the issuer serves and which requires
// no scope, or tokens of other audiences or scopes answer inactive.
func NewIntrospectionHandler(v *Verifier, authenticate func(r *http.Request) error, opts ...IntrospectionOption) (http.Handler, error) {
	switch {
	case v == nil:
		return nil, fmt.Errorf("%w: introspection without a Verifier", ErrPolicy)
	case authenticate == nil:
		return nil, fmt.Errorf("%w: introspection without a caller check (RFC 7662 §2.1 requires one)", ErrPolicy)
	}
	h := &introspection{v: v, authenticate: authenticate}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil IntrospectionOption", ErrPolicy)
		}
		o(h)
	}
	return h, nil
}

// introspectionResponse is the JSON of an answer (RFC 7662 §2.2).
type introspectionResponse struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Nbf       int64  `json:"nbf,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       any    `json:"aud,omitempty"` // a string when there is one audience
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
}

func (h *introspection) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.answer(w, r, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"}, errIntrospectionMethod)
		return
	}
	if err := parseIntrospectionForm(w, r); err != nil {
		h.answer(w, r, http.StatusBadRequest, map[string]string{"error": "invalid_request"}, err)
		return
	}
	if err := h.authenticate(r); err != nil {
		w.Header().Set("WWW-Authenticate", authScheme(r))
		h.answer(w, r, http.StatusUnauthorized, map[string]string{"error": "invalid_client"}, fmt.Errorf("%w: %w", errIntrospectionCaller, err))
		return
	}
	tokens := r.PostForm["token"]
	if len(tokens) != 1 || tokens[0] == "" || len(r.PostForm["token_type_hint"]) > 1 {
		h.answer(w, r, http.StatusBadRequest, map[string]string{"error": "invalid_request"}, fmt.Errorf("%w: one non-empty token, at most one token_type_hint", errIntrospectionRequest))
		return
	}
	c, err := h.v.Verify(r.Context(), tokens[0])
	switch {
	case errors.Is(err, ErrKeySource), errors.Is(err, ErrRevocationCheck):
		w.Header().Set("Retry-After", retryAfter(DefaultRetryAfter))
		h.answer(w, r, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"}, err)
	case err != nil:
		h.answer(w, r, http.StatusOK, introspectionResponse{}, err)
	default:
		h.answer(w, r, http.StatusOK, activeResponse(c), nil)
	}
}

// parseIntrospectionForm reads the form of a POST body, bounded, and only
// the body: a token in the URL would be logged by every proxy.
func parseIntrospectionForm(w http.ResponseWriter, r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return fmt.Errorf("%w: Content-Type %q", errIntrospectionRequest, jose.Clip(r.Header.Get("Content-Type")))
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxIntrospectionBody)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("%w: %w", errIntrospectionRequest, err)
	}
	return nil
}

// authScheme is the challenge for a refused caller: the scheme it tried,
// else Basic (RFC 6749 §5.2).
func authScheme(r *http.Request) string {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme == "" || strings.ContainsFunc(scheme, func(c rune) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-')
	}) {
		return "Basic"
	}
	return scheme
}

func activeResponse(c *tokenkms.Claims) introspectionResponse {
	resp := introspectionResponse{
		Active:    true,
		Scope:     strings.Join(c.Scope, " "),
		ClientID:  c.ClientID,
		TokenType: "Bearer",
		Exp:       c.ExpiresAt.Unix(),
		Iat:       c.IssuedAt.Unix(),
		Sub:       c.Subject,
		Iss:       c.Issuer,
		Jti:       c.ID,
	}
	if !c.NotBefore.IsZero() {
		resp.Nbf = c.NotBefore.Unix()
	}
	if u, ok := c.Extra["username"].(string); ok {
		resp.Username = u
	}
	if len(c.Audience) == 1 {
		resp.Aud = c.Audience[0]
	} else {
		resp.Aud = c.Audience
	}
	return resp
}

func (h *introspection) answer(w http.ResponseWriter, r *http.Request, status int, body any, err error) {
	if err != nil && h.onError != nil {
		h.onError(r, err)
	}
	b, _ := json.Marshal(body) // the types above always marshal
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}
