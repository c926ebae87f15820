package jwks_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms/jwks"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/corpus from fresh keys")

// corpusFile is one file of testdata/corpus: a published-style JWK set,
// where its shape comes from, and what a RemoteSet must make of it.
type corpusFile struct {
	Source string          `json:"source"`
	Want   corpusWant      `json:"want"`
	JWKS   json.RawMessage `json:"jwks"`
}

type corpusWant struct {
	// Error names the sentinel of a refused document; Skipped then lists
	// the keys its error names (for ErrPrivateMaterial, the first key
	// with private or symmetric material).
	Error   string            `json:"error,omitempty"`
	Kept    []string          `json:"kept,omitempty"`
	Skipped []jwks.SkippedKey `json:"skipped,omitempty"`
}

var corpusErrors = map[string]error{
	"ErrNoUsableKeys":    jwks.ErrNoUsableKeys,
	"ErrPrivateMaterial": jwks.ErrPrivateMaterial,
}

// TestCorpus loads every key set of testdata/corpus into a RemoteSet and
// checks the keys kept, the keys skipped with their reasons, or the
// refusal of the whole document.
func TestCorpus(t *testing.T) {
	if *updateCorpus {
		writeCorpus(t)
	}
	files, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files (%v)", err)
	}
	seen := map[jwks.SkipReason]bool{}
	for _, name := range files {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".json"), func(t *testing.T) {
			var f corpusFile
			if err := json.Unmarshal(must(os.ReadFile(name)), &f); err != nil {
				t.Fatal(err)
			}
			if f.Source == "" {
				t.Error("no source noted")
			}
			for _, k := range f.Want.Skipped {
				seen[k.Reason] = true
			}
			srv := newServer()
			srv.mode.Store(string(f.JWKS))
			rs, err := jwks.NewRemoteSet(ctxT(t), srv.start(t), jwks.AllowInsecureLoopback(), jwks.WithLogger(quiet))
			if f.Want.Error != "" {
				if !errors.Is(err, corpusErrors[f.Want.Error]) {
					t.Fatalf("NewRemoteSet: got %v, want %s", err, f.Want.Error)
				}
				for _, k := range f.Want.Skipped {
					if want := fmt.Sprintf("key %d (kid %q): %s", k.Index, k.KID, k.Reason); !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %s", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRemoteSet: %v", err)
			}
			defer rs.Close()
			if diff := cmp.Diff(f.Want.Kept, rs.Keys()); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(f.Want.Skipped, rs.Skipped()); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
	for _, r := range []jwks.SkipReason{jwks.SkipPrivate, jwks.SkipSymmetric, jwks.SkipInvalid, jwks.SkipNoKID, jwks.SkipKeyType, jwks.SkipUse,
		jwks.SkipKeyOps, jwks.SkipAlgorithm, jwks.SkipInvalidPoint, jwks.SkipWeakRSA, jwks.SkipROCA, jwks.SkipKeyMismatch, jwks.SkipDuplicateKID} {
		if !seen[r] {
			t.Errorf("no corpus file skips a key for %q", r)
		}
	}
}

// Published test vectors, verbatim.
const (
	// RFC 7517 Appendix A.1, the RSA key.
	rfc7517RSA = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	// RFC 7517 Appendix A.1, the EC key.
	rfc7517EC = `{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"}`
	// RFC 7517 Appendix A.2, the RSA private key.
	rfc7517RSAPrivate = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","d":"X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q","p":"83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMrm8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvNEvn7O0nVbfs","q":"3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5r370AFXjiWft_NGEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun4vIcb6yelxk","dp":"G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGyBJ4c8tQ2VF402XRugKDTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6rY3Ob8YeiKkTiBj0","dq":"s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6vzznYY5SSQF7pMdC_agI3nG8Ibp1BUb0JUiraRNqUfLhcQb_d9GF4Dh7e74WbRsobRonujTYN1xCaP6TO61jvWrX-L18txXw494Q_cgk","qi":"GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa-Bk0KWNGDjJHZDdDmFhW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUKGzO6Ia6zTKhAVRU","alg":"RS256","kid":"2011-04-29"}`
	// RFC 7517 Appendix A.3, the HMAC key.
	rfc7517HMAC = `{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","kid":"HMAC key used in JWS spec Appendix A.1 example"}`
	// RFC 8037 Appendix A.2, the public key, and A.1, the private key.
	rfc8037Public  = `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	rfc8037Private = `{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
)

// corpusKey builds one JWK: the public members of key, then members in
// the order given (name, value pairs), as a publisher writes them.
func corpusKey(t *testing.T, key crypto.PublicKey, members ...any) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("{")
	add := func(name string, v any) {
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.Write(must(json.Marshal(name)))
		b.WriteString(":")
		b.Write(must(json.Marshal(v)))
	}
	for i := 0; i+1 < len(members); i += 2 {
		add(members[i].(string), members[i+1])
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		add("n", b64(k.N.Bytes()))
		add("e", "AQAB")
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		crv := map[int]string{256: "P-256", 384: "P-384", 521: "P-521"}[k.Curve.Params().BitSize]
		add("crv", crv)
		add("x", b64(k.X.FillBytes(make([]byte, size))))
		add("y", b64(k.Y.FillBytes(make([]byte, size))))
	case ed25519.PublicKey:
		add("crv", "Ed25519")
		add("x", b64(k))
	}
	b.WriteString("}")
	return b.String()
}

// certMembers are the x5c, x5t and x5t#S256 of a self-signed certificate
// for priv.
func certMembers(t *testing.T, priv crypto.Signer) (x5c []string, x5t, x5tS256 string) {
	der := selfSigned(t, priv)
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	return []string{base64.StdEncoding.EncodeToString(der)}, b64(s1[:]), b64(s256[:])
}

func newRSA(bits int) *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, bits)) }

func newEC(c elliptic.Curve) *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(c, rand.Reader)) }

func randomKID(n int) string { return hex.EncodeToString(must(randomBytes(n))) }

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// writeCorpus rebuilds testdata/corpus with fresh keys in the shapes of
// published key sets, and the published test vectors above.
func writeCorpus(t *testing.T) {
	type entry struct {
		name, source string
		keys         []string
		want         corpusWant
	}
	skip := func(i int, kid string, r jwks.SkipReason) jwks.SkippedKey {
		return jwks.SkippedKey{Index: i, KID: kid, Reason: r}
	}
	var entries []entry

	// Google: RS256 keys with alg and use.
	gkids := []string{randomKID(20), randomKID(20)}
	var google []string
	for _, kid := range gkids {
		google = append(google, corpusKey(t, &newRSA(2048).PublicKey, "alg", "RS256", "kid", kid, "use", "sig", "kty", "RSA"))
	}
	entries = append(entries, entry{"google", "shape of https://www.googleapis.com/oauth2/v3/certs (members e, kty, n, alg, kid, use); fresh keys", google, corpusWant{Kept: slices.Sorted(slices.Values(gkids))}})

	// Microsoft Entra ID: RSA keys with x5t, x5c, issuer, no alg.
	var entra, ekids []string
	for range 3 {
		priv := newRSA(2048)
		x5c, x5t, _ := certMembers(t, priv)
		ekids = append(ekids, x5t)
		entra = append(entra, strings.TrimSuffix(corpusKey(t, &priv.PublicKey, "kty", "RSA", "use", "sig", "kid", x5t, "x5t", x5t), "}")+
			`,"x5c":`+string(must(json.Marshal(x5c)))+`,"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0"}`)
	}
	entries = append(entries, entry{"entra-id", "shape of https://login.microsoftonline.com/common/discovery/v2.0/keys (kty, use, kid, x5t, n, e, x5c, issuer; no alg); fresh keys and self-signed certificates", entra, corpusWant{Kept: slices.Sorted(slices.Values(ekids))}})

	// Auth0: RS256 keys with x5c and alg.
	var auth0, akids []string
	for range 2 {
		priv := newRSA(2048)
		x5c, x5t, _ := certMembers(t, priv)
		kid := b64(must(randomBytes(16)))
		akids = append(akids, kid)
		auth0 = append(auth0, strings.TrimSuffix(corpusKey(t, &priv.PublicKey, "kty", "RSA", "use", "sig"), "}")+
			fmt.Sprintf(`,"kid":%q,"x5t":%q,"x5c":%s,"alg":"RS256"}`, kid, x5t, must(json.Marshal(x5c))))
	}
	entries = append(entries, entry{"auth0", "shape of https://{tenant}.auth0.com/.well-known/jwks.json (kty, use, n, e, kid, x5t, x5c, alg); fresh keys", auth0, corpusWant{Kept: slices.Sorted(slices.Values(akids))}})

	// Cognito: RS256 keys, base64 kids.
	var cognito, ckids []string
	for range 2 {
		kid := base64.StdEncoding.EncodeToString(must(randomBytes(32)))
		ckids = append(ckids, kid)
		cognito = append(cognito, corpusKey(t, &newRSA(2048).PublicKey, "alg", "RS256", "kid", kid, "kty", "RSA", "use", "sig"))
	}
	entries = append(entries, entry{"cognito", "shape of https://cognito-idp.{region}.amazonaws.com/{userPoolId}/.well-known/jwks.json (alg, e, kid, kty, n, use); fresh keys", cognito, corpusWant{Kept: slices.Sorted(slices.Values(ckids))}})

	// Keycloak: a realm with every key provider, 8 usable keys of 12.
	kc := func(kid, alg, use string, pub crypto.PublicKey, kty string) string {
		return corpusKey(t, pub, "kid", kid, "kty", kty, "alg", alg, "use", use)
	}
	rsa1 := newRSA(2048)
	x5c, x5t, x5tS := certMembers(t, rsa1)
	badES512 := `{"kid":"kc-es512-broken","kty":"EC","alg":"ES512","use":"sig","crv":"P-521","x":"AKm2","y":"AQ"}`
	keycloak := []string{
		strings.TrimSuffix(kc("kc-rs256", "RS256", "sig", &rsa1.PublicKey, "RSA"), "}") + fmt.Sprintf(`,"x5c":%s,"x5t":%q,"x5t#S256":%q}`, must(json.Marshal(x5c)), x5t, x5tS),
		kc("kc-rsa-oaep", "RSA-OAEP", "enc", &newRSA(2048).PublicKey, "RSA"),
		kc("kc-rs384", "RS384", "sig", &newRSA(2048).PublicKey, "RSA"),
		kc("kc-rs512", "RS512", "sig", &newRSA(2048).PublicKey, "RSA"),
		kc("kc-ps256", "PS256", "sig", &newRSA(2048).PublicKey, "RSA"),
		kc("kc-rsa1-5", "RSA1_5", "enc", &newRSA(2048).PublicKey, "RSA"),
		kc("kc-es256", "ES256", "sig", &newEC(elliptic.P256()).PublicKey, "EC"),
		kc("kc-es384", "ES384", "sig", &newEC(elliptic.P384()).PublicKey, "EC"),
		kc("kc-es512", "ES512", "sig", &newEC(elliptic.P521()).PublicKey, "EC"),
		badES512,
		kc("kc-ecdh-es", "ECDH-ES", "enc", &newEC(elliptic.P256()).PublicKey, "EC"),
		kc("kc-eddsa", "EdDSA", "sig", ed25519.NewKeyFromSeed(must(randomBytes(ed25519.SeedSize))).Public(), "OKP"),
	}
	entries = append(entries, entry{"keycloak", "shape of https://{host}/realms/{realm}/protocol/openid-connect/certs with the rsa, rsa-enc, ecdsa, eddsa and ecdh providers (kid, kty, alg, use, key members, x5c, x5t, x5t#S256) and one malformed ES512 key, where go-jose and jwx refuse the whole set; fresh keys", keycloak, corpusWant{
		Kept:    []string{"kc-eddsa", "kc-es256", "kc-es384", "kc-es512", "kc-ps256", "kc-rs256", "kc-rs384", "kc-rs512"},
		Skipped: []jwks.SkippedKey{skip(1, "kc-rsa-oaep", jwks.SkipUse), skip(5, "kc-rsa1-5", jwks.SkipUse), skip(9, "kc-es512-broken", jwks.SkipInvalid), skip(10, "kc-ecdh-es", jwks.SkipUse)},
	}})
	leaked := slices.Clone(keycloak)
	edSecret := ed25519.NewKeyFromSeed(must(randomBytes(ed25519.SeedSize)))
	leaked[11] = fmt.Sprintf(`{"kid":"kc-eddsa","kty":"OKP","alg":"EdDSA","use":"sig","crv":"Ed25519","x":%q,"d":%q}`, b64(edSecret.Public().(ed25519.PublicKey)), b64(edSecret.Seed()))
	entries = append(entries, entry{"keycloak-leaked-okp", "the keycloak file with its OKP key published with its private member d, as a Keycloak realm was seen to; fresh keys", leaked, corpusWant{Error: "ErrPrivateMaterial", Skipped: []jwks.SkippedKey{skip(11, "kc-eddsa", jwks.SkipPrivate)}}})

	// An eID broker: ES256 with x5c, PS256, and a brainpool key.
	ec1 := newEC(elliptic.P256())
	ex5c, _, ex5tS := certMembers(t, ec1)
	eid := []string{
		strings.TrimSuffix(corpusKey(t, &ec1.PublicKey, "kty", "EC", "kid", "eid-sig-2025", "use", "sig", "alg", "ES256"), "}") + fmt.Sprintf(`,"x5c":%s,"x5t#S256":%q}`, must(json.Marshal(ex5c)), ex5tS),
		corpusKey(t, &newRSA(3072).PublicKey, "kty", "RSA", "kid", "eid-ps256", "use", "sig", "alg", "PS256"),
		`{"kty":"EC","kid":"eid-bp256","use":"sig","crv":"BP-256","x":"ijoJYW0pH7cX3rSdK4cdMmjZL3iXDEtfdZ9tMAIjjAY","y":"K3TTsm62Vmo_sHcsSMB_gYqPUQo0-A56Wtx0_nsw8TI"}`,
		corpusKey(t, &newEC(elliptic.P384()).PublicKey, "kty", "EC", "kid", "eid-es384", "use", "sig", "alg", "ES384"),
	}
	entries = append(entries, entry{"eid-broker", "shape of an eIDAS eID broker's set: EC keys with x5c and x5t#S256, an RSA-PSS key, and a brainpoolP256r1 key (crv BP-256) as some national schemes publish; fresh keys", eid, corpusWant{
		Kept:    []string{"eid-es384", "eid-ps256", "eid-sig-2025"},
		Skipped: []jwks.SkippedKey{skip(2, "eid-bp256", jwks.SkipKeyType)},
	}})

	entries = append(entries,
		entry{"rfc7517-a1", "RFC 7517 Appendix A.1 (Example Public Keys), verbatim", []string{rfc7517EC, rfc7517RSA},
			corpusWant{Kept: []string{"2011-04-29"}, Skipped: []jwks.SkippedKey{skip(0, "1", jwks.SkipUse)}}},
		entry{"rfc7517-a2", "RFC 7517 Appendix A.2 (Example Private Keys), the RSA key, verbatim", []string{rfc7517RSAPrivate},
			corpusWant{Error: "ErrPrivateMaterial", Skipped: []jwks.SkippedKey{skip(0, "2011-04-29", jwks.SkipPrivate)}}},
		entry{"rfc7517-a3", "RFC 7517 Appendix A.3 (Example Symmetric Keys), the HMAC key, verbatim", []string{rfc7517HMAC},
			corpusWant{Error: "ErrPrivateMaterial", Skipped: []jwks.SkippedKey{skip(0, "HMAC key used in JWS spec Appendix A.1 example", jwks.SkipSymmetric)}}},
		entry{"rfc8037-a2", "RFC 8037 Appendix A.2 (Ed25519 Public Key), verbatim: no kid", []string{rfc8037Public},
			corpusWant{Error: "ErrNoUsableKeys", Skipped: []jwks.SkippedKey{skip(0, "", jwks.SkipNoKID)}}},
		entry{"rfc8037-a1", "RFC 8037 Appendix A.1 (Ed25519 Private Key), verbatim", []string{rfc8037Private},
			corpusWant{Error: "ErrPrivateMaterial", Skipped: []jwks.SkippedKey{skip(0, "", jwks.SkipPrivate)}}},
	)

	// RFC 7517 Appendix B: an RSA key with x5c and no alg.
	bpriv := newRSA(2048)
	bx5c, _, _ := certMembers(t, bpriv)
	entries = append(entries, entry{"rfc7517-b", "shape of RFC 7517 Appendix B (Example Use of \"x5c\" Parameter: kty, use, kid 1b94c, n, e, x5c; no alg); a fresh key and certificate",
		[]string{strings.TrimSuffix(corpusKey(t, &bpriv.PublicKey, "kty", "RSA", "use", "sig", "kid", "1b94c"), "}") + `,"x5c":` + string(must(json.Marshal(bx5c))) + "}"},
		corpusWant{Kept: []string{"1b94c"}}})

	// RFC 7520 §3: the keys of "bilbo.baggins@hobbiton.example".
	bilbo := "bilbo.baggins@hobbiton.example"
	p521, r7520 := newEC(elliptic.P521()), newRSA(2048)
	entries = append(entries,
		entry{"rfc7520-s3-public", "shape of RFC 7520 §3.1 (EC P-521 public key) and §3.3 (RSA public key), which share one kid, use sig, no alg; fresh keys",
			[]string{corpusKey(t, &p521.PublicKey, "kty", "EC", "kid", bilbo, "use", "sig"), corpusKey(t, &r7520.PublicKey, "kty", "RSA", "kid", bilbo, "use", "sig")},
			corpusWant{Error: "ErrNoUsableKeys", Skipped: []jwks.SkippedKey{skip(0, bilbo, jwks.SkipDuplicateKID), skip(1, bilbo, jwks.SkipDuplicateKID)}}},
		entry{"rfc7520-s3-all", "shape of RFC 7520 §3.1 to §3.6 as one set: EC and RSA public and private keys and two symmetric keys; fresh keys",
			[]string{
				corpusKey(t, &p521.PublicKey, "kty", "EC", "kid", bilbo, "use", "sig"),
				strings.TrimSuffix(corpusKey(t, &p521.PublicKey, "kty", "EC", "kid", bilbo, "use", "sig"), "}") + fmt.Sprintf(`,"d":%q}`, b64(p521.D.Bytes())),
				corpusKey(t, &r7520.PublicKey, "kty", "RSA", "kid", bilbo, "use", "sig"),
				fmt.Sprintf(`{"kty":"oct","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037","use":"sig","alg":"HS256","k":%q}`, b64(must(randomBytes(32)))),
				fmt.Sprintf(`{"kty":"oct","kid":"1e571774-2e08-40da-8308-e8d68773842d","use":"enc","alg":"A256GCM","k":%q}`, b64(must(randomBytes(32)))),
			},
			corpusWant{Error: "ErrPrivateMaterial", Skipped: []jwks.SkippedKey{skip(1, bilbo, jwks.SkipPrivate)}}},
	)

	// Only HMAC keys.
	var hmac []string
	for i, alg := range []string{"HS256", "HS384", "HS512"} {
		hmac = append(hmac, fmt.Sprintf(`{"kty":"oct","kid":"hmac-%d","alg":%q,"use":"sig","k":%q}`, i, alg, b64(must(randomBytes(64)))))
	}
	entries = append(entries, entry{"all-hmac", "a set of HMAC keys only, as misconfigured issuers publish; fresh keys", hmac, corpusWant{Error: "ErrPrivateMaterial", Skipped: []jwks.SkippedKey{skip(0, "hmac-0", jwks.SkipSymmetric)}}})

	// Broken and dangerous keys beside one good key.
	good := newEC(elliptic.P256())
	off := newEC(elliptic.P256())
	dup := newEC(elliptic.P256())
	weak := newRSA(1024)
	dangerous := []string{
		corpusKey(t, &good.PublicKey, "kty", "EC", "kid", "good", "use", "sig", "alg", "ES256"),
		corpusKey(t, &newEC(elliptic.P256()).PublicKey, "kty", "EC", "use", "sig", "alg", "ES256"),
		`"not an object"`,
		`{"kty":"RSA","kid":"rsa-n-number","alg":"RS256","n":12345,"e":"AQAB"}`,
		`{"kty":"OKP","kid":"x25519","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`,
		fmt.Sprintf(`{"kty":"EC","kid":"secp256k1","crv":"secp256k1","alg":"ES256K","x":%q,"y":%q}`, b64(must(randomBytes(32))), b64(must(randomBytes(32)))),
		corpusKey(t, &newEC(elliptic.P256()).PublicKey, "kty", "EC", "kid", "enc", "use", "enc"),
		corpusKey(t, &newEC(elliptic.P256()).PublicKey, "kty", "EC", "kid", "sign-only", "key_ops", []string{"sign"}),
		corpusKey(t, &newEC(elliptic.P256()).PublicKey, "kty", "EC", "kid", "alg-none", "alg", "none"),
		fmt.Sprintf(`{"kty":"EC","kid":"off-curve","crv":"P-256","alg":"ES256","x":%q,"y":%q}`, b64(off.X.FillBytes(make([]byte, 32))), b64(new(big.Int).Add(off.Y, big.NewInt(1)).FillBytes(make([]byte, 32)))),
		corpusKey(t, &weak.PublicKey, "kty", "RSA", "kid", "rsa-1024", "alg", "RS256"),
		fmt.Sprintf(`{"kty":"RSA","kid":"roca","alg":"RS256","n":%q,"e":"AQAB"}`, b64(rocaModulus().Bytes())),
		corpusKey(t, &newEC(elliptic.P384()).PublicKey, "kty", "EC", "kid", "p384-as-es256", "alg", "ES256"),
		corpusKey(t, &dup.PublicKey, "kty", "EC", "kid", "dup", "alg", "ES256"),
		corpusKey(t, &newEC(elliptic.P256()).PublicKey, "kty", "EC", "kid", "dup", "alg", "ES256"),
		corpusKey(t, &newEC(elliptic.P256()).PublicKey, "kty", "EC", "kid", strings.Repeat("k", 300), "use", "enc"),
	}
	entries = append(entries, entry{"dangerous", "one good key beside keys broken or dangerous in every way RemoteSet checks; fresh keys, a constructed ROCA-fingerprint modulus, a point off the curve", dangerous, corpusWant{
		Kept: []string{"good"},
		Skipped: []jwks.SkippedKey{
			skip(1, "", jwks.SkipNoKID),
			skip(2, "", jwks.SkipInvalid),
			skip(3, "rsa-n-number", jwks.SkipInvalid),
			skip(4, "x25519", jwks.SkipKeyType),
			skip(5, "secp256k1", jwks.SkipKeyType),
			skip(6, "enc", jwks.SkipUse),
			skip(7, "sign-only", jwks.SkipKeyOps),
			skip(8, "alg-none", jwks.SkipAlgorithm),
			skip(9, "off-curve", jwks.SkipInvalidPoint),
			skip(10, "rsa-1024", jwks.SkipWeakRSA),
			skip(11, "roca", jwks.SkipROCA),
			skip(12, "p384-as-es256", jwks.SkipKeyMismatch),
			skip(13, "dup", jwks.SkipDuplicateKID),
			skip(14, "dup", jwks.SkipDuplicateKID),
			skip(15, strings.Repeat("k", 64)+"...", jwks.SkipUse),
		},
	}})
	entries = append(entries, entry{"private-members", "RSA and EC public keys that carry one private member each (p; d), beside a good key; fresh keys", []string{
		corpusKey(t, &good.PublicKey, "kty", "EC", "kid", "good", "alg", "ES256"),
		strings.TrimSuffix(corpusKey(t, &weak.PublicKey, "kty", "RSA", "kid", "rsa-p"), "}") + fmt.Sprintf(`,"p":%q}`, b64(weak.Primes[0].Bytes())),
	}, corpusWant{Error: "ErrPrivateMaterial", Skipped: []jwks.SkippedKey{skip(1, "rsa-p", jwks.SkipPrivate)}}})

	if err := os.MkdirAll("testdata/corpus", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw := json.RawMessage(`{"keys":[` + strings.Join(e.keys, ",") + `]}`)
		out, err := json.MarshalIndent(corpusFile{Source: e.source, Want: e.want, JWKS: raw}, "", "  ")
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		if err := os.WriteFile(filepath.Join("testdata/corpus", e.name+".json"), append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
