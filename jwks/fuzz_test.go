package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/jwks"
)

var jwksErrors = []error{
	jwks.ErrKey, jwks.ErrPrivateKey, jwks.ErrInsecureURL, jwks.ErrFetch, jwks.ErrTooLarge,
	jwks.ErrMalformed, jwks.ErrStale, jwks.ErrClosed, jwks.ErrOption, jwks.ErrStarted,
	jwks.ErrPrivateMaterial, jwks.ErrNoUsableKeys,
}

// FuzzJWKS serves fuzzed JWK set documents on 127.0.0.1 to one RemoteSet
// and refreshes it. No document panics, a refusal wraps a jwks sentinel,
// and every key the set then holds is a public key that suits its algs.
func FuzzJWKS(f *testing.F) {
	pub, err := os.ReadFile("../verifier/testdata/attack_key.jwk")
	if err != nil {
		f.Fatal(err)
	}
	ec := strings.Replace(strings.TrimSpace(string(pub)), "{", `{"kid":"k1","alg":"ES256","use":"sig",`, 1)
	seeds := []string{
		`{"keys":[` + ec + `]}`,
		`{"keys":[` + ec + `,` + ec + `]}`,
		`{"keys":[` + strings.Replace(ec, `"ES256"`, `"ES512"`, 1) + `]}`,
		`{"keys":[` + strings.Replace(ec, `"sig"`, `"enc"`, 1) + `]}`,
		`{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"AAAA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		`{"keys":{}}`, `[]`, `{}`, ``,
	}
	files, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		var c corpusFile
		if err := json.Unmarshal(must(os.ReadFile(name)), &c); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		seeds = append(seeds, string(c.JWKS))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	var body atomic.Pointer[string]
	body.Store(&seeds[0])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(*body.Load()))
	}))
	f.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	set, err := jwks.NewRemoteSet(ctx, srv.URL, jwks.AllowInsecureLoopback(), jwks.WithLogger(quiet))
	cancel()
	if err != nil {
		f.Fatalf("NewRemoteSet: %v", err)
	}
	f.Cleanup(func() { _ = set.Close() })

	f.Fuzz(func(t *testing.T, doc string) {
		body.Store(&doc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := set.Refresh(ctx); err != nil {
			for _, s := range jwksErrors {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Refresh error wraps no jwks sentinel: %v", err)
		}
		for _, kid := range set.Keys() {
			k, err := set.VerificationKey(ctx, kid)
			if err != nil {
				t.Fatalf("VerificationKey(%q) of a listed kid: %v", kid, err)
			}
			switch k.Public.(type) {
			case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
			default:
				t.Fatalf("kid %q: key of type %T, want a public key", kid, k.Public)
			}
			algs := k.Algorithms
			if k.Algorithm != "" {
				algs = []string{k.Algorithm}
			}
			if len(algs) == 0 {
				t.Fatalf("kid %q: no algorithm", kid)
			}
			for _, name := range algs {
				alg, ok := jose.Lookup(name)
				if !ok {
					t.Fatalf("kid %q: algorithm %q not in the JWS table", kid, name)
				}
				if err := alg.CheckKey(k.Public); err != nil {
					t.Fatalf("kid %q: key does not suit %s: %v", kid, name, err)
				}
			}
		}
	})
}
