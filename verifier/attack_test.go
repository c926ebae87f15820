package verifier_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/verifier"
)

var update = flag.Bool("update", false, "rewrite verifier/testdata/attacks.json and attack_key.jwk")

// attackD is the private scalar of the fixed P-256 test key that signs the
// "valid-looking" hostile tokens. It is a test key, used nowhere else; only
// its public half is stored in testdata.
const attackD = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"

const (
	attackKID   = "attack-es256"
	attackIndex = "testdata/attacks.json"
	attackJWK   = "testdata/attack_key.jwk"
)

// attackKey returns the fixed ES256 test key.
func attackKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	d, err := hex.DecodeString(attackD)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatalf("ParseRawPrivateKey: %v", err)
	}
	return k
}

// attackVerifier verifies with the public key stored in testdata, at t0.
func attackVerifier(t testing.TB) *verifier.Verifier {
	t.Helper()
	raw, err := os.ReadFile(attackJWK)
	if err != nil {
		t.Fatal(err)
	}
	jk, err := jwk.ParseKey(raw)
	if err != nil {
		t.Fatalf("jwk.ParseKey: %v", err)
	}
	var pub any
	if err := jwk.Export(jk, &pub); err != nil {
		t.Fatalf("jwk.Export: %v", err)
	}
	src := &keySource{keys: map[string]verifier.Key{attackKID: {KID: attackKID, Algorithm: "ES256", Public: pub}}}
	v, err := verifier.New(src, verifier.Policy{Issuer: testIssuer, Audience: []string{testAudience}},
		verifier.WithNow(func() time.Time { return t0 }), verifier.UnsafeWithoutRevocation())
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	return v
}

// attack is one hostile token and the sentinel Verify must return (Want
// is the name of a verifier.Err* variable; "" for the control token).
type attack struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	Want  string `json:"want"`
}

// verifierErrors names every sentinel of the verifier package.
var verifierErrors = map[string]error{
	"ErrMalformed": verifier.ErrMalformed, "ErrTooLarge": verifier.ErrTooLarge,
	"ErrAlgorithm": verifier.ErrAlgorithm, "ErrHeaderParam": verifier.ErrHeaderParam,
	"ErrCrit": verifier.ErrCrit, "ErrType": verifier.ErrType,
	"ErrMissingKID": verifier.ErrMissingKID, "ErrUnknownKID": verifier.ErrUnknownKID,
	"ErrKeyRetired": verifier.ErrKeyRetired, "ErrKeyCompromised": verifier.ErrKeyCompromised,
	"ErrSignature": verifier.ErrSignature, "ErrExpired": verifier.ErrExpired,
	"ErrNotYetValid": verifier.ErrNotYetValid, "ErrTooOld": verifier.ErrTooOld,
	"ErrLifetime": verifier.ErrLifetime, "ErrIssuedInFuture": verifier.ErrIssuedInFuture,
	"ErrMissingClaim": verifier.ErrMissingClaim, "ErrClaimType": verifier.ErrClaimType,
	"ErrIssuer": verifier.ErrIssuer, "ErrAudience": verifier.ErrAudience,
	"ErrMissingJTI": verifier.ErrMissingJTI, "ErrRevoked": verifier.ErrRevoked,
	"ErrScope": verifier.ErrScope, "ErrPrincipalType": verifier.ErrPrincipalType,
	"ErrClientID": verifier.ErrClientID, "ErrRevocationCheck": verifier.ErrRevocationCheck,
	"ErrKeySource": verifier.ErrKeySource, "ErrPolicy": verifier.ErrPolicy,
	"ErrArgument": verifier.ErrArgument,
}

// es256 signs header.payload (both JSON) with k and returns the token.
func es256(t testing.TB, k *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	in := b64(header) + "." + b64(payload)
	sig := p1363(t, k, in)
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func p1363(t testing.TB, k *ecdsa.PrivateKey, in string) []byte {
	t.Helper()
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

func hs256(key []byte, header, payload string) string {
	in := b64(header) + "." + b64(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// withSig replaces the signature of tok by sig.
func withSig(tok string, sig []byte) string {
	return tok[:strings.LastIndexByte(tok, '.')+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// buildAttacks makes the corpus. fetchURL is put in jku and x5u headers.
func buildAttacks(t testing.TB, k *ecdsa.PrivateKey, fetchURL string) []attack {
	t.Helper()
	hdr := func(alg string, extra string) string {
		return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt"%s}`, alg, attackKID, extra)
	}
	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":%q,"jti":"j-1","iat":%d,"exp":%d%s}`,
			testIssuer, testAudience, testClient, t0.Unix(), t0.Add(time.Hour).Unix(), extra)
	}
	good := claims("")
	valid := es256(t, k, hdr("ES256", ""), good)

	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkKey, err := os.ReadFile(attackJWK)
	if err != nil && !*update {
		t.Fatal(err)
	}
	rawKey, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}

	n := elliptic.P256().Params().N
	nBytes := n.FillBytes(make([]byte, 32))
	goodSig, err := base64.RawURLEncoding.DecodeString(valid[strings.LastIndexByte(valid, '.')+1:])
	if err != nil {
		t.Fatal(err)
	}
	sPlusN := new(big.Int).Add(new(big.Int).SetBytes(goodSig[32:]), n)
	derSig := func() []byte {
		h := sha256.Sum256([]byte(valid[:strings.LastIndexByte(valid, '.')]))
		s, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	ff := []byte(strings.Repeat("\xff", 64))

	var as []attack
	add := func(name, tok, want string) { as = append(as, attack{name, tok, want}) }
	add("control-valid", valid, "")
	for _, a := range []string{"none", "None", "NONE", "nOnE", "NoNe"} {
		add("alg-"+a, b64(hdr(a, ""))+"."+b64(good)+".", "ErrAlgorithm")
		add("alg-"+a+"-with-sig", b64(hdr(a, ""))+"."+b64(good)+"."+valid[strings.LastIndexByte(valid, '.')+1:], "ErrAlgorithm")
	}
	add("hs256-pubkey-pem", hs256(pemKey, hdr("HS256", ""), good), "ErrAlgorithm")
	add("hs256-pubkey-der", hs256(der, hdr("HS256", ""), good), "ErrAlgorithm")
	add("hs256-pubkey-jwk", hs256(jwkKey, hdr("HS256", ""), good), "ErrAlgorithm")
	add("hs256-pubkey-raw", hs256(rawKey, hdr("HS256", ""), good), "ErrAlgorithm")
	add("alg-es384-on-es256-key", es256(t, k, hdr("ES384", ""), good), "ErrAlgorithm")
	add("alg-rs256-on-es256-key", es256(t, k, hdr("RS256", ""), good), "ErrAlgorithm")
	add("alg-eddsa-on-es256-key", es256(t, k, hdr("EdDSA", ""), good), "ErrAlgorithm")
	add("embedded-jwk", es256(t, k, hdr("ES256", `,"jwk":`+strings.TrimSpace(string(jwkKey))), good), "ErrHeaderParam")
	add("jku", es256(t, k, hdr("ES256", fmt.Sprintf(`,"jku":%q`, fetchURL+"/jwks")), good), "ErrHeaderParam")
	add("x5u", es256(t, k, hdr("ES256", fmt.Sprintf(`,"x5u":%q`, fetchURL+"/cert")), good), "ErrHeaderParam")
	add("x5c", es256(t, k, hdr("ES256", fmt.Sprintf(`,"x5c":[%q]`, base64.StdEncoding.EncodeToString(der))), good), "ErrHeaderParam")
	add("crit-unknown", es256(t, k, hdr("ES256", `,"crit":["urn:example:x"],"urn:example:x":1`), good), "ErrCrit")
	add("crit-empty", es256(t, k, hdr("ES256", `,"crit":[]`), good), "ErrCrit")
	add("b64-false", es256(t, k, hdr("ES256", `,"b64":false,"crit":["b64"]`), good), "ErrHeaderParam")
	add("ecdsa-r-s-zero", withSig(valid, make([]byte, 64)), "ErrSignature")
	add("ecdsa-r-eq-n", withSig(valid, append(append([]byte{}, nBytes...), goodSig[32:]...)), "ErrSignature")
	add("ecdsa-s-eq-n", withSig(valid, append(append([]byte{}, goodSig[:32]...), nBytes...)), "ErrSignature")
	add("ecdsa-s-plus-n", withSig(valid, append(append([]byte{}, goodSig[:32]...), sPlusN.Bytes()...)), "ErrSignature")
	add("ecdsa-all-ff", withSig(valid, ff), "ErrSignature")
	add("ecdsa-der", withSig(valid, derSig), "ErrSignature")
	add("ecdsa-truncated", withSig(valid, goodSig[:63]), "ErrSignature")
	add("ecdsa-empty-sig", withSig(valid, nil), "ErrSignature")
	add("header-duplicate-alg", b64(`{"alg":"ES256","alg":"none","kid":"`+attackKID+`","typ":"at+jwt"}`)+valid[strings.IndexByte(valid, '.'):], "ErrMalformed")
	add("claims-duplicate-sub", es256(t, k, hdr("ES256", ""), claims(`,"sub":"admin"`)), "ErrMalformed")
	add("base64-padded-header", strings.Replace(valid, ".", "=.", 1), "ErrMalformed")
	add("base64-std-alphabet", valid[:strings.LastIndexByte(valid, '.')+1]+base64.RawStdEncoding.EncodeToString(ff), "ErrMalformed")
	add("base64-noncanonical-sig", nonCanonical(valid), "ErrMalformed")
	add("segments-4", valid+".x", "ErrMalformed")
	add("segments-5", valid+".x.y", "ErrMalformed")
	add("segments-2", valid[:strings.LastIndexByte(valid, '.')], "ErrMalformed")
	add("json-serialization", fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`,
		b64(good), b64(hdr("ES256", "")), valid[strings.LastIndexByte(valid, '.')+1:]), "ErrMalformed")
	add("claims-exp-string", es256(t, k, hdr("ES256", ""), strings.Replace(good, fmt.Sprintf(`"exp":%d`, t0.Add(time.Hour).Unix()), `"exp":"never"`, 1)), "ErrClaimType")
	add("claims-iss-number", es256(t, k, hdr("ES256", ""), strings.Replace(good, fmt.Sprintf(`"iss":%q`, testIssuer), `"iss":1`, 1)), "ErrClaimType")
	add("claims-aud-object", es256(t, k, hdr("ES256", ""), strings.Replace(good, fmt.Sprintf(`"aud":%q`, testAudience), `"aud":{"x":1}`, 1)), "ErrClaimType")
	add("claims-exp-huge", es256(t, k, hdr("ES256", ""), strings.Replace(good, fmt.Sprintf(`"exp":%d`, t0.Add(time.Hour).Unix()), `"exp":1e400`, 1)), "ErrClaimType")
	add("claims-exp-long-digits", es256(t, k, hdr("ES256", ""), strings.Replace(good, fmt.Sprintf(`"exp":%d`, t0.Add(time.Hour).Unix()), `"exp":`+strings.Repeat("9", 400), 1)), "ErrClaimType")
	add("header-alg-number", es256(t, k, `{"alg":256,"kid":"`+attackKID+`","typ":"at+jwt"}`, good), "ErrMalformed")
	add("claims-not-object", es256(t, k, hdr("ES256", ""), `["iss"]`), "ErrMalformed")
	add("token-1mb", strings.Repeat("A", 1<<20), "ErrTooLarge")
	return as
}

// fetchCounter is an HTTP server that counts the requests it gets.
func fetchCounter(t testing.TB) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func checkAttack(t *testing.T, v *verifier.Verifier, a attack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := v.Verify(ctx, a.Token)
	if a.Want == "" {
		if err != nil {
			t.Fatalf("Verify(control) = %v, want nil", err)
		}
		return
	}
	want, ok := verifierErrors[a.Want]
	if !ok {
		t.Fatalf("unknown sentinel %q", a.Want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Verify = %v, want %s", err, a.Want)
	}
}

// generatedOnly names the attacks left out of the stored corpus: the 1 MB
// token would bloat the repository and is all 'A's anyway.
var generatedOnly = map[string]bool{"token-1mb": true}

// TestAttacks builds the hostile tokens afresh (signed with the fixed test
// key) and checks each gives its sentinel, that none made the verifier
// fetch the jku/x5u URL, and that the stored corpus gives the same.
func TestAttacks(t *testing.T) {
	k := attackKey(t)
	srv, fetches := fetchCounter(t)
	if *update {
		writeAttackFiles(t, k, srv.URL)
	}
	v := attackVerifier(t)
	fresh := buildAttacks(t, k, srv.URL)
	for _, a := range fresh {
		t.Run("fresh/"+a.Name, func(t *testing.T) { checkAttack(t, v, a) })
	}
	stored := readAttacks(t)
	if len(stored) != len(fresh)-len(generatedOnly) {
		t.Errorf("%s holds %d attacks, the generator %d: run go test ./verifier -run TestAttacks -update", attackIndex, len(stored), len(fresh))
	}
	for _, a := range stored {
		t.Run("stored/"+a.Name, func(t *testing.T) { checkAttack(t, v, a) })
	}
	if got := fetches.Load(); got != 0 {
		t.Errorf("the verifier made %d HTTP requests to a header URL, want 0", got)
	}
}

// TestAttackKey checks that the stored public JWK is the fixed key's.
func TestAttackKey(t *testing.T) {
	raw, err := os.ReadFile(attackJWK)
	if err != nil {
		t.Fatal(err)
	}
	jk, err := jwk.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if priv, err := jwk.IsPrivateKey(jk); err != nil || priv {
		t.Fatalf("IsPrivateKey = %v, %v; want a public key", priv, err)
	}
	var pub any
	if err := jwk.Export(jk, &pub); err != nil {
		t.Fatal(err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || !ec.Equal(attackKey(t).Public()) {
		t.Fatalf("%s is not the public half of the fixed test key", attackJWK)
	}
}

func readAttacks(t testing.TB) []attack {
	t.Helper()
	raw, err := os.ReadFile(attackIndex)
	if err != nil {
		t.Fatal(err)
	}
	var as []attack
	if err := json.Unmarshal(raw, &as); err != nil {
		t.Fatalf("%s: %v", attackIndex, err)
	}
	return as
}

func writeAttackFiles(t testing.TB, k *ecdsa.PrivateKey, fetchURL string) {
	t.Helper()
	jk, err := jwk.Import(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pj, err := json.Marshal(jk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(attackJWK, append(pj, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	var as []attack
	for _, a := range buildAttacks(t, k, fetchURL) {
		if !generatedOnly[a.Name] {
			as = append(as, a)
		}
	}
	out, err := json.MarshalIndent(as, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.FromSlash(attackIndex), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
