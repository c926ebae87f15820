package jwks_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/verifier"
)

// rocaModulus is a 2048-bit odd number with the ROCA fingerprint: modulo
// each small prime of the test it is a power of 65537, as the moduli of
// the flawed Infineon library are.
func rocaModulus() *big.Int {
	one := big.NewInt(1)
	m := big.NewInt(1)
	for _, p := range []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167} {
		m.Mul(m, big.NewInt(p))
	}
	t := new(big.Int).Div(new(big.Int).Lsh(one, 2047), m)
	t.Add(t, one)
	n := t.Mul(t, m).Add(t, new(big.Int).Exp(big.NewInt(65537), big.NewInt(12345), m))
	if n.Bit(0) == 0 {
		n.Add(n, m) // m is odd
	}
	return n
}

// logBuffer is a slog handler target that tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestRemoteSetSkipReasons(t *testing.T) {
	long := strings.Repeat("K", 40_000)
	offCurve := fmt.Sprintf(`{"kty":"EC","kid":"off-curve","crv":"P-256","x":%q,"y":%q}`, b64(ecKey().X.Bytes()), b64(new(big.Int).Add(ecKey().Y, big.NewInt(1)).FillBytes(make([]byte, 32))))
	roca := fmt.Sprintf(`{"kty":"RSA","kid":"roca","alg":"RS256","n":%q,"e":"AQAB"}`, b64(rocaModulus().Bytes()))
	good := func(kid string) string {
		return jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": kid, "alg": "ES256"})
	}
	tests := []struct {
		name string
		jwk  string
		kid  string // the kid looked up
		want jwks.SkipReason
	}{
		{"no kid", jwkJSON(t, &ecKey().PublicKey, map[string]any{"alg": "ES256"}), "", jwks.SkipNoKID},
		{"not an object", `"just a string"`, "", jwks.SkipInvalid},
		{"use enc", jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "enc", "use": "enc"}), "enc", jwks.SkipUse},
		{"key_ops sign", jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "sign-only", "key_ops": []string{"sign"}}), "sign-only", jwks.SkipKeyOps},
		{"alg none", jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "none", "alg": "none"}), "none", jwks.SkipAlgorithm},
		{"alg HS256 on an EC key", jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "hs", "alg": "HS256"}), "hs", jwks.SkipAlgorithm},
		{"alg RSA-OAEP", jwkJSON(t, &rsaKey().PublicKey, map[string]any{"kid": "oaep", "alg": "RSA-OAEP"}), "oaep", jwks.SkipAlgorithm},
		{"post-quantum kty", `{"kty":"AKP","kid":"future","alg":"ML-DSA-65","pub":"AAAA"}`, "future", jwks.SkipKeyType},
		{"X25519", `{"kty":"OKP","kid":"x25519","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`, "x25519", jwks.SkipKeyType},
		{"secp256k1", `{"kty":"EC","kid":"k1","crv":"secp256k1","x":"AAAA","y":"AAAA"}`, "k1", jwks.SkipKeyType},
		{"brainpool", `{"kty":"EC","kid":"bp","crv":"BP-256","x":"AAAA","y":"AAAA"}`, "bp", jwks.SkipKeyType},
		{"broken base64", `{"kty":"EC","kid":"broken","alg":"ES256","crv":"P-256","x":"!!","y":"!!"}`, "broken", jwks.SkipInvalid},
		{"point not on the curve", offCurve, "off-curve", jwks.SkipInvalidPoint},
		{"RSA 1024", fmt.Sprintf(`{"kty":"RSA","kid":"rsa-1024","alg":"RS256","n":%q,"e":"AQAB"}`, b64(rsaWeak().N.Bytes())), "rsa-1024", jwks.SkipWeakRSA},
		{"ROCA", roca, "roca", jwks.SkipROCA},
		{"wrong curve for alg", jwkJSON(t, &ec384().PublicKey, map[string]any{"kid": "wrong-curve", "alg": "ES256"}), "wrong-curve", jwks.SkipKeyMismatch},
		{"EC key with an RSA alg", jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "ec-rs256", "alg": "RS256"}), "ec-rs256", jwks.SkipKeyMismatch},
		{"duplicate kid", good("dup") + "," + good("dup"), "dup", jwks.SkipDuplicateKID},
		{"long kid", jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": long, "use": "enc"}), long, jwks.SkipUse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			srv := newServer()
			srv.mode.Store(doc(good("good"), tc.jwk))
			rs := newRemote(t, srv.start(t), jwks.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if diff := cmp.Diff([]string{"good"}, rs.Keys()); diff != "" {
				t.Errorf("usable kids (-want +got):\n%s", diff)
			}
			st := rs.Stats()
			if st.Keys != 1 || len(st.Skipped) == 0 {
				t.Fatalf("Stats: %d keys, skipped %v; want 1 key and skipped ones", st.Keys, st.Skipped)
			}
			wantKID := tc.kid
			if len(wantKID) > 64 {
				wantKID = wantKID[:64] + "..."
			}
			for _, sk := range st.Skipped {
				if sk.Reason != tc.want || sk.KID != wantKID || sk.Index == 0 {
					t.Errorf("skipped %+v, want reason %q, kid %q, index > 0", sk, tc.want, wantKID)
				}
			}
			if diff := cmp.Diff(st.Skipped, rs.Skipped()); diff != "" {
				t.Errorf("Skipped() differs from Stats().Skipped (-stats +skipped):\n%s", diff)
			}
			level := "level=WARN"
			if tc.want == jwks.SkipUse || tc.want == jwks.SkipKeyOps || tc.want == jwks.SkipKeyType {
				level = "level=INFO" // not a signature key, nothing wrong with it
			}
			if got := logs.String(); !strings.Contains(got, level+` msg="jwks: key skipped"`) || !strings.Contains(got, string(tc.want)) || strings.Contains(got, strings.Repeat("K", 65)) {
				t.Errorf("log = %q, want a skipped-key line at %s with reason %q and a clipped kid", got, level, tc.want)
			}
			if tc.kid == "" {
				return
			}
			_, err := rs.VerificationKey(ctxT(t), tc.kid)
			if !errors.Is(err, verifier.ErrKeyUnusable) || errors.Is(err, verifier.ErrUnknownKID) {
				t.Fatalf("VerificationKey: got %v, want ErrKeyUnusable and not ErrUnknownKID", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "kid present but unusable: "+string(tc.want)) || len(msg) > 200 {
				t.Errorf("error %q (%d bytes): want %q, at most 200 bytes", msg[:min(len(msg), 200)], len(msg), tc.want)
			}
			if got := srv.requests.Load(); got != 1 {
				t.Errorf("fetches: got %d, want 1 (an unusable kid triggers no refresh)", got)
			}
		})
	}
}

func TestRemoteSetRefusesPrivateMaterial(t *testing.T) {
	tests := []struct {
		name string
		jwk  string
	}{
		{"EC private key", jwkJSON(t, ecKey(), map[string]any{"kid": "leak", "alg": "ES256"})},
		{"RSA private key", jwkJSON(t, rsaKey(), map[string]any{"kid": "leak", "alg": "RS256"})},
		{"OKP private key (Keycloak)", `{"kty":"OKP","kid":"leak","crv":"Ed25519","use":"sig","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`},
		{"RSA public with only p", fmt.Sprintf(`{"kty":"RSA","kid":"leak","n":%q,"e":"AQAB","p":"AQAB"}`, b64(rsaKey().N.Bytes()))},
		{"HMAC key", jwkJSON(t, []byte("0123456789abcdef0123456789abcdef"), map[string]any{"kid": "hmac", "alg": "HS256"})},
		{"oct without k", `{"kty":"oct","kid":"oct"}`},
		{"k on an EC key", `{"kty":"EC","kid":"k","crv":"P-256","x":"AAAA","y":"AAAA","k":"AAAA"}`},
		{"private key that is also malformed", `{"kty":"EC","kid":"bad","crv":"P-256","d":"!!"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer()
			url := srv.start(t)
			srv.mode.Store(doc(jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "k-ec", "alg": "ES256"}), tc.jwk))
			_, err := jwks.NewRemoteSet(ctxT(t), url, jwks.AllowInsecureLoopback(), jwks.WithLogger(quiet))
			if !errors.Is(err, jwks.ErrPrivateMaterial) {
				t.Fatalf("NewRemoteSet: got %v, want ErrPrivateMaterial", err)
			}
			if strings.Contains(err.Error(), "nWGxne") || strings.Contains(err.Error(), `"d"`) {
				t.Errorf("error quotes key material: %v", err)
			}

			// A set in use keeps its last good keys when the publisher
			// starts leaking.
			bad := srv.mode.Load()
			srv.mode.Store("ok")
			var logs logBuffer
			rs := newRemote(t, url, jwks.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			srv.mode.Store(bad)
			if err := rs.Refresh(ctxT(t)); !errors.Is(err, jwks.ErrPrivateMaterial) {
				t.Fatalf("Refresh: got %v, want ErrPrivateMaterial", err)
			}
			if diff := cmp.Diff([]string{"k-ec", "k-rsa"}, rs.Keys()); diff != "" {
				t.Errorf("kids after the refusal (-want +got):\n%s", diff)
			}
			if st := rs.Stats(); !errors.Is(st.LastError, jwks.ErrPrivateMaterial) || st.Failures != 1 {
				t.Errorf("Stats: LastError %v, Failures %d; want ErrPrivateMaterial, 1", st.LastError, st.Failures)
			}
			if got := logs.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "key set refused") {
				t.Errorf("log = %q, want an ERROR line for the refused set", got)
			}
		})
	}
}

func TestRemoteSetNoUsableKeys(t *testing.T) {
	entraLike := doc(jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "enc-only", "use": "enc"}), `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`)
	srv := newServer(jwks.WithMaxAge(time.Minute))
	url := srv.start(t)
	srv.mode.Store(entraLike)
	_, err := jwks.NewRemoteSet(ctxT(t), url, jwks.AllowInsecureLoopback(), jwks.WithLogger(quiet))
	if !errors.Is(err, jwks.ErrNoUsableKeys) {
		t.Fatalf("NewRemoteSet: got %v, want ErrNoUsableKeys", err)
	}
	for _, want := range []string{`kid "enc-only"): use not sig`, `key 1 (kid ""): no kid`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}

	srv.mode.Store("ok")
	rs := newRemote(t, url, jwks.WithMinRefreshInterval(time.Nanosecond))
	srv.mode.Store(entraLike)
	if err := rs.Refresh(ctxT(t)); !errors.Is(err, jwks.ErrNoUsableKeys) {
		t.Fatalf("Refresh: got %v, want ErrNoUsableKeys", err)
	}
	if _, err := rs.VerificationKey(ctxT(t), "k-ec"); err != nil {
		t.Errorf("the last good set no longer serves: %v", err)
	}
}

// selfSigned returns a DER certificate for key, as Entra ID publishes in
// x5c.
func selfSigned(t *testing.T, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// token signs an access token for kid with alg.
func token(t *testing.T, alg string, priv crypto.Signer, kid string) string {
	t.Helper()
	a, ok := jose.Lookup(alg)
	if !ok {
		t.Fatalf("alg %s", alg)
	}
	h := must(jose.AppendHeader(nil, alg, kid, "at+jwt"))
	now := time.Now()
	c := tokenkms.Claims{Issuer: "https://login.example/v2.0", Subject: "u-1", Audience: []string{"api://orders"}, ClientID: "c-1", ID: "j-" + alg + kid, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
	p := must(jose.AppendClaims(nil, &c))
	input := b64(h) + "." + b64(p)
	sig, err := a.Sign(priv, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// TestRemoteSetWithoutAlg loads a set shaped like Microsoft Entra ID's
// (RSA keys with x5t, x5c, use and issuer, no alg) and keys of the other
// types without alg, and verifies tokens with them through a Verifier.
func TestRemoteSetWithoutAlg(t *testing.T) {
	cert := selfSigned(t, rsaKey())
	thumb := sha1.Sum(cert)
	x5t := b64(thumb[:])
	entra := fmt.Sprintf(`{"kty":"RSA","use":"sig","kid":"nOo3ZDrODXEK1jKWhXslHR_KXEg","x5t":%q,"n":%q,"e":"AQAB","x5c":[%q],"issuer":"https://login.microsoftonline.com/{tenantid}/v2.0"}`,
		x5t, b64(rsaKey().N.Bytes()), base64.StdEncoding.EncodeToString(cert))
	srv := newServer()
	srv.mode.Store(doc(
		entra,
		jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "ec256", "use": "sig"}),
		jwkJSON(t, &ec384().PublicKey, map[string]any{"kid": "ec384"}),
		jwkJSON(t, edKey().Public(), map[string]any{"kid": "ed"}),
	))
	rs := newRemote(t, srv.start(t))
	if st := rs.Stats(); st.Keys != 4 || len(st.Skipped) != 0 {
		t.Fatalf("Stats: %d keys, skipped %v; want 4 keys, none skipped", st.Keys, st.Skipped)
	}
	k, err := rs.VerificationKey(ctxT(t), "nOo3ZDrODXEK1jKWhXslHR_KXEg")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}, k.Algorithms); diff != "" || k.Algorithm != "" {
		t.Errorf("Entra key: Algorithm %q, Algorithms (-want +got):\n%s", k.Algorithm, diff)
	}

	entraKID := "nOo3ZDrODXEK1jKWhXslHR_KXEg"
	tests := []struct {
		name   string
		policy []string // Policy.Algorithms
		alg    string
		priv   crypto.Signer
		kid    string
		want   error
	}{
		{"RSA key, RS256", nil, "RS256", rsaKey(), entraKID, nil},
		{"RSA key, PS256", nil, "PS256", rsaKey(), entraKID, nil},
		{"RSA key, PS256 outside the Policy", []string{"RS256"}, "PS256", rsaKey(), entraKID, verifier.ErrAlgorithm},
		{"RSA key, RS512 when the Policy allows it", []string{"RS512"}, "RS512", rsaKey(), entraKID, nil},
		{"RSA key, ES256", nil, "ES256", ecKey(), entraKID, verifier.ErrAlgorithm},
		{"P-256 key, ES256", nil, "ES256", ecKey(), "ec256", nil},
		{"P-256 key, RS256", nil, "RS256", rsaKey(), "ec256", verifier.ErrAlgorithm},
		{"P-384 key, ES384", nil, "ES384", ec384(), "ec384", nil},
		{"Ed25519 key, EdDSA", nil, "EdDSA", edKey(), "ed", nil},
		{"Ed25519 key, ES256", nil, "ES256", ecKey(), "ed", verifier.ErrAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verifier.New(rs, verifier.Policy{Issuer: "https://login.example/v2.0", Audience: []string{"api://orders"}, Algorithms: tc.policy}, verifier.UnsafeWithoutRevocation())
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(ctxT(t), token(t, tc.alg, tc.priv, tc.kid))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Verify: got %v, want %v", err, tc.want)
			}
		})
	}

	srv2 := newServer()
	srv2.mode.Store(doc(entra))
	onlyPS := newRemote(t, srv2.start(t), jwks.WithAlgorithms("PS256"))
	if k, err := onlyPS.VerificationKey(ctxT(t), entraKID); err != nil || k.Algorithm != "PS256" || len(k.Algorithms) != 0 {
		t.Errorf("WithAlgorithms(PS256): got %q %v, %v; want PS256 alone", k.Algorithm, k.Algorithms, err)
	}
	srv3 := newServer()
	srv3.mode.Store(doc(entra, jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "ec256"})))
	onlyEd := newRemote(t, srv3.start(t), jwks.WithAlgorithms("EdDSA", "ES256"))
	if _, err := onlyEd.VerificationKey(ctxT(t), entraKID); !errors.Is(err, verifier.ErrKeyUnusable) || !strings.Contains(err.Error(), string(jwks.SkipAlgorithm)) {
		t.Errorf("RSA key without an allowed RSA alg: got %v, want ErrKeyUnusable (%s)", err, jwks.SkipAlgorithm)
	}
	v, err := verifier.New(onlyEd, verifier.Policy{Issuer: "https://login.example/v2.0", Audience: []string{"api://orders"}}, verifier.UnsafeWithoutRevocation())
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctxT(t), token(t, "RS256", rsaKey(), entraKID))
	if !errors.Is(err, verifier.ErrKeyUnusable) || !strings.HasPrefix(err.Error(), "verifier: kid present but unusable: "+string(jwks.SkipAlgorithm)) {
		t.Errorf("Verify with a skipped kid: got %v, want \"verifier: kid present but unusable: %s...\"", err, jwks.SkipAlgorithm)
	}
}

// TestRemoteSetUnknownKIDBudget: a key published right after a background
// fetch is found on first use; the fetches for unknown kids stay single
// and bounded.
func TestRemoteSetUnknownKIDBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(jwks.WithMaxAge(time.Hour))
		rs := bubbleRemote(t, srv, jwks.WithMinRefreshInterval(time.Minute))
		if err := rs.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(45 * time.Minute)
		synctest.Wait()
		if got := srv.requests.Load(); got != 2 {
			t.Fatalf("fetches after the background refresh: got %d, want 2", got)
		}
		srv.src.set(fourKeys()...)
		time.Sleep(time.Second)
		if _, err := rs.VerificationKey(t.Context(), "k-ed"); err != nil {
			t.Fatalf("key published after the background fetch, first use: %v", err)
		}
		if got := srv.requests.Load(); got != 3 {
			t.Errorf("fetches: got %d, want 3", got)
		}
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				if _, err := rs.VerificationKey(t.Context(), fmt.Sprintf("forged-%d", i)); !errors.Is(err, verifier.ErrUnknownKID) {
					t.Errorf("forged kid: got %v, want ErrUnknownKID", err)
				}
			})
		}
		wg.Wait()
		if got := srv.requests.Load(); got != 3 {
			t.Errorf("fetches after forged kids within the interval: got %d, want 3", got)
		}
	})
}

// TestRemoteSetUnknownKIDJoinsFetchInFlight: a miss that finds a fetch in
// flight, which read the document before its key was published, waits for
// it and then fetches again.
func TestRemoteSetUnknownKIDJoinsFetchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer()
		rs := bubbleRemote(t, srv, jwks.WithMinRefreshInterval(time.Minute))
		srv.hold = make(chan struct{})
		srv.mode.Store("held")
		refreshed := make(chan error)
		go func() { refreshed <- rs.Refresh(t.Context()) }()
		synctest.Wait()
		srv.mode.Store("ok")
		srv.src.set(fourKeys()...)
		found := make(chan error)
		go func() {
			_, err := rs.VerificationKey(t.Context(), "k-ed")
			found <- err
		}()
		synctest.Wait()
		close(srv.hold)
		if err := <-refreshed; err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if err := <-found; err != nil {
			t.Errorf("key published while a fetch was in flight: %v", err)
		}
		if got := srv.requests.Load(); got != 3 {
			t.Errorf("fetches: got %d, want 3", got)
		}
	})
}

// TestRemoteSetExpiredRefreshesItself: a set that was never started
// refreshes on its own once expired, so a key withdrawn by its publisher
// stops verifying soon after, not at expiry + MaxStale.
func TestRemoteSetExpiredRefreshesItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(jwks.WithMaxAge(time.Minute))
		rs := bubbleRemote(t, srv, jwks.WithMinRefreshInterval(10*time.Second))
		srv.src.set(fourKeys()[1:]...) // k-rsa withdrawn
		time.Sleep(time.Minute - time.Second)
		if _, err := rs.VerificationKey(t.Context(), "k-rsa"); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
		synctest.Wait()
		if got := srv.requests.Load(); got != 1 {
			t.Errorf("fetches before expiry: got %d, want 1", got)
		}
		time.Sleep(2 * time.Second)
		for range 20 {
			rs.VerificationKey(t.Context(), "k-rsa")
		}
		synctest.Wait()
		if got := srv.requests.Load(); got != 2 {
			t.Errorf("fetches after expiry: got %d, want 2 (one, rate-limited)", got)
		}
		if diff := cmp.Diff([]string{"k-ec", "k-ec384", "k-ed"}, rs.Keys()); diff != "" {
			t.Errorf("kids after the refresh (-want +got):\n%s", diff)
		}

		// A publisher that stays down: one attempt per interval, and the
		// last good set until MaxStale.
		srv.mode.Store("500")
		time.Sleep(time.Minute + time.Second)
		for range 20 {
			if _, err := rs.VerificationKey(t.Context(), "k-ec"); err != nil {
				t.Fatalf("last good key while the publisher is down: %v", err)
			}
		}
		synctest.Wait()
		if got := srv.requests.Load(); got != 3 {
			t.Errorf("fetches: got %d, want 3", got)
		}
		time.Sleep(5 * time.Second)
		rs.VerificationKey(t.Context(), "k-ec")
		synctest.Wait()
		if got := srv.requests.Load(); got != 3 {
			t.Errorf("fetches within the interval: got %d, want 3", got)
		}
		time.Sleep(5 * time.Second)
		rs.VerificationKey(t.Context(), "k-ec")
		synctest.Wait()
		if got := srv.requests.Load(); got != 4 {
			t.Errorf("fetches after the interval: got %d, want 4", got)
		}
	})
}

func TestRemoteSetClipsKID(t *testing.T) {
	srv := newServer()
	rs := newRemote(t, srv.start(t), jwks.WithMinRefreshInterval(time.Hour))
	long := strings.Repeat("A", 40_000)
	for i := range 3 { // a fetch, then rate-limited, then rate-limited again
		_, err := rs.VerificationKey(ctxT(t), long)
		if !errors.Is(err, verifier.ErrUnknownKID) {
			t.Fatalf("call %d: got %v, want ErrUnknownKID", i, err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("call %d: error of %d bytes, want at most 200", i, len(err.Error()))
		}
	}
}

// TestRemoteSetWeakRSAWhateverJWX: a host that lowers jwx's process-wide
// RSA minimum does not lower the RemoteSet's.
func TestRemoteSetWeakRSAWhateverJWX(t *testing.T) {
	jwk.Configure(jwk.WithMinRSAModulusBits(1024))
	t.Cleanup(func() { jwk.Configure(jwk.WithMinRSAModulusBits(2048)) })
	srv := newServer()
	srv.mode.Store(doc(jwkJSON(t, &ecKey().PublicKey, map[string]any{"kid": "good", "alg": "ES256"}), jwkJSON(t, &rsaWeak().PublicKey, map[string]any{"kid": "weak"})))
	rs := newRemote(t, srv.start(t))
	want := []jwks.SkippedKey{{Index: 1, KID: "weak", Reason: jwks.SkipWeakRSA}}
	if diff := cmp.Diff(want, rs.Skipped()); diff != "" {
		t.Errorf("Skipped (-want +got):\n%s", diff)
	}
}

// TestRemoteSetRecoversUnstarted: a set never started, stale past MaxStale
// while its publisher was down, recovers by itself once it is back.
func TestRemoteSetRecoversUnstarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(jwks.WithMaxAge(time.Minute))
		rs := bubbleRemote(t, srv, jwks.WithMaxStale(time.Minute))
		srv.mode.Store("500")
		time.Sleep(2*time.Minute + time.Second)
		_, err := rs.VerificationKey(t.Context(), "k-ec")
		if !errors.Is(err, jwks.ErrStale) || !errors.Is(err, verifier.ErrKeySource) {
			t.Fatalf("past MaxStale: got %v, want ErrStale and ErrKeySource", err)
		}
		synctest.Wait()
		srv.mode.Store("ok")
		time.Sleep(jwks.DefaultMinRefreshInterval)
		rs.VerificationKey(t.Context(), "k-ec")
		synctest.Wait()
		if _, err := rs.VerificationKey(t.Context(), "k-ec"); err != nil {
			t.Errorf("after the publisher came back: %v", err)
		}
		if got := srv.requests.Load(); got != 3 {
			t.Errorf("fetches: got %d, want 3 (initial, failed, recovered)", got)
		}
	})
}

// TestRemoteSetDuplicateKID: two usable keys with one kid are both
// skipped, each reported once, and the kid's error says why, even beside
// a key of that kid skipped for another reason.
func TestRemoteSetDuplicateKID(t *testing.T) {
	ec := func(fields map[string]any) string { return jwkJSON(t, &ecKey().PublicKey, fields) }
	srv := newServer()
	srv.mode.Store(doc(
		ec(map[string]any{"kid": "good", "alg": "ES256"}),
		ec(map[string]any{"kid": "dup", "use": "enc"}),
		ec(map[string]any{"kid": "dup", "alg": "ES256"}),
		jwkJSON(t, edKey().Public(), map[string]any{"kid": "dup"}),
	))
	rs := newRemote(t, srv.start(t))
	want := []jwks.SkippedKey{{Index: 1, KID: "dup", Reason: jwks.SkipUse}, {Index: 2, KID: "dup", Reason: jwks.SkipDuplicateKID}, {Index: 3, KID: "dup", Reason: jwks.SkipDuplicateKID}}
	if diff := cmp.Diff(want, rs.Skipped()); diff != "" {
		t.Errorf("Skipped (-want +got):\n%s", diff)
	}
	if _, err := rs.VerificationKey(ctxT(t), "dup"); !errors.Is(err, verifier.ErrKeyUnusable) || !strings.Contains(err.Error(), string(jwks.SkipDuplicateKID)) {
		t.Errorf("VerificationKey(dup): got %v, want ErrKeyUnusable (%s)", err, jwks.SkipDuplicateKID)
	}
}
