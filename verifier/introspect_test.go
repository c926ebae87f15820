package verifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms/verifier"
)

// rfc7662Caller authenticates the callers of RFC 7662's examples: the
// client s6BhdRkqt3 with HTTP Basic (§2.1, first example) and a resource
// server with a bearer token (§2.1, second example).
func rfc7662Caller(r *http.Request) error {
	if id, secret, ok := r.BasicAuth(); ok && id == "s6BhdRkqt3" && secret == "gX1fBat3bV" {
		return nil
	}
	if r.Header.Get("Authorization") == "Bearer 23410913-abewfq.123483" {
		return nil
	}
	return errors.New("unknown caller")
}

// introspect posts form to the handler as RFC 7662 §2.1 shows, with the
// Authorization header auth, and returns the status, headers and body.
func introspect(t *testing.T, h http.Handler, auth, form string) (int, http.Header, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/introspect", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
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
	return resp.StatusCode, resp.Header, string(body)
}

func introspectionHandler(t *testing.T, v *verifier.Verifier, hook func(*http.Request, error)) http.Handler {
	t.Helper()
	h, err := verifier.NewIntrospectionHandler(v, rfc7662Caller, verifier.WithIntrospectionErrorHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestIntrospectionRFC7662Examples replays the requests of RFC 7662 §2.1
// and checks the answers against the responses of §2.2.
func TestIntrospectionRFC7662Examples(t *testing.T) {
	f := newFixture(t, "ES256")
	es := testSigner(t, "ES256")
	f.now = time.Unix(1419350238+60, 0)
	// The claims of the active response of RFC 7662 §2.2, as a token.
	tok := craft(t, es, hdr(es), `{"iss":"https://server.example.com/","sub":"Z5O3upPC88QrAjx00dis",`+
		`"aud":"https://protected.example.net/resource","exp":1419356238,"iat":1419350238,"jti":"tok-1",`+
		`"client_id":"l238j323ds-23ij4","username":"jdoe","scope":"read write dolphin"}`)
	v := f.verifier(t, verifier.Policy{Issuer: "https://server.example.com/", Audience: []string{"https://protected.example.net/resource"}})
	h := introspectionHandler(t, v, nil)

	status, hd, body := introspect(t, h, "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW", "token="+url.QueryEscape(tok)+"&token_type_hint=access_token")
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", status, body)
	}
	var want, got map[string]any
	rfc := `{
      "active": true,
      "client_id": "l238j323ds-23ij4",
      "username": "jdoe",
      "scope": "read write dolphin",
      "sub": "Z5O3upPC88QrAjx00dis",
      "aud": "https://protected.example.net/resource",
      "iss": "https://server.example.com/",
      "exp": 1419356238,
      "iat": 1419350238,
      "extension_field": "twenty-seven"
     }`
	if err := json.Unmarshal([]byte(rfc), &want); err != nil {
		t.Fatal(err)
	}
	delete(want, "extension_field") // not a claim of our token
	want["token_type"], want["jti"] = "Bearer", "tok-1"
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("active response (-want +got):\n%s", diff)
	}
	if hd.Get("Content-Type") != "application/json" || hd.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: Content-Type %q, Cache-Control %q; want application/json, no-store", hd.Get("Content-Type"), hd.Get("Cache-Control"))
	}

	for _, tc := range []struct{ name, auth, form string }{
		{"first example, its opaque token", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW", "token=mF_9.B5f-4.1JqM&token_type_hint=access_token"},
		{"second example", "Bearer 23410913-abewfq.123483", "token=2YotnFZFEjr1zCsicMWpAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := introspect(t, h, tc.auth, tc.form)
			if status != http.StatusOK || body != `{"active":false}` {
				t.Errorf("got %d %s, want 200 {\"active\":false} (RFC 7662 §2.2)", status, body)
			}
		})
	}
}

// TestIntrospectionInactive: every token the Verifier refuses answers
// {"active":false} and nothing else; the reason goes to the hook only.
func TestIntrospectionInactive(t *testing.T) {
	f := newFixture(t, "ES256")
	es := testSigner(t, "ES256")
	good := f.issue(t, es, baseClaims())
	revoked := craft(t, es, hdr(es), claimsJSON(map[string]string{"jti": `"revoked-1"`}))
	if err := f.revs.RevokeJTI(context.Background(), "revoked-1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	other := testSigner(t, "ES384")
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", craft(t, es, hdr(es), claimsJSON(map[string]string{"exp": fmt.Sprint(t0.Add(-time.Hour).Unix()), "iat": fmt.Sprint(t0.Add(-2 * time.Hour).Unix()), "nbf": ""})), verifier.ErrExpired},
		{"revoked", revoked, verifier.ErrRevoked},
		{"wrong audience", craft(t, es, hdr(es), claimsJSON(map[string]string{"aud": `"api://other"`})), verifier.ErrAudience},
		{"wrong issuer", craft(t, es, hdr(es), claimsJSON(map[string]string{"iss": `"https://evil.test"`})), verifier.ErrIssuer},
		{"bad signature", good[:len(good)-4] + "AAAA", verifier.ErrSignature},
		{"unknown kid", craft(t, other, hdr(other), claimsJSON(nil)), verifier.ErrUnknownKID},
		{"garbage", "not-a-token", verifier.ErrMalformed},
		{"too large", strings.Repeat("a", 10<<10), verifier.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reason error
			h := introspectionHandler(t, f.verifier(t, basePolicy()), func(_ *http.Request, err error) { reason = err })
			status, hd, body := introspect(t, h, "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW", "token="+url.QueryEscape(tc.token))
			if status != http.StatusOK || body != `{"active":false}` {
				t.Errorf("got %d %s, want 200 {\"active\":false}", status, body)
			}
			if hd.Get("Cache-Control") != "no-store" || hd.Get("WWW-Authenticate") != "" || hd.Get("Retry-After") != "" {
				t.Errorf("headers %v: want no-store and nothing else of note", hd)
			}
			if !errors.Is(reason, tc.want) {
				t.Errorf("hook reason = %v, want %v", reason, tc.want)
			}
		})
	}
}

func TestIntrospectionRefusals(t *testing.T) {
	f := newFixture(t, "ES256")
	es := testSigner(t, "ES256")
	good := f.issue(t, es, baseClaims())
	basic := "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"
	tests := []struct {
		name       string
		method     string
		ctype      string
		auth       string
		form       string
		query      string
		revocation verifier.RevocationList
		wantStatus int
		wantBody   string
		wantHeader [2]string // a header and its value
		wantReason error
	}{
		{name: "no credentials", auth: "", form: "token=" + good, wantStatus: 401, wantBody: `{"error":"invalid_client"}`, wantHeader: [2]string{"WWW-Authenticate", "Basic"}, wantReason: errAny},
		{name: "wrong password", auth: "Basic czZCaGRSa3F0Mzp3cm9uZw==", form: "token=" + good, wantStatus: 401, wantBody: `{"error":"invalid_client"}`, wantHeader: [2]string{"WWW-Authenticate", "Basic"}, wantReason: errAny},
		{name: "unknown bearer", auth: "Bearer nope", form: "token=" + good, wantStatus: 401, wantBody: `{"error":"invalid_client"}`, wantHeader: [2]string{"WWW-Authenticate", "Bearer"}, wantReason: errAny},
		{name: "GET", method: http.MethodGet, auth: basic, wantStatus: 405, wantBody: `{"error":"invalid_request"}`, wantHeader: [2]string{"Allow", "POST"}, wantReason: errAny},
		{name: "JSON body", ctype: "application/json", auth: basic, form: `{"token":"x"}`, wantStatus: 400, wantBody: `{"error":"invalid_request"}`, wantReason: errAny},
		{name: "no token", auth: basic, form: "token_type_hint=access_token", wantStatus: 400, wantBody: `{"error":"invalid_request"}`, wantReason: errAny},
		{name: "token in the URL only", auth: basic, query: "?token=" + good, wantStatus: 400, wantBody: `{"error":"invalid_request"}`, wantReason: errAny},
		{name: "token twice", auth: basic, form: "token=" + good + "&token=" + good, wantStatus: 400, wantBody: `{"error":"invalid_request"}`, wantReason: errAny},
		{name: "body over the limit", auth: basic, form: "token=" + strings.Repeat("a", 300<<10), wantStatus: 400, wantBody: `{"error":"invalid_request"}`, wantReason: errAny},
		{name: "revocation list down", auth: basic, form: "token=" + good, revocation: failingList{}, wantStatus: 503, wantBody: `{"error":"temporarily_unavailable"}`, wantHeader: [2]string{"Retry-After", "10"}, wantReason: verifier.ErrRevocationCheck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []verifier.Option
			if tc.revocation != nil {
				opts = append(opts, verifier.WithRevocationList(tc.revocation))
			}
			var reason error
			h := introspectionHandler(t, f.verifier(t, basePolicy(), opts...), func(_ *http.Request, err error) { reason = err })
			method, ctype := tc.method, tc.ctype
			if method == "" {
				method = http.MethodPost
			}
			if ctype == "" {
				ctype = "application/x-www-form-urlencoded"
			}
			req := httptest.NewRequest(method, "/introspect"+tc.query, strings.NewReader(tc.form))
			req.Header.Set("Content-Type", ctype)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody {
				t.Errorf("got %d %s, want %d %s", rec.Code, rec.Body.String(), tc.wantStatus, tc.wantBody)
			}
			if tc.wantHeader[0] != "" && rec.Header().Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Errorf("%s = %q, want %q", tc.wantHeader[0], rec.Header().Get(tc.wantHeader[0]), tc.wantHeader[1])
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", rec.Header().Get("Cache-Control"))
			}
			switch {
			case tc.wantReason == errAny && reason == nil:
				t.Errorf("hook not called")
			case tc.wantReason != errAny && !errors.Is(reason, tc.wantReason):
				t.Errorf("hook reason = %v, want %v", reason, tc.wantReason)
			}
		})
	}
}

// TestIntrospectionCallerBeforeToken: a refused caller learns nothing, and
// its token is not even verified.
func TestIntrospectionCallerBeforeToken(t *testing.T) {
	f := newFixture(t, "ES256")
	counting := &countingSource{KeySource: f.src}
	v, err := verifier.New(counting, basePolicy(), verifier.WithRevocationList(f.revs), verifier.WithNow(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	h := introspectionHandler(t, v, nil)
	good := f.issue(t, testSigner(t, "ES256"), baseClaims())
	if status, _, _ := introspect(t, h, "Basic bm9ib2R5Om5vdGhpbmc=", "token="+good); status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", status)
	}
	if counting.calls != 0 {
		t.Errorf("key lookups for a refused caller: %d, want 0", counting.calls)
	}
}

// countingSource counts VerificationKey calls.
type countingSource struct {
	verifier.KeySource
	calls int
}

func (c *countingSource) VerificationKey(ctx context.Context, kid string) (verifier.Key, error) {
	c.calls++
	return c.KeySource.VerificationKey(ctx, kid)
}

func TestNewIntrospectionHandlerRefuses(t *testing.T) {
	v := newFixture(t, "ES256").verifier(t, basePolicy())
	tests := []struct {
		name string
		v    *verifier.Verifier
		auth func(*http.Request) error
		opts []verifier.IntrospectionOption
	}{
		{"nil Verifier", nil, rfc7662Caller, nil},
		{"no caller check", v, nil, nil},
		{"nil option", v, rfc7662Caller, []verifier.IntrospectionOption{nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verifier.NewIntrospectionHandler(tc.v, tc.auth, tc.opts...); !errors.Is(err, verifier.ErrPolicy) {
				t.Errorf("got %v, want ErrPolicy", err)
			}
		})
	}
}
