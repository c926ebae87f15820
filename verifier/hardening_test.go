package verifier_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/verifier"
)

// TestLoneSurrogateRefused: a claim holding a lone UTF-16 surrogate escape,
// anywhere in the claims set, is malformed (it used to decode as U+FFFD).
func TestLoneSurrogateRefused(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	v := f.verifier(t, basePolicy())
	tests := []struct {
		name  string
		extra string
	}{
		{name: "high", extra: `"note":"\ud800"`},
		{name: "low", extra: `"note":"a\udc00b"`},
		{name: "high then letter", extra: `"note":"\ud83dA"`},
		{name: "in an array", extra: `"roles":["admin","\ud800"]`},
		{name: "in a nested name", extra: `"ctx":{"\udfff":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := craft(t, s, hdr(s), claimsJSON(nil, tt.extra))
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrMalformed) {
				t.Errorf("Verify with %s: error = %v, want ErrMalformed", tt.extra, err)
			}
		})
	}
	t.Run("pair accepted", func(t *testing.T) {
		tok := craft(t, s, hdr(s), claimsJSON(nil, `"note":"\ud83d\ude00"`))
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify with a surrogate pair: %v", err)
		}
		if got, want := c.Extra["note"], "\U0001F600"; got != want {
			t.Errorf("note = %q, want %q", got, want)
		}
	})
}

// TestRealmRefused: a realm that could break out of the WWW-Authenticate
// header or its quoted string is refused when the middleware is built, and
// the middleware built anyway refuses every request instead of serving
// without it.
func TestRealmRefused(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	v := f.verifier(t, basePolicy())
	good := f.issue(t, s, baseClaims())
	tests := []struct {
		name  string
		realm string
	}{
		{name: "CRLF", realm: "orders\r\nSet-Cookie: a=b"},
		{name: "LF", realm: "orders\nX: y"},
		{name: "CR", realm: "orders\r"},
		{name: "quote", realm: `orders", error="none`},
		{name: "backslash", realm: `orders\`},
		{name: "NUL", realm: "orders\x00"},
		{name: "DEL", realm: "orders\x7f"},
		{name: "non-ASCII", realm: "ordérs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verifier.NewMiddleware(v, verifier.WithRealm(tt.realm)); !errors.Is(err, verifier.ErrPolicy) {
				t.Errorf("NewMiddleware(WithRealm(%q)) error = %v, want ErrPolicy", tt.realm, err)
			}
			var reason error
			h := verifier.Middleware(v, verifier.WithRealm(tt.realm), verifier.WithErrorHook(func(_ *http.Request, err error) { reason = err }))(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Errorf("handler reached with realm %q", tt.realm) }))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer "+good)
			h.ServeHTTP(rec, req)
			if ch := rec.Header().Get("WWW-Authenticate"); rec.Code != http.StatusUnauthorized || strings.Contains(ch, "realm") {
				t.Errorf("status %d, challenge %q; want 401 without the realm", rec.Code, ch)
			}
			if !errors.Is(reason, verifier.ErrPolicy) {
				t.Errorf("hook reason = %v, want ErrPolicy", reason)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		mw, err := verifier.NewMiddleware(v, verifier.WithRealm("orders api"))
		if err != nil {
			t.Fatalf("NewMiddleware: %v", err)
		}
		rec := httptest.NewRecorder()
		mw(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer realm="orders api"`; got != want {
			t.Errorf("challenge = %q, want %q", got, want)
		}
	})
	t.Run("nil verifier", func(t *testing.T) {
		if _, err := verifier.NewMiddleware(nil); !errors.Is(err, verifier.ErrPolicy) {
			t.Errorf("NewMiddleware(nil) error = %v, want ErrPolicy", err)
		}
	})
}
