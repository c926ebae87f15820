package keyringtest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/verifier"
)

// A Core unit test: the handler under test sits behind the middleware,
// fed by a Fixture instead of real key backends.
func ExampleFixture() {
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		panic(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	})
	srv := httptest.NewServer(verifier.Middleware(f.Verifier, verifier.WithRequiredScopes("orders:read"))(hello))
	defer srv.Close()

	call := func(token string) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(strings.TrimSpace(fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("WWW-Authenticate"))))
	}
	good, _ := f.Token("alice", "orders:read")
	call(good)
	weak, _ := f.Token("alice", "profile")
	call(weak)

	// After the key is compromised, its tokens are refused.
	kid, _ := f.ActiveKID()
	if _, err := f.Compromise(kid, "INC-1"); err != nil {
		panic(err)
	}
	call(good)
	// Output:
	// 200
	// 403 Bearer error="insufficient_scope", scope="orders:read"
	// 401 Bearer error="invalid_token"
}
