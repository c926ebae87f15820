package bench_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jws"
	jwxjwt "github.com/lestrrat-go/jwx/v3/jwt"
)

// leeway is the clock skew every verifier allows (our default).
const leeway = 30 * time.Second

// peerClaims is what a verifier read from a token, for the interop checks.
type peerClaims struct {
	Sub, ClientID, JTI, Scope, PrincipalType string
	Typ, KID                                 string // empty when the library does not expose them cheaply
}

// verifyFunc verifies one token with a library's strict options: expected
// alg, signature, exp required, nbf, iss, aud.
type verifyFunc func(tok string) (peerClaims, error)

// signFunc mints one token (fresh jti) with a library: header alg, kid,
// typ at+jwt; claims iss, sub, aud, exp, nbf, iat, jti, scope, client_id,
// principal_type.
type signFunc func() (string, error)

// peer is one JWT library of the matrix.
type peer struct {
	name   string
	verify func(t testing.TB, k *testKey) verifyFunc
	sign   func(t testing.TB, k *testKey) signFunc
}

var peers = []peer{
	{"golang-jwt", golangJWTVerify, golangJWTSign},
	{"go-jose", goJoseVerify, goJoseSign},
	{"jwx", jwxVerify, jwxSign},
}

var errPeer = errors.New("bench: peer check failed")

func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// --- golang-jwt v5 ---------------------------------------------------------

type gjwtClaims struct {
	gjwt.RegisteredClaims
	Scope         string `json:"scope"`
	ClientID      string `json:"client_id"`
	PrincipalType string `json:"principal_type"`
}

func golangJWTVerify(_ testing.TB, k *testKey) verifyFunc {
	p := gjwt.NewParser(
		gjwt.WithValidMethods([]string{k.alg}),
		gjwt.WithIssuer(testIssuer),
		gjwt.WithAudience(testAudience),
		gjwt.WithExpirationRequired(),
		gjwt.WithIssuedAt(),
		gjwt.WithLeeway(leeway),
		gjwt.WithStrictDecoding(),
	)
	keyFunc := func(*gjwt.Token) (any, error) { return k.pub, nil }
	return func(tok string) (peerClaims, error) {
		var c gjwtClaims
		t, err := p.ParseWithClaims(tok, &c, keyFunc)
		if err != nil {
			return peerClaims{}, err
		}
		typ, _ := t.Header["typ"].(string)
		kid, _ := t.Header["kid"].(string)
		return peerClaims{Sub: c.Subject, ClientID: c.ClientID, JTI: c.ID, Scope: c.Scope, PrincipalType: c.PrincipalType, Typ: typ, KID: kid}, nil
	}
}

func golangJWTSign(t testing.TB, k *testKey) signFunc {
	m := gjwt.GetSigningMethod(k.alg)
	if m == nil {
		t.Fatalf("golang-jwt has no %s", k.alg)
	}
	return func() (string, error) {
		now := time.Now()
		tok := gjwt.NewWithClaims(m, gjwtClaims{
			RegisteredClaims: gjwt.RegisteredClaims{
				Issuer: testIssuer, Subject: testSubject, Audience: gjwt.ClaimStrings{testAudience},
				ExpiresAt: gjwt.NewNumericDate(now.Add(time.Hour)), NotBefore: gjwt.NewNumericDate(now),
				IssuedAt: gjwt.NewNumericDate(now), ID: newJTI(),
			},
			Scope: testScope, ClientID: testClient, PrincipalType: testPrincipal,
		})
		tok.Header["kid"] = k.kid
		tok.Header["typ"] = "at+jwt"
		return tok.SignedString(k.priv)
	}
}

// --- go-jose v4 ------------------------------------------------------------

type joseExtra struct {
	Scope         string `json:"scope"`
	ClientID      string `json:"client_id"`
	PrincipalType string `json:"principal_type"`
}

func goJoseVerify(_ testing.TB, k *testKey) verifyFunc {
	algs := []gojose.SignatureAlgorithm{gojose.SignatureAlgorithm(k.alg)}
	return func(tok string) (peerClaims, error) {
		t, err := josejwt.ParseSigned(tok, algs)
		if err != nil {
			return peerClaims{}, err
		}
		var std josejwt.Claims
		var ext joseExtra
		if err := t.Claims(k.pub, &std, &ext); err != nil {
			return peerClaims{}, err
		}
		if std.Expiry == nil {
			return peerClaims{}, fmt.Errorf("%w: go-jose: exp missing", errPeer)
		}
		if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: testIssuer, AnyAudience: josejwt.Audience{testAudience}, Time: time.Now()}, leeway); err != nil {
			return peerClaims{}, err
		}
		h := t.Headers[0]
		typ, _ := h.ExtraHeaders[gojose.HeaderType].(string)
		return peerClaims{Sub: std.Subject, ClientID: ext.ClientID, JTI: std.ID, Scope: ext.Scope, PrincipalType: ext.PrincipalType, Typ: typ, KID: h.KeyID}, nil
	}
}

func goJoseSign(t testing.TB, k *testKey) signFunc {
	s, err := gojose.NewSigner(
		gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(k.alg), Key: gojose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&gojose.SignerOptions{}).WithType("at+jwt"),
	)
	if err != nil {
		t.Fatalf("go-jose NewSigner(%s): %v", k.alg, err)
	}
	return func() (string, error) {
		now := time.Now()
		return josejwt.Signed(s).Claims(josejwt.Claims{
			Issuer: testIssuer, Subject: testSubject, Audience: josejwt.Audience{testAudience},
			Expiry: josejwt.NewNumericDate(now.Add(time.Hour)), NotBefore: josejwt.NewNumericDate(now),
			IssuedAt: josejwt.NewNumericDate(now), ID: newJTI(),
		}).Claims(joseExtra{Scope: testScope, ClientID: testClient, PrincipalType: testPrincipal}).Serialize()
	}
}

// --- jwx v3 ----------------------------------------------------------------

func jwxVerify(t testing.TB, k *testKey) verifyFunc {
	alg := jwxAlg(t, k.alg)
	return func(tok string) (peerClaims, error) {
		tk, err := jwxjwt.ParseString(tok,
			jwxjwt.WithKey(alg, k.pub),
			jwxjwt.WithIssuer(testIssuer),
			jwxjwt.WithAudience(testAudience),
			jwxjwt.WithRequiredClaim(jwxjwt.ExpirationKey),
			jwxjwt.WithAcceptableSkew(leeway),
		)
		if err != nil {
			return peerClaims{}, err
		}
		var c peerClaims
		c.Sub, _ = tk.Subject()
		c.JTI, _ = tk.JwtID()
		for name, dst := range map[string]*string{"client_id": &c.ClientID, "scope": &c.Scope, "principal_type": &c.PrincipalType} {
			if err := tk.Get(name, dst); err != nil {
				return peerClaims{}, fmt.Errorf("%w: jwx: %s: %w", errPeer, name, err)
			}
		}
		return c, nil
	}
}

func jwxSign(t testing.TB, k *testKey) signFunc {
	alg := jwxAlg(t, k.alg)
	hdrs := jws.NewHeaders()
	for name, v := range map[string]string{jws.KeyIDKey: k.kid, jws.TypeKey: "at+jwt"} {
		if err := hdrs.Set(name, v); err != nil {
			t.Fatalf("jwx header %s: %v", name, err)
		}
	}
	return func() (string, error) {
		now := time.Now().Truncate(time.Second)
		tk := jwxjwt.New()
		for _, kv := range []struct {
			name string
			v    any
		}{
			{jwxjwt.IssuerKey, testIssuer}, {jwxjwt.SubjectKey, testSubject}, {jwxjwt.AudienceKey, []string{testAudience}},
			{jwxjwt.ExpirationKey, now.Add(time.Hour)}, {jwxjwt.NotBeforeKey, now}, {jwxjwt.IssuedAtKey, now},
			{jwxjwt.JwtIDKey, newJTI()}, {"scope", testScope}, {"client_id", testClient}, {"principal_type", testPrincipal},
		} {
			if err := tk.Set(kv.name, kv.v); err != nil {
				return "", err
			}
		}
		b, err := jwxjwt.Sign(tk, jwxjwt.WithKey(alg, k.priv, jws.WithProtectedHeaders(hdrs)))
		return string(b), err
	}
}

// ourVerify adapts our Verifier to verifyFunc.
func ourVerify(t testing.TB, k *testKey) verifyFunc {
	v := ourVerifier(t, k)
	return func(tok string) (peerClaims, error) {
		c, err := v.Verify(t.Context(), tok)
		if err != nil {
			return peerClaims{}, err
		}
		return peerClaims{Sub: c.Subject, ClientID: c.ClientID, JTI: c.ID, Scope: strings.Join(c.Scope, " "), PrincipalType: c.PrincipalType}, nil
	}
}
