package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
