package signer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

var t0 = time.Unix(1_700_000_000, 0).UTC()

type activeKeys struct {
	signers []signer.Signer // handed out in turn, the last one repeatedly
	err     error
	calls   int
}

func (a *activeKeys) Signer(context.Context, string) (signer.Signer, error) {
	if a.err != nil {
		return nil, a.err
	}
	s := a.signers[min(a.calls, len(a.signers)-1)]
	a.calls++
	return s, nil
}

// horizonSigner has a verification horizon.
type horizonSigner struct {
	signer.Signer
	until time.Time
}

func (h horizonSigner) VerifiableUntil() time.Time { return h.until }

// rotatedSigner fails as a Signer whose key was rotated away mid-flight.
type rotatedSigner struct{ signer.Signer }

func (rotatedSigner) Sign(context.Context, []byte) ([]byte, error) {
	return nil, signer.ErrKeyNotActive
}

type recorder struct {
	kid, jti string
	exp      time.Time
	err      error
}

func (r *recorder) Issued(_ context.Context, kid, jti string, exp time.Time) error {
	r.kid, r.jti, r.exp = kid, jti, exp
	return r.err
}

func newSigner(t *testing.T, kid, alg string) signer.Signer {
	t.Helper()
	p, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := p.Generate(context.Background(), kid, alg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func config() signer.IssuerConfig {
	return signer.IssuerConfig{
		Set: "access", Issuer: "https://issuer.test", Audience: []string{"api"},
		DefaultLifetime: 10 * time.Minute, MaxLifetime: time.Hour,
		Now: func() time.Time { return t0.Add(400 * time.Millisecond) },
	}
}

func claims() tokenkms.Claims {
	return tokenkms.Claims{Subject: "user-7", ClientID: "client-1"}
}

// decode splits a token and decodes its header and claims, checking the
// signature with s.
func decode(t *testing.T, s signer.Signer, tok string) (jose.Header, tokenkms.Claims) {
	t.Helper()
	parts, err := jose.SplitCompact([]byte(tok))
	if err != nil {
		t.Fatalf("SplitCompact: %v", err)
	}
	hj, err := jose.AppendDecode(nil, parts.Header)
	if err != nil {
		t.Fatal(err)
	}
	h, err := jose.ParseHeader(string(hj))
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	pj, err := jose.AppendDecode(nil, parts.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var c tokenkms.Claims
	if err := jose.DecodeClaims(string(pj), &c); err != nil {
		t.Fatalf("DecodeClaims: %v", err)
	}
	sig, err := jose.AppendDecode(nil, parts.Signature)
	if err != nil {
		t.Fatal(err)
	}
	alg, _ := jose.Lookup(h.Alg)
	if err := alg.Verify(s.Public(), parts.SigningInput, sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	return h, c
}

func TestIssue(t *testing.T) {
	s := newSigner(t, "kid-1", "ES256")
	tests := []struct {
		name   string
		signer signer.Signer
		in     func(*tokenkms.Claims)
		want   func(*tokenkms.Claims)
	}{
		{name: "defaults", want: func(c *tokenkms.Claims) {}},
		{name: "caller values kept", in: func(c *tokenkms.Claims) {
			c.Issuer = "https://issuer.test"
			c.Audience = []string{"a", "b"}
			c.ID = "my-jti"
			c.IssuedAt = t0.Add(-time.Minute)
			c.NotBefore = t0.Add(time.Minute)
			c.ExpiresAt = t0.Add(59 * time.Minute)
			c.Scope = []string{"orders:read", "x!#[]~"}
			c.PrincipalType = "service"
			c.Extra = map[string]any{"tenant": "acme", "n": 2.0}
		}, want: func(c *tokenkms.Claims) {}},
		{name: "exp at max lifetime", in: func(c *tokenkms.Claims) { c.ExpiresAt = t0.Add(time.Hour) }, want: func(c *tokenkms.Claims) {}},
		{name: "default exp capped to horizon", signer: horizonSigner{s, t0.Add(5*time.Minute + 700*time.Millisecond)},
			want: func(c *tokenkms.Claims) { c.ExpiresAt = t0.Add(5 * time.Minute) }},
		{name: "horizon further than exp", signer: horizonSigner{s, t0.Add(time.Hour)}, want: func(c *tokenkms.Claims) {}},
		{name: "zero horizon", signer: horizonSigner{s, time.Time{}}, want: func(c *tokenkms.Claims) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sg := tt.signer
			if sg == nil {
				sg = s
			}
			rec := &recorder{}
			cfg := config()
			cfg.Recorder = rec
			is, err := signer.NewIssuer(&activeKeys{signers: []signer.Signer{sg}}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := claims()
			if tt.in != nil {
				tt.in(&in)
			}
			tok, err := is.Issue(context.Background(), in)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			h, got := decode(t, s, tok)
			if want := (jose.Header{Alg: "ES256", KID: "kid-1", Typ: "at+jwt"}); h != want {
				t.Errorf("header = %+v, want %+v", h, want)
			}
			want := in
			want.Issuer = "https://issuer.test"
			if want.Audience == nil {
				want.Audience = []string{"api"}
			}
			if want.IssuedAt.IsZero() {
				want.IssuedAt = t0
			}
			if want.NotBefore.IsZero() {
				want.NotBefore = t0
			}
			if want.ExpiresAt.IsZero() {
				want.ExpiresAt = want.IssuedAt.Add(10 * time.Minute)
			}
			if want.ID == "" {
				want.ID = got.ID
				if b, err := jose.AppendDecode(nil, []byte(got.ID)); err != nil || len(b) != 16 {
					t.Errorf("jti %q is not 128 bits of base64url (%v)", got.ID, err)
				}
			}
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if rec.kid != "kid-1" || rec.jti != got.ID || !rec.exp.Equal(got.ExpiresAt) {
				t.Errorf("recorder got (%s, %s, %v), want (kid-1, %s, %v)", rec.kid, rec.jti, rec.exp, got.ID, got.ExpiresAt)
			}
		})
	}
}

func TestIssueJTIsDiffer(t *testing.T) {
	s := newSigner(t, "kid-1", "EdDSA")
	is, err := signer.NewIssuer(&activeKeys{signers: []signer.Signer{s}}, config())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 50 {
		tok, err := is.Issue(context.Background(), claims())
		if err != nil {
			t.Fatal(err)
		}
		_, c := decode(t, s, tok)
		if seen[c.ID] {
			t.Fatalf("jti %q issued twice", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestIssueRefuses(t *testing.T) {
	s := newSigner(t, "kid-1", "ES256")
	errNoKey := errors.New("keyring: no active key")
	tests := []struct {
		name string
		keys *activeKeys
		rec  signer.IssuedTokens
		in   func(*tokenkms.Claims)
		want error
	}{
		{name: "exp beyond max lifetime", in: func(c *tokenkms.Claims) { c.ExpiresAt = t0.Add(time.Hour + time.Second) }, want: signer.ErrClaims},
		{name: "exp beyond max lifetime from an old iat", in: func(c *tokenkms.Claims) {
			c.IssuedAt = t0.Add(-time.Hour)
			c.ExpiresAt = t0.Add(time.Second)
		}, want: signer.ErrClaims},
		{name: "exp before iat", in: func(c *tokenkms.Claims) { c.ExpiresAt = t0.Add(-time.Second) }, want: signer.ErrClaims},
		{name: "exp not after nbf", in: func(c *tokenkms.Claims) {
			c.NotBefore = t0.Add(time.Minute)
			c.ExpiresAt = t0.Add(time.Minute)
		}, want: signer.ErrClaims},
		{name: "iat in the future", in: func(c *tokenkms.Claims) { c.IssuedAt = t0.Add(time.Minute) }, want: signer.ErrClaims},
		{name: "registered name in Extra", in: func(c *tokenkms.Claims) { c.Extra = map[string]any{"exp": 1} }, want: signer.ErrClaims},
		{name: "client_id in Extra", in: func(c *tokenkms.Claims) { c.Extra = map[string]any{"client_id": "x"} }, want: signer.ErrClaims},
		{name: "Extra not encodable", in: func(c *tokenkms.Claims) { c.Extra = map[string]any{"f": func() {}} }, want: signer.ErrClaims},
		{name: "no sub", in: func(c *tokenkms.Claims) { c.Subject = "" }, want: signer.ErrClaims},
		{name: "no client_id", in: func(c *tokenkms.Claims) { c.ClientID = "" }, want: signer.ErrClaims},
		{name: "foreign iss", in: func(c *tokenkms.Claims) { c.Issuer = "https://evil.test" }, want: signer.ErrClaims},
		{name: "empty audience entry", in: func(c *tokenkms.Claims) { c.Audience = []string{"a", ""} }, want: signer.ErrClaims},
		{name: "scope with a space", in: func(c *tokenkms.Claims) { c.Scope = []string{"a b"} }, want: signer.ErrClaims},
		{name: "scope with a quote", in: func(c *tokenkms.Claims) { c.Scope = []string{`a"`} }, want: signer.ErrClaims},
		{name: "scope with a backslash", in: func(c *tokenkms.Claims) { c.Scope = []string{`a\`} }, want: signer.ErrClaims},
		{name: "empty scope", in: func(c *tokenkms.Claims) { c.Scope = []string{""} }, want: signer.ErrClaims},
		{name: "sub not UTF-8", in: func(c *tokenkms.Claims) { c.Subject = "\xff" }, want: signer.ErrClaims},
		{name: "caller exp beyond horizon", keys: &activeKeys{signers: []signer.Signer{horizonSigner{s, t0.Add(5 * time.Minute)}}},
			in: func(c *tokenkms.Claims) { c.ExpiresAt = t0.Add(6 * time.Minute) }, want: signer.ErrClaims},
		{name: "horizon passed", keys: &activeKeys{signers: []signer.Signer{horizonSigner{s, t0}}}, want: signer.ErrClaims},
		{name: "no active key", keys: &activeKeys{err: errNoKey}, want: errNoKey},
		{name: "recorder fails", rec: &recorder{err: errNoKey}, want: errNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := tt.keys
			if keys == nil {
				keys = &activeKeys{signers: []signer.Signer{s}}
			}
			cfg := config()
			cfg.Recorder = tt.rec
			is, err := signer.NewIssuer(keys, cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := claims()
			if tt.in != nil {
				tt.in(&in)
			}
			tok, err := is.Issue(context.Background(), in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Issue error = %v, want %v", err, tt.want)
			}
			if tok != "" {
				t.Errorf("Issue returned a token with an error")
			}
		})
	}
}

// TestIssueFollowsRotations: Issue moves to the current Active key as
// many times as the set rotates under it, waiting when the keys hand out
// the same stopped key again, until it signs; and only its context's end
// stops it.
func TestIssueFollowsRotations(t *testing.T) {
	fresh := newSigner(t, "kid-new", "ES256")
	var chain []signer.Signer
	for i := range 5 {
		chain = append(chain, rotatedSigner{newSigner(t, fmt.Sprintf("kid-%d", i), "ES256")})
	}
	stale := rotatedSigner{newSigner(t, "kid-stale", "ES256")}
	for _, tc := range []struct {
		name    string
		signers []signer.Signer
	}{
		{name: "rotated once", signers: []signer.Signer{chain[0], fresh}},
		{name: "rotated five times in a row", signers: append(append([]signer.Signer(nil), chain...), fresh)},
		{name: "the same stopped key handed out again", signers: []signer.Signer{stale, stale, stale, fresh}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is, err := signer.NewIssuer(&activeKeys{signers: tc.signers}, config())
			if err != nil {
				t.Fatal(err)
			}
			tok, err := is.Issue(context.Background(), claims())
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if h, _ := decode(t, fresh, tok); h.KID != "kid-new" {
				t.Errorf("kid = %q, want kid-new", h.KID)
			}
		})
	}
	t.Run("never signs: until the context ends", func(t *testing.T) {
		is, err := signer.NewIssuer(&activeKeys{signers: []signer.Signer{stale}}, config())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		tok, err := is.Issue(ctx, claims())
		if tok != "" || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, signer.ErrKeyNotActive) {
			t.Errorf("Issue = %q, %v; want no token, %v and %v", tok, err, context.DeadlineExceeded, signer.ErrKeyNotActive)
		}
	})
}

// limitedKeys is an ActiveKeys that knows its sets' limits.
type limitedKeys struct {
	activeKeys
	max map[string]time.Duration
}

var errUnknownSet = errors.New("test: unknown set")

func (l *limitedKeys) MaxTokenLifetime(set string) (time.Duration, error) {
	if d, ok := l.max[set]; ok {
		return d, nil
	}
	return 0, errUnknownSet
}

// TestNewIssuerSetLimits: with keys that know their sets, NewIssuer
// refuses an unknown set and lifetimes above the set's, and takes the
// lifetimes from the set by default.
func TestNewIssuerSetLimits(t *testing.T) {
	keys := &limitedKeys{max: map[string]time.Duration{"access": time.Hour}}
	for _, tc := range []struct {
		name  string
		cfg   func(*signer.IssuerConfig)
		want  error
		field string
	}{
		{name: "unknown set", cfg: func(c *signer.IssuerConfig) { c.Set = "nope" }, want: errUnknownSet, field: `Set "nope"`},
		{name: "max lifetime above the set's", cfg: func(c *signer.IssuerConfig) { c.MaxLifetime = 12 * time.Hour }, want: signer.ErrConfig, field: "MaxTokenLifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			tc.cfg(&cfg)
			is, err := signer.NewIssuer(keys, cfg)
			if !errors.Is(err, signer.ErrConfig) || !errors.Is(err, tc.want) || is != nil {
				t.Fatalf("NewIssuer = %v, %v; want nil and %v, %v", is, err, signer.ErrConfig, tc.want)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("NewIssuer error = %q, want it to name %s", err, tc.field)
			}
		})
	}
	t.Run("lifetimes from the set", func(t *testing.T) {
		cfg := config()
		cfg.MaxLifetime, cfg.DefaultLifetime = 0, 0
		keys.signers = []signer.Signer{newSigner(t, "kid-1", "ES256")}
		is, err := signer.NewIssuer(keys, cfg)
		if err != nil {
			t.Fatalf("NewIssuer: %v", err)
		}
		tok, err := is.Issue(context.Background(), claims())
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		_, c := decode(t, keys.signers[0], tok)
		if got := c.ExpiresAt.Sub(c.IssuedAt); got != time.Hour {
			t.Errorf("exp − iat = %v, want the set's MaxTokenLifetime %v", got, time.Hour)
		}
		c2 := claims()
		c2.ExpiresAt = t0.Add(time.Hour + time.Second)
		if _, err := is.Issue(context.Background(), c2); !errors.Is(err, signer.ErrClaims) {
			t.Errorf("Issue with exp past the set's limit = %v, want %v", err, signer.ErrClaims)
		}
	})
}

func TestNewIssuerConfig(t *testing.T) {
	tests := []struct {
		name  string
		nokey bool
		cfg   func(*signer.IssuerConfig)
		field string
	}{
		{name: "nil keys", nokey: true, field: "ActiveKeys"},
		{name: "no set", cfg: func(c *signer.IssuerConfig) { c.Set = "" }, field: "Set"},
		{name: "no issuer", cfg: func(c *signer.IssuerConfig) { c.Issuer = "" }, field: "Issuer"},
		{name: "no max lifetime", cfg: func(c *signer.IssuerConfig) { c.MaxLifetime = 0 }, field: "MaxLifetime"},
		{name: "negative default lifetime", cfg: func(c *signer.IssuerConfig) { c.DefaultLifetime = -time.Second }, field: "DefaultLifetime"},
		{name: "no audience", cfg: func(c *signer.IssuerConfig) { c.Audience = nil }, field: "Audience"},
		{name: "default over max", cfg: func(c *signer.IssuerConfig) { c.DefaultLifetime = 2 * time.Hour }, field: "DefaultLifetime"},
		{name: "empty audience", cfg: func(c *signer.IssuerConfig) { c.Audience = []string{""} }, field: "Audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			var keys signer.ActiveKeys = &activeKeys{}
			if tt.nokey {
				keys = nil
			}
			is, err := signer.NewIssuer(keys, cfg)
			if !errors.Is(err, signer.ErrConfig) || is != nil {
				t.Fatalf("NewIssuer = %v, %v; want nil and ErrConfig", is, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("NewIssuer error = %q, want it to name %s", err, tt.field)
			}
		})
	}
}
