package keyringtest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/verifier"
)

// A Fixture under the policy Core runs in production: its set rotates
// every 30 days and signs tokens of at most 10 minutes, 5 by default.
// TokenFor issues a token from any claims: here a service's.
func ExampleFixture_TokenFor() {
	f, err := keyringtest.New(keyringtest.Options{
		SetPolicy:       keyring.SetPolicy{RotationPeriod: 30 * keyring.Day, MaxTokenLifetime: 10 * time.Minute},
		DefaultLifetime: 5 * time.Minute,
		Policy:          verifier.Policy{AllowedPrincipalTypes: []string{"service"}},
	})
	if err != nil {
		panic(err)
	}
	pol, _ := f.Ring.Policy(f.Set)
	fmt.Println("set", f.Set, "rotates every", pol.RotationPeriod)

	token, err := f.TokenFor(tokenkms.Claims{
		Subject: "billing", ClientID: "billing-batch", PrincipalType: "service", Scope: []string{"invoices:write"},
	})
	if err != nil {
		panic(err)
	}
	c, err := f.Verifier.Verify(context.Background(), token)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Subject, c.PrincipalType, c.Scope, c.ExpiresAt.Sub(c.IssuedAt))
	// Output:
	// set access-tokens rotates every 720h0m0s
	// billing service [invoices:write] 5m0s
}

// A handler test without HTTP or a bearer header: Context gives the
// handler what Middleware would have put in its request.
func ExampleFixture_Context() {
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		panic(err)
	}
	orders := verifier.RequireScopes("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "orders of %s via %s", c.Subject, c.ClientID)
	}))
	for _, scope := range []string{"orders:read", "profile"} {
		ctx, err := f.Context(tokenkms.Claims{Subject: "alice", ClientID: "web", PrincipalType: "user", Scope: []string{scope}})
		if err != nil {
			panic(err)
		}
		rec := httptest.NewRecorder()
		orders.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/orders", nil))
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// 200 orders of alice via web
	// 403 Forbidden
}
