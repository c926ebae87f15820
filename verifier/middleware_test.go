package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/verifier"
)

func TestMiddleware(t *testing.T) {
	f := newFixture(t, "ES256")
	es := testSigner(t, "ES256")
	good := f.issue(t, es, baseClaims())
	noWrite := baseClaims()
	noWrite.Scope = []string{"orders:read"}
	readOnly := f.issue(t, es, noWrite)
	expired := craft(t, es, hdr(es), claimsJSON(map[string]string{"exp": fmt.Sprint(t0.Add(-time.Hour).Unix()), "iat": fmt.Sprint(t0.Add(-2 * time.Hour).Unix()), "nbf": ""}))

	tests := []struct {
		name       string
		policy     func(*verifier.Policy)
		opts       []verifier.MiddlewareOption
		route      []string // RequireScopes on the route
		auth       []string // Authorization header values
		keyErr     error    // the key source fails with it
		revocation verifier.RevocationList
		wantStatus int
		wantChall  string
		wantRetry  string // Retry-After
		wantReason error  // given to the error hook; nil: hook not called
	}{
		{name: "valid", auth: []string{"Bearer " + good}, wantStatus: http.StatusOK},
		{name: "scheme in lower case", auth: []string{"bearer " + good}, wantStatus: http.StatusOK},
		{name: "no header", wantStatus: http.StatusUnauthorized, wantChall: `Bearer`, wantReason: errAny},
		{name: "basic scheme", auth: []string{"Basic dXNlcjpwYXNz"}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer`, wantReason: errAny},
		{name: "realm", opts: []verifier.MiddlewareOption{verifier.WithRealm("orders")}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer realm="orders"`, wantReason: errAny},
		{name: "realm with a quote refuses every request", opts: []verifier.MiddlewareOption{verifier.WithRealm(`a"b`)}, auth: []string{"Bearer " + good}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer error="invalid_token"`, wantReason: verifier.ErrPolicy},
		{name: "empty bearer", auth: []string{"Bearer"}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer error="invalid_token"`, wantReason: verifier.ErrMalformed},
		{name: "two headers", auth: []string{"Bearer " + good, "Bearer " + good}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer error="invalid_token"`, wantReason: verifier.ErrMalformed},
		{name: "garbage", auth: []string{"Bearer abc"}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer error="invalid_token"`, wantReason: verifier.ErrMalformed},
		{name: "expired", auth: []string{"Bearer " + expired}, opts: []verifier.MiddlewareOption{verifier.WithRealm("orders")}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer realm="orders", error="invalid_token"`, wantReason: verifier.ErrExpired},
		{name: "policy scope", policy: func(p *verifier.Policy) { p.RequiredScopes = []string{"orders:write"} }, auth: []string{"Bearer " + readOnly}, wantStatus: http.StatusForbidden, wantChall: `Bearer error="insufficient_scope", scope="orders:write"`, wantReason: verifier.ErrScope},
		{name: "middleware scope", opts: []verifier.MiddlewareOption{verifier.WithRequiredScopes("orders:write")}, auth: []string{"Bearer " + readOnly}, wantStatus: http.StatusForbidden, wantChall: `Bearer error="insufficient_scope", scope="orders:write"`, wantReason: verifier.ErrScope},
		{name: "middleware scope granted", opts: []verifier.MiddlewareOption{verifier.WithRequiredScopes("orders:write")}, auth: []string{"Bearer " + good}, wantStatus: http.StatusOK},
		{name: "route scope", route: []string{"orders:write"}, auth: []string{"Bearer " + readOnly}, wantStatus: http.StatusForbidden, wantChall: `Bearer error="insufficient_scope", scope="orders:write"`, wantReason: verifier.ErrScope},
		{name: "route scope granted", route: []string{"orders:read"}, auth: []string{"Bearer " + readOnly}, wantStatus: http.StatusOK},
		{name: "key source outage", auth: []string{"Bearer " + good}, keyErr: errors.New("connection refused"), opts: []verifier.MiddlewareOption{verifier.WithRealm("orders")}, wantStatus: http.StatusServiceUnavailable, wantRetry: "10", wantReason: verifier.ErrKeySource},
		{name: "revocation outage", auth: []string{"Bearer " + good}, revocation: failingList{}, wantStatus: http.StatusServiceUnavailable, wantRetry: "10", wantReason: verifier.ErrRevocationCheck},
		{name: "retry after, rounded up", auth: []string{"Bearer " + good}, revocation: failingList{}, opts: []verifier.MiddlewareOption{verifier.WithRetryAfter(1500 * time.Millisecond)}, wantStatus: http.StatusServiceUnavailable, wantRetry: "2", wantReason: verifier.ErrRevocationCheck},
		{name: "retry after, at least 1 s", auth: []string{"Bearer " + good}, revocation: failingList{}, opts: []verifier.MiddlewareOption{verifier.WithRetryAfter(0)}, wantStatus: http.StatusServiceUnavailable, wantRetry: "1", wantReason: verifier.ErrRevocationCheck},
		{name: "revoked is no outage", auth: []string{"Bearer " + good}, revocation: revokeAll{}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer error="invalid_token"`, wantReason: verifier.ErrRevoked},
		{name: "unusable kid is no outage", auth: []string{"Bearer " + good}, keyErr: fmt.Errorf("%w: use not sig", verifier.ErrKeyUnusable), wantStatus: http.StatusUnauthorized, wantChall: `Bearer error="invalid_token"`, wantReason: verifier.ErrKeyUnusable},
		{name: "unknown kid is no outage", auth: []string{"Bearer " + good}, keyErr: fmt.Errorf("gone: %w", verifier.ErrUnknownKID), wantStatus: http.StatusUnauthorized, wantChall: `Bearer error="invalid_token"`, wantReason: verifier.ErrUnknownKID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			if tt.keyErr != nil {
				f.src.errs[es.KID()] = tt.keyErr
				t.Cleanup(func() { delete(f.src.errs, es.KID()) })
			}
			var vopts []verifier.Option
			if tt.revocation != nil {
				vopts = append(vopts, verifier.WithRevocationList(tt.revocation))
			}
			v := f.verifier(t, p, vopts...)
			var reason error
			opts := append([]verifier.MiddlewareOption{verifier.WithErrorHook(func(_ *http.Request, err error) { reason = err })}, tt.opts...)
			var final http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, ok := verifier.ClaimsFromContext(r.Context())
				if !ok {
					t.Errorf("ClaimsFromContext: no claims in the handler")
					return
				}
				io.WriteString(w, "hello "+c.Subject)
			})
			if tt.route != nil {
				final = verifier.RequireScopes(tt.route...)(final)
			}
			srv := httptest.NewServer(verifier.Middleware(v, opts...)(final))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantChall {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChall)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			switch {
			case tt.wantStatus == http.StatusOK:
				if got, want := string(body), "hello user-7"; got != want {
					t.Errorf("body = %q, want %q", got, want)
				}
			default:
				if got, want := string(body), http.StatusText(tt.wantStatus)+"\n"; got != want {
					t.Errorf("body = %q, want %q (no detail)", got, want)
				}
				if got := resp.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", got)
				}
			}
			switch {
			case tt.wantReason == nil && reason != nil:
				t.Errorf("error hook called with %v, want no call", reason)
			case tt.wantReason == errAny && reason == nil:
				t.Errorf("error hook not called")
			case tt.wantReason != nil && tt.wantReason != errAny && !errors.Is(reason, tt.wantReason):
				t.Errorf("error hook reason = %v, want %v", reason, tt.wantReason)
			}
		})
	}
}

// errAny stands for "the hook is called, with any reason".
var errAny = errors.New("any reason")

// revokeAll is a RevocationList that revokes every token.
type revokeAll struct{ verifier.RevocationList }

func (revokeAll) Revoked(context.Context, string, string, time.Time) (bool, error) { return true, nil }

// TestMiddlewareErrorBody: every status the middleware answers, with RFC
// 9457 problem details as the body, and the headers unchanged.
func TestMiddlewareErrorBody(t *testing.T) {
	f := newFixture(t, "ES256")
	es := testSigner(t, "ES256")
	good := f.issue(t, es, baseClaims())
	tests := []struct {
		name       string
		auth       string
		revocation verifier.RevocationList
		route      string
		want       verifier.Refusal
		wantChall  string
	}{
		{name: "401 no token", want: verifier.Refusal{Status: 401}, wantChall: `Bearer realm="orders"`},
		{name: "401 invalid_token", auth: "Bearer x.y.z", want: verifier.Refusal{Status: 401, Error: "invalid_token"}, wantChall: `Bearer realm="orders", error="invalid_token"`},
		{name: "403 insufficient_scope", auth: "Bearer " + good, route: "orders:admin", want: verifier.Refusal{Status: 403, Error: "insufficient_scope", Scopes: []string{"orders:admin"}}, wantChall: `Bearer realm="orders", error="insufficient_scope", scope="orders:admin"`},
		{name: "503 outage", auth: "Bearer " + good, revocation: failingList{}, want: verifier.Refusal{Status: 503}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vopts []verifier.Option
			if tt.revocation != nil {
				vopts = append(vopts, verifier.WithRevocationList(tt.revocation))
			}
			v := f.verifier(t, basePolicy(), vopts...)
			var seen verifier.Refusal
			body := func(r *http.Request, rf verifier.Refusal) (string, []byte) {
				seen = rf
				return verifier.ProblemDetails(r, rf)
			}
			var h http.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler reached") })
			if tt.route != "" {
				h = verifier.RequireScopes(tt.route)(h)
			}
			h = verifier.Middleware(v, verifier.WithRealm("orders"), verifier.WithErrorBody(body))(h)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want.Status {
				t.Errorf("status = %d, want %d", rec.Code, tt.want.Status)
			}
			if diff := cmp.Diff(tt.want, seen, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Refusal given to the body writer (-want +got):\n%s", diff)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", got)
			}
			wantBody := fmt.Sprintf(`{"type":"about:blank","title":%q,"status":%d}`, http.StatusText(tt.want.Status), tt.want.Status)
			if got := rec.Body.String(); got != wantBody {
				t.Errorf("body = %s, want %s", got, wantBody)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantChall {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChall)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}
}

func TestRequireScopesWithoutMiddleware(t *testing.T) {
	h := verifier.RequireScopes("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("handler reached without verified claims")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", rec.Code)
	}
}

func TestMiddlewareNilVerifier(t *testing.T) {
	h := verifier.Middleware(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("handler reached with a nil Verifier")
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer x.y.z")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("status = %d, challenge %q; want 401 invalid_token", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

// TestContextWithClaims: claims put in a context by ContextWithClaims are
// what ClaimsFromContext returns and what RequireScopes checks, as if
// Middleware had verified them; nil claims are no claims.
func TestContextWithClaims(t *testing.T) {
	tests := []struct {
		name       string
		claims     *tokenkms.Claims
		route      []string
		wantStatus int
		wantChall  string
	}{
		{name: "scope granted", claims: &tokenkms.Claims{Subject: "alice", Scope: []string{"orders:read"}}, route: []string{"orders:read"}, wantStatus: http.StatusOK},
		{name: "scope missing", claims: &tokenkms.Claims{Subject: "alice", Scope: []string{"orders:read"}}, route: []string{"orders:write"}, wantStatus: http.StatusForbidden, wantChall: `Bearer error="insufficient_scope", scope="orders:write"`},
		{name: "nil claims", route: []string{"orders:read"}, wantStatus: http.StatusUnauthorized, wantChall: `Bearer`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *tokenkms.Claims
			h := verifier.RequireScopes(tc.route...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = verifier.ClaimsFromContext(r.Context())
			}))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			h.ServeHTTP(rec, req.WithContext(verifier.ContextWithClaims(req.Context(), tc.claims)))
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if chall := rec.Header().Get("WWW-Authenticate"); chall != tc.wantChall {
				t.Errorf("challenge = %q, want %q", chall, tc.wantChall)
			}
			if tc.wantStatus == http.StatusOK && got != tc.claims {
				t.Errorf("ClaimsFromContext = %v, want the claims given to ContextWithClaims", got)
			}
		})
	}
	if c, ok := verifier.ClaimsFromContext(verifier.ContextWithClaims(context.Background(), nil)); ok || c != nil {
		t.Errorf("ClaimsFromContext(nil claims) = %v, %t; want nil, false", c, ok)
	}
}
