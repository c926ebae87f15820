package keyringtest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// TestOptions: the set policy and the issuer lifetimes given in Options
// are the ones the Fixture runs with, and their defaults are the ones
// Options documents.
func TestOptions(t *testing.T) {
	tests := []struct {
		name         string
		opts         keyringtest.Options
		wantSet      string
		wantAlg      string
		wantRotation time.Duration
		wantLifetime time.Duration // exp − iat of a token without exp
		wantMax      time.Duration // the longest exp − iat the issuer accepts
	}{
		{name: "defaults", wantSet: "access-tokens", wantAlg: "ES256", wantRotation: keyring.MaxSigningRotation, wantLifetime: 30 * time.Minute, wantMax: time.Hour},
		{name: "set and algorithm", opts: keyringtest.Options{Set: "s", Algorithm: "EdDSA"}, wantSet: "s", wantAlg: "EdDSA", wantRotation: keyring.MaxSigningRotation, wantLifetime: 30 * time.Minute, wantMax: time.Hour},
		{
			name:    "set policy",
			opts:    keyringtest.Options{SetPolicy: keyring.SetPolicy{Name: "p", Algorithm: "ES384", RotationPeriod: 30 * keyring.Day, MaxTokenLifetime: 20 * time.Minute}},
			wantSet: "p", wantAlg: "ES384", wantRotation: 30 * keyring.Day, wantLifetime: 10 * time.Minute, wantMax: 20 * time.Minute,
		},
		{
			name:    "set policy and the same set name",
			opts:    keyringtest.Options{Set: "p", SetPolicy: keyring.SetPolicy{Name: "p"}},
			wantSet: "p", wantAlg: "ES256", wantRotation: keyring.MaxSigningRotation, wantLifetime: 30 * time.Minute, wantMax: time.Hour,
		},
		{name: "issuer lifetimes", opts: keyringtest.Options{DefaultLifetime: 2 * time.Minute, MaxLifetime: 10 * time.Minute}, wantSet: "access-tokens", wantAlg: "ES256", wantRotation: keyring.MaxSigningRotation, wantLifetime: 2 * time.Minute, wantMax: 10 * time.Minute},
		{name: "max lifetime under the default", opts: keyringtest.Options{MaxLifetime: 5 * time.Minute}, wantSet: "access-tokens", wantAlg: "ES256", wantRotation: keyring.MaxSigningRotation, wantLifetime: 5 * time.Minute, wantMax: 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := keyringtest.NewT(t, tc.opts)
			if f.Set != tc.wantSet {
				t.Errorf("Set = %q, want %q", f.Set, tc.wantSet)
			}
			pol, err := f.Ring.Policy(tc.wantSet)
			if err != nil {
				t.Fatalf("Policy(%q): %v", tc.wantSet, err)
			}
			if pol.Algorithm != tc.wantAlg || pol.RotationPeriod != tc.wantRotation || pol.Owner != "test-owner" {
				t.Errorf("policy = %s, %v, owner %q; want %s, %v, owner test-owner", pol.Algorithm, pol.RotationPeriod, pol.Owner, tc.wantAlg, tc.wantRotation)
			}
			c := verified(t, f, tokenkms.Claims{Subject: "alice", ClientID: "web"})
			if got := c.ExpiresAt.Sub(c.IssuedAt); got != tc.wantLifetime {
				t.Errorf("exp − iat = %v, want %v", got, tc.wantLifetime)
			}
			if _, err := f.TokenFor(tokenkms.Claims{Subject: "alice", ClientID: "web", ExpiresAt: keyringtest.Start.Add(tc.wantMax)}); err != nil {
				t.Errorf("token of the maximum lifetime %v: %v", tc.wantMax, err)
			}
			if _, err := f.TokenFor(tokenkms.Claims{Subject: "alice", ClientID: "web", ExpiresAt: keyringtest.Start.Add(tc.wantMax + time.Second)}); !errors.Is(err, signer.ErrClaims) {
				t.Errorf("token beyond the maximum lifetime = %v, want signer.ErrClaims", err)
			}
		})
	}
}

// TestOptionsRefused: Options that contradict themselves, or that the
// keyring or the issuer refuse, fail New with the specific error.
func TestOptionsRefused(t *testing.T) {
	tests := []struct {
		name string
		opts keyringtest.Options
		want error
	}{
		{name: "two set names", opts: keyringtest.Options{Set: "a", SetPolicy: keyring.SetPolicy{Name: "b"}}, want: keyringtest.ErrOptions},
		{name: "two algorithms", opts: keyringtest.Options{Algorithm: "ES256", SetPolicy: keyring.SetPolicy{Algorithm: "EdDSA"}}, want: keyringtest.ErrOptions},
		{name: "rotation period over 90 days", opts: keyringtest.Options{SetPolicy: keyring.SetPolicy{RotationPeriod: 91 * keyring.Day}}, want: keyring.ErrPolicy},
		{name: "max lifetime over the set's", opts: keyringtest.Options{MaxLifetime: 2 * time.Hour}, want: keyringtest.ErrOptions},
		{name: "default lifetime over the maximum", opts: keyringtest.Options{DefaultLifetime: time.Hour, MaxLifetime: time.Minute}, want: signer.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := keyringtest.New(tc.opts)
			if !errors.Is(err, tc.want) || f != nil {
				t.Errorf("New = %v, %v; want nil, %v", f, err, tc.want)
			}
		})
	}
}

// fatalTB records a Fatalf instead of stopping the goroutine.
type fatalTB struct {
	testing.TB
	fatal string
}

func (tb *fatalTB) Helper() {}
func (tb *fatalTB) Fatalf(format string, args ...any) {
	tb.fatal = fmt.Sprintf(format, args...)
}

// TestNewTFails: NewT reports New's error through t.Fatalf.
func TestNewTFails(t *testing.T) {
	tb := &fatalTB{TB: t}
	if f := keyringtest.NewT(tb, keyringtest.Options{Set: "a", SetPolicy: keyring.SetPolicy{Name: "b"}}); f != nil {
		t.Errorf("NewT(bad options) = %v, want nil", f)
	}
	if tb.fatal == "" {
		t.Errorf("NewT(bad options) did not fail the test")
	}
}

// TestTokenFor: a token carries the claims given, client and principal
// type included; claims the Issuer refuses are refused.
func TestTokenFor(t *testing.T) {
	f := keyringtest.NewT(t, keyringtest.Options{})
	want := tokenkms.Claims{
		Subject: "svc-billing", ClientID: "billing", PrincipalType: "service",
		Scope: []string{"invoices:write"}, Extra: map[string]any{"tenant": "acme"},
	}
	c := verified(t, f, want)
	if c.Subject != want.Subject || c.ClientID != want.ClientID || c.PrincipalType != want.PrincipalType ||
		!c.HasScope("invoices:write") || c.Extra["tenant"] != "acme" {
		t.Errorf("claims = %+v, want those of %+v", c, want)
	}
	if _, err := f.TokenFor(tokenkms.Claims{Subject: "alice", ClientID: "web", Scope: []string{"two words"}}); !errors.Is(err, signer.ErrClaims) {
		t.Errorf("TokenFor(bad scope) = %v, want signer.ErrClaims", err)
	}
}

// TestContext: a handler given Fixture.Context finds the verified claims
// there, and RequireScopes checks them as behind the middleware.
func TestContext(t *testing.T) {
	f := keyringtest.NewT(t, keyringtest.Options{})
	ctx, err := f.Context(tokenkms.Claims{Subject: "alice", ClientID: "web", PrincipalType: "user", Scope: []string{"orders:read"}})
	if err != nil {
		t.Fatalf("Context: %v", err)
	}
	c, ok := verifier.ClaimsFromContext(ctx)
	if !ok || c.Subject != "alice" || c.Issuer != "https://core.test" || !c.HasAudience("api") || c.ID == "" {
		t.Fatalf("ClaimsFromContext = %+v, %t; want alice's verified claims", c, ok)
	}
	for _, route := range []struct {
		scope string
		want  int
	}{{"orders:read", http.StatusOK}, {"orders:write", http.StatusForbidden}} {
		h := verifier.RequireScopes(route.scope)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		if rec.Code != route.want {
			t.Errorf("RequireScopes(%s): status %d, want %d", route.scope, rec.Code, route.want)
		}
	}
	if _, err := f.Context(tokenkms.Claims{Subject: "alice", ClientID: "web", Extra: map[string]any{"exp": 1}}); !errors.Is(err, signer.ErrClaims) {
		t.Errorf("Context(registered name in Extra) = %v, want signer.ErrClaims", err)
	}
}

// verified issues a token from c and returns its verified claims.
func verified(t *testing.T, f *keyringtest.Fixture, c tokenkms.Claims) *tokenkms.Claims {
	t.Helper()
	tok, err := f.TokenFor(c)
	if err != nil {
		t.Fatalf("TokenFor: %v", err)
	}
	got, err := f.Verifier.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return got
}
