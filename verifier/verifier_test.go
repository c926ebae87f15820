package verifier_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/verifier"
)

var allAlgs = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t, allAlgs...)
	v := f.verifier(t, basePolicy())
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			s := testSigner(t, alg)
			in := baseClaims()
			in.Extra = map[string]any{"tenant": "acme", "roles": []any{"a", "b"}, "level": 3.0}
			tok := f.issue(t, s, in)
			got, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := in
			want.Issuer = testIssuer
			want.Audience = []string{testAudience}
			want.IssuedAt, want.NotBefore, want.ExpiresAt = t0, t0, t0.Add(10*time.Minute)
			if diff := cmp.Diff(want, *got, cmpopts.IgnoreFields(tokenkms.Claims{}, "ID")); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if len(got.ID) < 22 {
				t.Errorf("jti = %q, want ≥ 128 bits in base64url", got.ID)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	ctx := context.Background()
	tests := []struct {
		name   string
		policy func(*verifier.Policy)
		token  string
		at     time.Time
	}{
		{name: "typ application/at+jwt", token: craft(t, s, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"application/at+jwt"}`, s.KID()), claimsJSON(nil))},
		{name: "typ in upper case", token: craft(t, s, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"AT+JWT"}`, s.KID()), claimsJSON(nil))},
		{name: "audience array with one match", token: craft(t, s, hdr(s), claimsJSON(map[string]string{"aud": `["other","` + testAudience + `"]`}))},
		{name: "fractional dates", token: craft(t, s, hdr(s), claimsJSON(map[string]string{"iat": fmt.Sprint(t0.Unix()) + ".25", "exp": "1.7000006e9"}))},
		{name: "no nbf", token: craft(t, s, hdr(s), claimsJSON(map[string]string{"nbf": ""}))},
		{name: "exp within leeway", token: craft(t, s, hdr(s), claimsJSON(nil)), at: t0.Add(10*time.Minute + 29*time.Second)},
		{name: "nbf within leeway", token: craft(t, s, hdr(s), claimsJSON(map[string]string{"nbf": fmt.Sprint(t0.Add(20 * time.Second).Unix())}))},
		{name: "iat within leeway", token: craft(t, s, hdr(s), claimsJSON(map[string]string{"iat": fmt.Sprint(t0.Add(20 * time.Second).Unix())}))},
		{name: "unknown header member", token: craft(t, s, hdr(s, `"x5t#S256":"abc"`, `"cty":"JWT"`), claimsJSON(nil))},
		{name: "allowed principal type and client", policy: func(p *verifier.Policy) {
			p.AllowedPrincipalTypes = []string{"service", "user"}
			p.AllowedClientIDs = []string{testClient}
			p.RequiredScopes = []string{"orders:write"}
		}, token: craft(t, s, hdr(s), claimsJSON(nil))},
		{name: "escaped claim names", token: craft(t, s, hdr(s), `{"\u0069ss":"`+testIssuer+`","sub":"u","aud":"`+testAudience+`","exp":1700000600,"iat":1700000000,"jti":"j","client_id":"c"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			f.now = t0
			if !tt.at.IsZero() {
				f.now = tt.at
			}
			if _, err := f.verifier(t, p).Verify(ctx, tt.token); err != nil {
				t.Errorf("Verify: %v, want nil", err)
			}
		})
	}
}

// TestVerifyRejects crafts one hostile or faulty token per rejection path
// and checks the specific sentinel.
func TestVerifyRejects(t *testing.T) {
	f := newFixture(t, "ES256", "ES384", "RS256", "ES512")
	es := testSigner(t, "ES256")
	es384 := testSigner(t, "ES384")
	rs := testSigner(t, "RS256")
	es512 := testSigner(t, "ES512")
	good := craft(t, es, hdr(es), claimsJSON(nil))
	gh, gp, gs := split3(good)

	// Keys the key source knows but refuses, or cannot resolve.
	f.src.errs["kid-retired"] = fmt.Errorf("source: %w", verifier.ErrKeyRetired)
	f.src.errs["kid-compromised"] = fmt.Errorf("source: %w", verifier.ErrKeyCompromised)
	f.src.errs["kid-down"] = errors.New("source: database unreachable")
	// A key whose registered algorithm differs from what the token says.
	f.src.keys["kid-es256-as-rs256"] = verifier.Key{KID: "kid-es256-as-rs256", Algorithm: "RS256", Public: es.Public()}
	// An RSA key that is too small.
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	f.src.keys["kid-small"] = verifier.Key{KID: "kid-small", Algorithm: "RS256", Public: &small.PublicKey}
	smallTok := b64(`{"alg":"RS256","kid":"kid-small","typ":"at+jwt"}`) + "." + b64(claimsJSON(nil))
	smallSig, err := rsa.SignPKCS1v15(rand.Reader, small, crypto.SHA256, sha(smallTok))
	if err != nil {
		t.Fatal(err)
	}
	smallTok += "." + string(jose.AppendEncode(nil, smallSig))

	// HS256 keyed with the public key's bytes (the classic confusion).
	pubDER, err := x509.MarshalPKIXPublicKey(es.Public())
	if err != nil {
		t.Fatal(err)
	}
	hsIn := b64(fmt.Sprintf(`{"alg":"HS256","kid":%q,"typ":"at+jwt"}`, es.KID())) + "." + b64(claimsJSON(nil))
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsIn))
	hsTok := hsIn + "." + string(jose.AppendEncode(nil, mac.Sum(nil)))

	none := func(alg string) string {
		return b64(fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt"}`, alg, es.KID())) + "." + b64(claimsJSON(nil)) + "."
	}
	withClaims := func(replace map[string]string, extra ...string) string {
		return craft(t, es, hdr(es), claimsJSON(replace, extra...))
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	tests := []struct {
		name   string
		token  string
		policy func(*verifier.Policy)
		setup  func(t *testing.T) // may revoke; undone by a fresh list
		list   verifier.RevocationList
		want   error
	}{
		// Form.
		{name: "too large", token: good, policy: func(p *verifier.Policy) { p.MaxTokenSize = len(good) - 1 }, want: verifier.ErrTooLarge},
		{name: "too large garbage is not decoded", token: strings.Repeat("{", verifier.DefaultMaxTokenSize+1), want: verifier.ErrTooLarge},
		{name: "empty", token: "", want: verifier.ErrMalformed},
		{name: "JSON serialization", token: fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, gp, gh, gs), want: verifier.ErrMalformed},
		{name: "JSON serialization flattened with signatures", token: fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, gp, gh, gs), want: verifier.ErrMalformed},
		{name: "2 segments", token: gh + "." + gp, want: verifier.ErrMalformed},
		{name: "4 segments", token: good + "." + gs, want: verifier.ErrMalformed},
		{name: "5 segments (JWE)", token: gh + ".." + gp + "." + gs + "." + gs, want: verifier.ErrMalformed},
		{name: "empty header", token: "." + gp + "." + gs, want: verifier.ErrMalformed},
		{name: "empty payload", token: gh + ".." + gs, want: verifier.ErrMalformed},
		{name: "padded header", token: padTo4(gh) + "." + gp + "." + gs, want: verifier.ErrMalformed},
		{name: "padded signature", token: gh + "." + gp + "." + gs + "==", want: verifier.ErrMalformed},
		{name: "standard base64 alphabet", token: gh + "." + gp + "." + strings.NewReplacer("-", "+", "_", "/").Replace(gs) + "+/", want: verifier.ErrMalformed},
		{name: "line break in signature", token: gh + "." + gp + "." + gs[:10] + "\n" + gs[10:], want: verifier.ErrMalformed},
		{name: "non-canonical trailing bits in signature", token: gh + "." + gp + "." + nonCanonical(gs), want: verifier.ErrMalformed},
		{name: "impossible base64 length", token: gh + "." + gp + "." + gs[:len(gs)-1], want: verifier.ErrMalformed},
		{name: "header not JSON", token: craft(t, es, `alg=ES256`, claimsJSON(nil)), want: verifier.ErrMalformed},
		{name: "header is an array", token: craft(t, es, `["ES256"]`, claimsJSON(nil)), want: verifier.ErrMalformed},
		{name: "header trailing data", token: craft(t, es, hdr(es)+`{}`, claimsJSON(nil)), want: verifier.ErrMalformed},
		{name: "header duplicate alg", token: craft(t, es, hdr(es, `"alg":"none"`), claimsJSON(nil)), want: verifier.ErrMalformed},
		{name: "header duplicate alg escaped", token: craft(t, es, hdr(es, `"al\u0067":"ES256"`), claimsJSON(nil)), want: verifier.ErrMalformed},
		{name: "header duplicate kid", token: craft(t, es, hdr(es, `"kid":"kid-RS256"`), claimsJSON(nil)), want: verifier.ErrMalformed},
		{name: "header alg not a string", token: craft(t, es, fmt.Sprintf(`{"alg":["ES256"],"kid":%q,"typ":"at+jwt"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrMalformed},
		{name: "header invalid UTF-8", token: craft(t, es, hdr(es, "\"x\":\"\xff\""), claimsJSON(nil)), want: verifier.ErrMalformed},

		// Header parameters.
		{name: "embedded jwk", token: craft(t, es, hdr(es, `"jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}`), claimsJSON(nil)), want: verifier.ErrHeaderParam},
		{name: "jku", token: craft(t, es, hdr(es, `"jku":"https://attacker.test/jwks"`), claimsJSON(nil)), want: verifier.ErrHeaderParam},
		{name: "x5u", token: craft(t, es, hdr(es, `"x5u":"https://attacker.test/cert"`), claimsJSON(nil)), want: verifier.ErrHeaderParam},
		{name: "x5c", token: craft(t, es, hdr(es, `"x5c":["MIIB"]`), claimsJSON(nil)), want: verifier.ErrHeaderParam},
		{name: "b64 false", token: craft(t, es, hdr(es, `"b64":false`), claimsJSON(nil)), want: verifier.ErrHeaderParam},
		{name: "b64 true", token: craft(t, es, hdr(es, `"b64":true`), claimsJSON(nil)), want: verifier.ErrHeaderParam},
		{name: "crit", token: craft(t, es, hdr(es, `"crit":["exp"]`, `"exp":1`), claimsJSON(nil)), want: verifier.ErrCrit},
		{name: "crit empty", token: craft(t, es, hdr(es, `"crit":[]`), claimsJSON(nil)), want: verifier.ErrCrit},

		// Algorithms.
		{name: "alg none", token: none("none"), want: verifier.ErrAlgorithm},
		{name: "alg None", token: none("None"), want: verifier.ErrAlgorithm},
		{name: "alg NONE", token: none("NONE"), want: verifier.ErrAlgorithm},
		{name: "alg nOnE", token: none("nOnE"), want: verifier.ErrAlgorithm},
		{name: "alg es256 lower case", token: craft(t, es, fmt.Sprintf(`{"alg":"es256","kid":%q,"typ":"at+jwt"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrAlgorithm},
		{name: "alg missing", token: craft(t, es, fmt.Sprintf(`{"kid":%q,"typ":"at+jwt"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrAlgorithm},
		{name: "HS256 keyed with the public key", token: hsTok, want: verifier.ErrAlgorithm},
		{name: "alg not in the policy", token: craft(t, es512, hdr(es512), claimsJSON(nil)), want: verifier.ErrAlgorithm},
		{name: "alg ES384 with the ES256 key's kid", token: craft(t, es384, fmt.Sprintf(`{"alg":"ES384","kid":%q,"typ":"at+jwt"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrAlgorithm},
		{name: "alg RS256 with kid of an ES256 key", token: craft(t, rs, fmt.Sprintf(`{"alg":"RS256","kid":%q,"typ":"at+jwt"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrAlgorithm},
		{name: "key registered as RS256 holds an EC key", token: craft(t, rs, `{"alg":"RS256","kid":"kid-es256-as-rs256","typ":"at+jwt"}`, claimsJSON(nil)), want: verifier.ErrAlgorithm},
		{name: "RSA key under 2048 bits", token: smallTok, want: verifier.ErrAlgorithm},

		// typ and kid.
		{name: "typ missing", token: craft(t, es, fmt.Sprintf(`{"alg":"ES256","kid":%q}`, es.KID()), claimsJSON(nil)), want: verifier.ErrType},
		{name: "typ JWT", token: craft(t, es, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"JWT"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrType},
		{name: "typ at+jwt with suffix", token: craft(t, es, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt; x"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrType},
		{name: "kid missing", token: craft(t, es, `{"alg":"ES256","typ":"at+jwt"}`, claimsJSON(nil)), want: verifier.ErrMissingKID},
		{name: "kid empty", token: craft(t, es, `{"alg":"ES256","kid":"","typ":"at+jwt"}`, claimsJSON(nil)), want: verifier.ErrMissingKID},
		{name: "kid unknown", token: craft(t, es, `{"alg":"ES256","kid":"kid-nobody","typ":"at+jwt"}`, claimsJSON(nil)), want: verifier.ErrUnknownKID},
		{name: "kid retired", token: craft(t, es, `{"alg":"ES256","kid":"kid-retired","typ":"at+jwt"}`, claimsJSON(nil)), want: verifier.ErrKeyRetired},
		{name: "kid compromised", token: craft(t, es, `{"alg":"ES256","kid":"kid-compromised","typ":"at+jwt"}`, claimsJSON(nil)), want: verifier.ErrKeyCompromised},
		{name: "key source down", token: craft(t, es, `{"alg":"ES256","kid":"kid-down","typ":"at+jwt"}`, claimsJSON(nil)), want: verifier.ErrKeySource},

		// Signature.
		{name: "payload changed", token: gh + "." + b64(claimsJSON(map[string]string{"sub": `"admin"`})) + "." + gs, want: verifier.ErrSignature},
		{name: "signature changed", token: gh + "." + gp + "." + flip(gs, 5), want: verifier.ErrSignature},
		{name: "signature empty", token: gh + "." + gp + ".", want: verifier.ErrSignature},
		{name: "signature truncated", token: gh + "." + gp + "." + reencode(t, gs, 63), want: verifier.ErrSignature},
		{name: "signature of r=0 s=0", token: gh + "." + gp + "." + string(jose.AppendEncode(nil, make([]byte, 64))), want: verifier.ErrSignature},
		{name: "signature by another key", token: craft(t, es384, fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, es.KID()), claimsJSON(nil)), want: verifier.ErrSignature},

		// Claims form.
		{name: "claims not JSON", token: craft(t, es, hdr(es), `not json`), want: verifier.ErrMalformed},
		{name: "claims trailing data", token: craft(t, es, hdr(es), claimsJSON(nil)+` x`), want: verifier.ErrMalformed},
		{name: "claims duplicate exp", token: withClaims(nil, `"exp":9999999999`), want: verifier.ErrMalformed},
		{name: "claims duplicate sub escaped", token: withClaims(nil, `"s\u0075b":"admin"`), want: verifier.ErrMalformed},
		{name: "claims lone surrogate", token: withClaims(map[string]string{"sub": `"\ud800"`}), want: verifier.ErrMalformed},
		{name: "claims too deep", token: withClaims(nil, `"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)), want: verifier.ErrMalformed},
		{name: "exp a string", token: withClaims(map[string]string{"exp": `"1700000600"`}), want: verifier.ErrClaimType},
		{name: "exp null", token: withClaims(map[string]string{"exp": `null`}), want: verifier.ErrClaimType},
		{name: "exp huge", token: withClaims(map[string]string{"exp": `1e400`}), want: verifier.ErrClaimType},
		{name: "exp beyond year 9999", token: withClaims(map[string]string{"exp": `1e20`}), want: verifier.ErrClaimType},
		{name: "exp negative", token: withClaims(map[string]string{"exp": `-1`}), want: verifier.ErrClaimType},
		{name: "iat a boolean", token: withClaims(map[string]string{"iat": `true`}), want: verifier.ErrClaimType},
		{name: "aud a number", token: withClaims(map[string]string{"aud": `7`}), want: verifier.ErrClaimType},
		{name: "aud array holding a number", token: withClaims(map[string]string{"aud": `["` + testAudience + `",7]`}), want: verifier.ErrClaimType},
		{name: "iss a number", token: withClaims(map[string]string{"iss": `1`}), want: verifier.ErrClaimType},
		{name: "scope an array", token: withClaims(map[string]string{"scope": `["orders:read"]`}), want: verifier.ErrClaimType},
		{name: "scope with double space", token: withClaims(map[string]string{"scope": `"orders:read  orders:write"`}), want: verifier.ErrClaimType},
		{name: "client_id an object", token: withClaims(map[string]string{"client_id": `{}`}), want: verifier.ErrClaimType},

		// Claims values.
		{name: "exp missing", token: withClaims(map[string]string{"exp": ""}), want: verifier.ErrMissingClaim},
		{name: "iat missing", token: withClaims(map[string]string{"iat": ""}), want: verifier.ErrMissingClaim},
		{name: "iss missing", token: withClaims(map[string]string{"iss": ""}), want: verifier.ErrMissingClaim},
		{name: "aud missing", token: withClaims(map[string]string{"aud": ""}), want: verifier.ErrMissingClaim},
		{name: "sub missing", token: withClaims(map[string]string{"sub": ""}), want: verifier.ErrMissingClaim},
		{name: "client_id missing", token: withClaims(map[string]string{"client_id": ""}), want: verifier.ErrMissingClaim},
		{name: "principal_type missing when required", token: withClaims(map[string]string{"principal_type": ""}), policy: func(p *verifier.Policy) { p.AllowedPrincipalTypes = []string{"user"} }, want: verifier.ErrMissingClaim},
		{name: "expired", token: withClaims(map[string]string{"exp": fmt.Sprint(t0.Add(-31 * time.Second).Unix()), "iat": fmt.Sprint(t0.Add(-time.Minute).Unix()), "nbf": ""}), want: verifier.ErrExpired},
		{name: "expired at the leeway's end", token: withClaims(map[string]string{"exp": fmt.Sprint(t0.Add(-30 * time.Second).Unix()), "iat": fmt.Sprint(t0.Add(-time.Minute).Unix()), "nbf": ""}), want: verifier.ErrExpired},
		{name: "not yet valid", token: withClaims(map[string]string{"nbf": fmt.Sprint(t0.Add(31 * time.Second).Unix())}), want: verifier.ErrNotYetValid},
		{name: "issued in the future", token: withClaims(map[string]string{"iat": fmt.Sprint(t0.Add(31 * time.Second).Unix()), "nbf": ""}), want: verifier.ErrIssuedInFuture},
		{name: "older than max age", token: withClaims(map[string]string{"iat": fmt.Sprint(t0.Add(-2 * time.Hour).Unix()), "nbf": ""}), policy: func(p *verifier.Policy) { p.MaxTokenAge = time.Hour }, want: verifier.ErrTooOld},
		{name: "lifetime over max", token: withClaims(map[string]string{"exp": fmt.Sprint(t0.Add(25 * time.Hour).Unix())}), want: verifier.ErrLifetime},
		{name: "wrong issuer", token: withClaims(map[string]string{"iss": `"https://evil.test"`}), want: verifier.ErrIssuer},
		{name: "issuer differs in case", token: withClaims(map[string]string{"iss": `"HTTPS://ISSUER.TEST"`}), want: verifier.ErrIssuer},
		{name: "wrong audience", token: withClaims(map[string]string{"aud": `"api://billing"`}), want: verifier.ErrAudience},
		{name: "empty audience array", token: withClaims(map[string]string{"aud": `[]`}), want: verifier.ErrMissingClaim},
		{name: "jti missing", token: withClaims(map[string]string{"jti": ""}), want: verifier.ErrMissingJTI},
		{name: "jti empty", token: withClaims(map[string]string{"jti": `""`}), want: verifier.ErrMissingJTI},
		{name: "jti revoked", token: good, setup: func(t *testing.T) {
			if err := f.revs.RevokeJTI(context.Background(), "jti-1", t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, want: verifier.ErrRevoked},
		{name: "kid policy revoked", token: good, setup: func(t *testing.T) {
			if err := f.revs.RevokeKID(context.Background(), es.KID(), t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}, want: verifier.ErrRevoked},
		{name: "revocation list down", token: good, list: failingList{}, want: verifier.ErrRevocationCheck},
		{name: "scope missing", token: good, policy: func(p *verifier.Policy) { p.RequiredScopes = []string{"orders:read", "orders:admin"} }, want: verifier.ErrScope},
		{name: "scope absent", token: withClaims(map[string]string{"scope": ""}), policy: func(p *verifier.Policy) { p.RequiredScopes = []string{"orders:read"} }, want: verifier.ErrScope},
		{name: "principal type refused", token: good, policy: func(p *verifier.Policy) { p.AllowedPrincipalTypes = []string{"service"} }, want: verifier.ErrPrincipalType},
		{name: "client id refused", token: good, policy: func(p *verifier.Policy) { p.AllowedClientIDs = []string{"client-2"} }, want: verifier.ErrClientID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.revs = verifier.NewMemoryRevocationList(f.clock)
			if tt.setup != nil {
				tt.setup(t)
			}
			p := basePolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			var opts []verifier.Option
			if tt.list != nil {
				opts = append(opts, verifier.WithRevocationList(tt.list))
			}
			got, err := f.verifier(t, p, opts...).Verify(context.Background(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("Verify returned claims %+v with an error", got)
			}
			if msg := err.Error(); len(tt.token) > 40 && strings.Contains(msg, tt.token[len(tt.token)-40:]) {
				t.Errorf("error %q quotes the token", msg)
			}
		})
	}
}

// TestGoodTokenFixture guards TestVerifyRejects: its base token verifies.
func TestGoodTokenFixture(t *testing.T) {
	f := newFixture(t, "ES256")
	es := testSigner(t, "ES256")
	if _, err := f.verifier(t, basePolicy()).Verify(context.Background(), craft(t, es, hdr(es), claimsJSON(nil))); err != nil {
		t.Fatalf("Verify(good token) = %v, want nil", err)
	}
}

func TestNewPolicy(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		policy func(*verifier.Policy)
		field  string
	}{
		{name: "no issuer", policy: func(p *verifier.Policy) { p.Issuer = "" }, field: "Issuer"},
		{name: "no audience", policy: func(p *verifier.Policy) { p.Audience = nil }, field: "Audience"},
		{name: "empty audience", policy: func(p *verifier.Policy) { p.Audience = []string{""} }, field: "Audience"},
		{name: "alg none", policy: func(p *verifier.Policy) { p.Algorithms = []string{"none"} }, field: "Algorithms"},
		{name: "alg HS256", policy: func(p *verifier.Policy) { p.Algorithms = []string{"ES256", "HS256"} }, field: "Algorithms"},
		{name: "alg unknown", policy: func(p *verifier.Policy) { p.Algorithms = []string{"ES256K"} }, field: "Algorithms"},
		{name: "empty type", policy: func(p *verifier.Policy) { p.Types = []string{"application/"} }, field: "Types"},
		{name: "negative leeway", policy: func(p *verifier.Policy) { p.Leeway = -time.Second }, field: "Leeway"},
		{name: "leeway over 5 min", policy: func(p *verifier.Policy) { p.Leeway = 6 * time.Minute }, field: "Leeway"},
		{name: "negative max age", policy: func(p *verifier.Policy) { p.MaxTokenAge = -1 }, field: "MaxTokenAge"},
		{name: "negative max lifetime", policy: func(p *verifier.Policy) { p.MaxLifetime = -1 }, field: "MaxLifetime"},
		{name: "negative size", policy: func(p *verifier.Policy) { p.MaxTokenSize = -1 }, field: "MaxTokenSize"},
		{name: "huge size", policy: func(p *verifier.Policy) { p.MaxTokenSize = 1 << 20 }, field: "MaxTokenSize"},
		{name: "bad scope", policy: func(p *verifier.Policy) { p.RequiredScopes = []string{`a"b`} }, field: "RequiredScopes"},
		{name: "empty principal type", policy: func(p *verifier.Policy) { p.AllowedPrincipalTypes = []string{""} }, field: "AllowedPrincipalTypes"},
		{name: "empty client id", policy: func(p *verifier.Policy) { p.AllowedClientIDs = []string{"a", ""} }, field: "AllowedClientIDs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePolicy()
			tt.policy(&p)
			_, err := verifier.New(f.src, p, verifier.WithRevocationList(f.revs))
			if !errors.Is(err, verifier.ErrPolicy) {
				t.Fatalf("New error = %v, want ErrPolicy", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New error = %q, want it to name %s", err, tt.field)
			}
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	f := newFixture(t)
	got := f.verifier(t, basePolicy()).Policy()
	want := verifier.Policy{
		Issuer: testIssuer, Audience: []string{testAudience},
		Algorithms: []string{"ES256", "ES384", "EdDSA", "PS256", "RS256"}, Types: []string{"at+jwt"},
		Leeway: 30 * time.Second, MaxTokenAge: 24 * time.Hour, MaxLifetime: 24 * time.Hour, MaxTokenSize: 8192,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Policy() (-want +got):\n%s", diff)
	}
}

func TestNewRevocationChoice(t *testing.T) {
	f := newFixture(t, "ES256")
	es := testSigner(t, "ES256")
	ctx := context.Background()

	if _, err := verifier.New(f.src, basePolicy()); !errors.Is(err, verifier.ErrPolicy) {
		t.Errorf("New without a RevocationList = %v, want ErrPolicy", err)
	}
	if _, err := verifier.New(f.src, basePolicy(), verifier.WithRevocationList(f.revs), verifier.UnsafeWithoutRevocation()); !errors.Is(err, verifier.ErrPolicy) {
		t.Errorf("New with a list and UnsafeWithoutRevocation = %v, want ErrPolicy", err)
	}
	if _, err := verifier.New(nil, basePolicy(), verifier.UnsafeWithoutRevocation()); !errors.Is(err, verifier.ErrPolicy) {
		t.Errorf("New with a nil KeySource = %v, want ErrPolicy", err)
	}

	tok := craft(t, es, hdr(es), claimsJSON(nil))
	unsafe, err := verifier.New(f.src, basePolicy(), verifier.UnsafeWithoutRevocation(), verifier.WithNow(f.clock))
	if err != nil {
		t.Fatalf("New with UnsafeWithoutRevocation: %v", err)
	}
	if err := f.revs.RevokeJTI(ctx, "jti-1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := unsafe.Verify(ctx, tok); err != nil {
		t.Errorf("Verify without revocation = %v, want nil", err)
	}

	// A KeySource that is also a RevocationList is used as the list.
	both := revocableSource{keySource: f.src, MemoryRevocationList: f.revs}
	v, err := verifier.New(both, basePolicy(), verifier.WithNow(f.clock))
	if err != nil {
		t.Fatalf("New with a revocable KeySource: %v", err)
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("Verify through the KeySource's list = %v, want ErrRevoked", err)
	}
}

// TestVerifyConcurrent runs Verify from many goroutines (for -race).
func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t, "ES256")
	v := f.verifier(t, basePolicy())
	tok := f.issue(t, testSigner(t, "ES256"), baseClaims())
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			for range 20 {
				if _, err = v.Verify(context.Background(), tok); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Verify: %v", err)
		}
	}
}

func split3(tok string) (string, string, string) {
	p := strings.Split(tok, ".")
	return p[0], p[1], p[2]
}

// padTo4 adds the '=' padding that unpadded base64url omits (at least one).
func padTo4(s string) string {
	s += "="
	for len(s)%4 != 0 {
		s += "="
	}
	return s
}

// nonCanonical sets a trailing bit that carries no data in the last
// character of an unpadded base64url text whose length is not a multiple
// of 4 (an ES256 signature is 86 characters: 2 spare bits).
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

// reencode decodes a base64url text and encodes its first n bytes.
func reencode(t *testing.T, s string, n int) string {
	t.Helper()
	b, err := jose.AppendDecode(nil, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return string(jose.AppendEncode(nil, b[:n]))
}

func sha(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}
