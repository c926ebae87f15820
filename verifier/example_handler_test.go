package verifier_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// One Middleware verifies the token of every route; RequireScopes adds
// each route's scopes. The error hook gives the server log the reason of
// each refusal, which the client never sees.
func ExampleRequireScopes() {
	ctx := context.Background()
	provider, _ := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	s, _, _ := provider.Generate(ctx, "key-1", "ES256")
	keys := exampleKeys{s}
	issuer, _ := signer.NewIssuer(keys, signer.IssuerConfig{
		Set: "access", Issuer: "https://issuer.example", Audience: []string{"orders"},
		DefaultLifetime: 5 * time.Minute, MaxLifetime: time.Hour,
	})
	v, _ := verifier.New(keys, verifier.Policy{
		Issuer: "https://issuer.example", Audience: []string{"orders"},
		AllowedPrincipalTypes: []string{"user", "service"},
	}, verifier.WithRevocationList(verifier.NewMemoryRevocationList(nil)))

	logReason := func(r *http.Request, err error) { fmt.Println("log:", r.URL.Path, err) }
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	routes := http.NewServeMux()
	routes.Handle("GET /orders", verifier.RequireScopes("orders:read")(ok))
	routes.Handle("POST /orders", verifier.RequireScopes("orders:write")(ok))
	api := verifier.Middleware(v, verifier.WithRealm("orders"), verifier.WithErrorHook(logReason))(routes)

	token, _ := issuer.Issue(ctx, tokenkms.Claims{
		Subject: "alice", ClientID: "web", PrincipalType: "user", Scope: []string{"orders:read"},
	})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req := httptest.NewRequest(method, "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		fmt.Printf("%s %d %q\n", method, rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// GET 200 ""
	// log: /orders verifier: insufficient scope: route requires orders:write
	// POST 403 "Bearer realm=\"orders\", error=\"insufficient_scope\", scope=\"orders:write\""
}

// A handler test without a token: ContextWithClaims gives the handler the
// claims Middleware would have verified.
func ExampleContextWithClaims() {
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verifier.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "orders of %s (%s)", c.Subject, c.PrincipalType)
	})
	h := verifier.RequireScopes("orders:read")(orders)

	claims := &tokenkms.Claims{Subject: "alice", PrincipalType: "user", Scope: []string{"orders:read"}}
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req.WithContext(verifier.ContextWithClaims(req.Context(), claims)))
	fmt.Println(rec.Code, rec.Body)
	// Output:
	// 200 orders of alice (user)
}
