package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// exampleKeys is the smallest KeySource and ActiveKeys: one signing key.
type exampleKeys struct{ s signer.Signer }

func (k exampleKeys) Signer(context.Context, string) (signer.Signer, error) { return k.s, nil }

func (k exampleKeys) VerificationKey(_ context.Context, kid string) (verifier.Key, error) {
	if kid != k.s.KID() {
		return verifier.Key{}, verifier.ErrUnknownKID
	}
	return verifier.Key{KID: kid, Algorithm: k.s.Algorithm(), Public: k.s.Public()}, nil
}

func ExampleMiddleware() {
	ctx := context.Background()
	provider, _ := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	s, _, _ := provider.Generate(ctx, "key-1", "ES256")
	keys := exampleKeys{s}

	issuer, _ := signer.NewIssuer(keys, signer.IssuerConfig{
		Set: "access", Issuer: "https://issuer.example", Audience: []string{"orders"},
		DefaultLifetime: 5 * time.Minute, MaxLifetime: time.Hour,
	})
	v, _ := verifier.New(keys, verifier.Policy{Issuer: "https://issuer.example", Audience: []string{"orders"}},
		verifier.WithRevocationList(verifier.NewMemoryRevocationList(nil)))

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	})
	mux := http.NewServeMux()
	mux.Handle("/orders", verifier.Middleware(v)(api))
	mux.Handle("/admin", verifier.Middleware(v)(verifier.RequireScopes("orders:admin")(api)))

	call := func(path, token string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		fmt.Printf("%s %d %q %q\n", path, rec.Code, rec.Header().Get("WWW-Authenticate"), body)
	}

	token, _ := issuer.Issue(ctx, tokenkms.Claims{Subject: "alice", ClientID: "web", Scope: []string{"orders:read"}})
	call("/orders", token)
	call("/orders", "")
	call("/orders", token+"x")
	call("/admin", token)

	_, err := v.Verify(ctx, token+"x")
	switch {
	case errors.Is(err, verifier.ErrSignature), errors.Is(err, verifier.ErrMalformed):
		fmt.Println("tampered token refused")
	}
	// Output:
	// /orders 200 "" "hello alice"
	// /orders 401 "Bearer" "Unauthorized\n"
	// /orders 401 "Bearer error=\"invalid_token\"" "Unauthorized\n"
	// /admin 403 "Bearer error=\"insufficient_scope\", scope=\"orders:admin\"" "Forbidden\n"
	// tampered token refused
}

func ExampleNewIntrospectionHandler() {
	ctx := context.Background()
	now := func() time.Time { return time.Unix(1_900_000_000, 0) }
	provider, _ := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	s, _, _ := provider.Generate(ctx, "key-1", "ES256")
	keys := exampleKeys{s}
	issuer, _ := signer.NewIssuer(keys, signer.IssuerConfig{
		Set: "access", Issuer: "https://issuer.example", Audience: []string{"orders"},
		DefaultLifetime: 5 * time.Minute, MaxLifetime: time.Hour, Now: now,
	})
	revocations := verifier.NewMemoryRevocationList(now)
	v, _ := verifier.New(keys, verifier.Policy{Issuer: "https://issuer.example", Audience: []string{"orders"}},
		verifier.WithRevocationList(revocations), verifier.WithNow(now))

	// Only the resource server "orders-api" may introspect.
	caller := func(r *http.Request) error {
		if id, secret, ok := r.BasicAuth(); ok && id == "orders-api" && secret == "s3cret" {
			return nil
		}
		return errors.New("unknown caller")
	}
	h, _ := verifier.NewIntrospectionHandler(v, caller)

	introspect := func(user, token string) {
		req := httptest.NewRequest(http.MethodPost, "/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, "s3cret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Body.String())
	}
	token, _ := issuer.Issue(ctx, tokenkms.Claims{Subject: "alice", ClientID: "web", Scope: []string{"orders:read"}, ID: "t-1"})
	introspect("orders-api", token)
	introspect("someone", token)
	_ = revocations.RevokeJTI(ctx, "t-1", now().Add(time.Hour))
	introspect("orders-api", token)
	// Output:
	// 200 {"active":true,"scope":"orders:read","client_id":"web","token_type":"Bearer","exp":1900000300,"iat":1900000000,"nbf":1900000000,"sub":"alice","aud":"orders","iss":"https://issuer.example","jti":"t-1"}
	// 401 {"error":"invalid_client"}
	// 200 {"active":false}
}

// downList is a RevocationList whose store is unreachable.
type downList struct{ verifier.RevocationList }

func (downList) Revoked(context.Context, string, string, time.Time) (bool, error) {
	return false, errors.New("revocation store unreachable")
}

func ExampleWithErrorBody() {
	ctx := context.Background()
	provider, _ := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	s, _, _ := provider.Generate(ctx, "key-1", "ES256")
	keys := exampleKeys{s}
	issuer, _ := signer.NewIssuer(keys, signer.IssuerConfig{
		Set: "access", Issuer: "https://issuer.example", Audience: []string{"orders"},
		DefaultLifetime: 5 * time.Minute, MaxLifetime: time.Hour,
	})
	v, _ := verifier.New(keys, verifier.Policy{Issuer: "https://issuer.example", Audience: []string{"orders"}},
		verifier.WithRevocationList(downList{}))
	h := verifier.Middleware(v, verifier.WithErrorBody(verifier.ProblemDetails), verifier.WithRetryAfter(30*time.Second))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	token, _ := issuer.Issue(ctx, tokenkms.Claims{Subject: "alice", ClientID: "web"})
	for _, auth := range []string{"", "Bearer " + token} {
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Printf("%d %s retry=%q challenge=%q\n%s\n", rec.Code, rec.Header().Get("Content-Type"),
			rec.Header().Get("Retry-After"), rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	// Output:
	// 401 application/problem+json retry="" challenge="Bearer"
	// {"type":"about:blank","title":"Unauthorized","status":401}
	// 503 application/problem+json retry="30" challenge=""
	// {"type":"about:blank","title":"Service Unavailable","status":503}
}
