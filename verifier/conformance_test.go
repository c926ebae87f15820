package verifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/verifier"
)

// wycheJWS is a Wycheproof JsonWebSignature / JsonWebCrypto / JsonWebKey
// file. A group holds a JWK or a JWK set ("public" when there is one,
// "private" otherwise); a case holds a JWS, compact (a JSON string) or in
// the JSON serialization (an object).
type wycheJWS struct {
	TestGroups []struct {
		Comment string          `json:"comment"`
		Public  json.RawMessage `json:"public"`
		Private json.RawMessage `json:"private"`
		Tests   []struct {
			TcID    int             `json:"tcId"`
			Comment string          `json:"comment"`
			JWS     json.RawMessage `json:"jws"`
			Result  string          `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// errJSONSerialization marks a case in the JSON serialization, which the
// verifier refuses (only the compact form is accepted).
var errJSONSerialization = errors.New("JWS JSON serialization refused")

// verifyCompactJWS runs the compact-JWS part of Verifier.Verify on tok
// with the same internal/jose functions and in the same order: split,
// header decode and parse, refused parameters, crit, alg (every algorithm
// internal/jose implements), kid, key from src (its alg must be the
// token's), signature decode and Alg.Verify, then the payload's base64.
// The Wycheproof payloads are not access tokens, so the claims checks are
// the only part of Verify left out.
func verifyCompactJWS(ctx context.Context, src verifier.KeySource, tok string) error {
	parts, err := jose.SplitCompact([]byte(tok))
	if err != nil {
		return err
	}
	hjson, err := jose.AppendDecode(nil, parts.Header)
	if err != nil {
		return err
	}
	h, err := jose.ParseHeader(string(hjson))
	if err != nil {
		return err
	}
	if h.Refused&^jose.ParamCrit != 0 {
		return fmt.Errorf("%w: %s", verifier.ErrHeaderParam, h.Refused.First())
	}
	if h.Refused&jose.ParamCrit != 0 {
		return verifier.ErrCrit
	}
	alg, ok := jose.Lookup(h.Alg)
	if !ok {
		return fmt.Errorf("%w: %q", verifier.ErrAlgorithm, h.Alg)
	}
	if h.KID == "" {
		return verifier.ErrMissingKID
	}
	key, err := src.VerificationKey(ctx, h.KID)
	if err != nil {
		return err
	}
	if key.Algorithm != alg.Name {
		return fmt.Errorf("%w: key is %s", verifier.ErrAlgorithm, key.Algorithm)
	}
	sig, err := jose.AppendDecode(nil, parts.Signature)
	if err != nil {
		return err
	}
	if err := alg.Verify(key.Public, parts.SigningInput, sig); err != nil {
		return err
	}
	_, err = jose.AppendDecode(nil, parts.Payload)
	return err
}

// jwkSetServer serves doc (a JWK, or a JWK set) as a JWK set on 127.0.0.1
// and returns a jwks.RemoteSet reading it: the project's JWK import path
// (jwx jwk.ParseKey, jwk.Export and the RemoteSet's acceptance rules).
func jwkSetServer(t *testing.T, doc json.RawMessage) (*jwks.RemoteSet, error) {
	t.Helper()
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &probe); err != nil {
		t.Fatalf("key document: %v", err)
	}
	body := []byte(doc)
	if probe.Keys == nil {
		body = append(append([]byte(`{"keys":[`), doc...), "]}"...)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set, err := jwks.NewRemoteSet(ctx, srv.URL, jwks.AllowInsecureLoopback(), jwks.WithMinRefreshInterval(time.Hour), jwks.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close() })
	return set, nil
}

// refusedOnPurpose lists the Wycheproof cases marked "valid" that the
// verifier rejects by design, by file and tcId, with the reason.
var refusedOnPurpose = map[string]map[int]string{
	"json_web_signature_test.json": {
		1:   refusedHMAC,
		259: emptyPayload, 264: emptyPayload, 268: emptyPayload,
		272: emptyPayload, 320: emptyPayload, 325: emptyPayload,
		346: "RFC 7520 Figure 20: token alg PS384, key's JWK alg PS256; a key verifies its one algorithm only (RFC 8725 §3.1)",
		347: es521,
		348: refusedHMAC,
		350: "RFC 7520 Figure 20 (key_ops): token alg PS384, key's JWK alg PS256; a key verifies its one algorithm only (RFC 8725 §3.1)",
		351: es521,
		352: refusedHMAC,
		357: refusedHMAC, 358: refusedHMAC, 359: refusedHMAC,
		372: refusedHMAC + "; besides, a character outside base64url in the header",
		373: refusedHMAC, 376: refusedHMAC, 377: refusedHMAC,
	},
	"json_web_crypto_test.json": {
		1: refusedHMAC, 48: refusedHMAC,
	},
	"json_web_key_test.json": {
		2: refusedHMAC, 13: refusedHMAC, 14: refusedHMAC, 15: refusedHMAC,
	},
}

// Reasons shared by several refused cases.
const (
	refusedHMAC  = "HMAC (HS*): symmetric algorithms are refused; only asymmetric algorithms verify access tokens"
	emptyPayload = "empty payload: an access token always has claims, SplitCompact requires a non-empty payload"
	es521        = "RFC 7520 Figure 27: the JWK says alg \"ES521\", which is not a JWS algorithm (ES512 is); the RemoteSet drops the key"
)

// TestWycheproofJWS runs the JWS vectors of Wycheproof through the
// verifier's compact path with each group's key imported through the
// RemoteSet: every "valid" case verifies unless refusedOnPurpose lists it,
// every "invalid" case is rejected, and every listed case is indeed a
// valid case that is rejected.
func TestWycheproofJWS(t *testing.T) {
	dir := testenv.Wycheproof(t)
	for _, file := range []string{"json_web_signature_test.json", "json_web_crypto_test.json", "json_web_key_test.json"} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			var wf wycheJWS
			if err := json.Unmarshal(raw, &wf); err != nil {
				t.Fatal(err)
			}
			refused := refusedOnPurpose[file]
			seen := map[int]bool{}
			var valid, validOK, invalid, invalidRejected, onPurpose int
			for _, g := range wf.TestGroups {
				if len(g.Tests) == 0 || g.Tests[0].JWS == nil {
					continue // JWE groups of json_web_crypto_test.json
				}
				doc := g.Public
				if doc == nil {
					doc = g.Private
				}
				set, setErr := jwkSetServer(t, doc)
				for _, tc := range g.Tests {
					var verr error
					switch {
					case setErr != nil:
						verr = setErr
					case bytes.HasPrefix(tc.JWS, []byte("{")):
						verr = errJSONSerialization
					default:
						var tok string
						if err := json.Unmarshal(tc.JWS, &tok); err != nil {
							t.Fatalf("tcId %d: jws: %v", tc.TcID, err)
						}
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						verr = verifyCompactJWS(ctx, set, tok)
						cancel()
					}
					switch tc.Result {
					case "valid":
						valid++
						reason, listed := refused[tc.TcID]
						switch {
						case verr == nil && listed:
							t.Errorf("tcId %d (%s/%s): listed as refused on purpose (%s) but accepted", tc.TcID, g.Comment, tc.Comment, reason)
						case verr == nil:
							validOK++
						case listed:
							onPurpose++
							seen[tc.TcID] = true
						default:
							t.Errorf("tcId %d (%s/%s): valid case rejected: %v", tc.TcID, g.Comment, tc.Comment, verr)
						}
					case "invalid":
						invalid++
						if verr == nil {
							t.Errorf("tcId %d (%s/%s): invalid case accepted", tc.TcID, g.Comment, tc.Comment)
						} else {
							invalidRejected++
						}
					default:
						t.Errorf("tcId %d: unknown result %q", tc.TcID, tc.Result)
					}
				}
			}
			for id, reason := range refused {
				if !seen[id] {
					t.Errorf("tcId %d listed as refused on purpose (%s) is not a rejected valid case", id, reason)
				}
			}
			t.Logf("%s: valid %d (accepted %d, refused on purpose %d), invalid %d (rejected %d)",
				file, valid, validOK, onPurpose, invalid, invalidRejected)
			if valid+invalid == 0 {
				t.Fatalf("no JWS case in %s", file)
			}
		})
	}
}
