package jwks_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/verifier"
)

type staticKeys []verifier.Key

func (s staticKeys) PublicKeys(context.Context) ([]verifier.Key, error) { return s, nil }

func ExampleNewHandler() {
	seed := make([]byte, ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(seed).Public()
	h := jwks.NewHandler(staticKeys{{KID: "2025-03-a", Algorithm: "EdDSA", Public: pub}})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Println(rec.Header().Get("Cache-Control"))
	fmt.Println(string(body))
	// Output:
	// 200 application/jwk-set+json
	// public, max-age=300, must-revalidate
	// {"keys":[{"alg":"EdDSA","crv":"Ed25519","kid":"2025-03-a","kty":"OKP","use":"sig","x":"O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik"}]}
}
