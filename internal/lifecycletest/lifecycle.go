package lifecycletest

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// The key set Run and Bench create, the name of the backend under test in
// the keyring's Config.Providers, and the iss and aud of the tokens.
const (
	Set       = "access-tokens"
	Backend   = "backend-under-test"
	IssuerURL = "https://core.test"
	Audience  = "api"
)

// Timeout bounds all the backend calls of one Run.
const Timeout = 3 * time.Minute

// Run takes a key set whose keys live in provider through their whole life
// with signing algorithm alg, and fails tb at the first step that goes
// wrong:
//
//  1. create: the key is generated in the backend, not published while
//     nobody approved it, and signs nothing (Issue fails with
//     keyring.ErrNoActiveKey);
//  2. approve (by another principal): published; activate (by a third);
//  3. issue a token through signer.Issuer; it verifies with verifier.New
//     on the keyring, and its signature verifies under the public key the
//     backend gives for the key;
//  4. rotate and approve the successor: it is published at once, and a
//     Tick before the pre-publication delay leaves the old key Active;
//  5. past the pre-publication delay, Tick activates the successor; the
//     old key is Retiring and its token still verifies; the JWKS serves
//     both keys, each equal to the backend's public key (jwk.ParseKey,
//     jwk.Export, Equal);
//  6. past the grace window, Tick retires the old key: its token is
//     rejected with verifier.ErrKeyRetired and it leaves the JWKS;
//  7. emergency rotation of the Active key: its token is rejected with
//     verifier.ErrKeyCompromised, a Signer obtained before the call refuses
//     to sign (keyring.ErrFrozen), and a fresh key from the same backend
//     signs tokens that verify; the JWKS serves that key alone.
//
// Every call to the backend is bounded by Timeout.
func Run(tb testing.TB, provider signer.Provider, alg string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), Timeout)
	defer cancel()
	r := newRing(tb, ctx, provider, alg)
	srv := httptest.NewServer(jwks.NewHandler(r.kr))
	defer srv.Close()

	// 1. Create.
	k1, err := r.kr.Create(r.as(keyringtest.Issuer), Set)
	if err != nil {
		tb.Fatalf("create: %v", err)
	}
	if k1.State != keyring.Pending || k1.Backend != Backend || k1.BackendRef.IsZero() || k1.Algorithm != alg {
		tb.Fatalf("create: key %v backend %q ref empty %t; want pending, %s, %q, a reference", k1, k1.Backend, k1.BackendRef.IsZero(), alg, Backend)
	}
	r.checkJWKS(srv, "after create, before approval")
	if _, err := r.issuer.Issue(ctx, claims("alice")); !errors.Is(err, keyring.ErrNoActiveKey) {
		tb.Fatalf("issue with only a pending key: got %v, want %v", err, keyring.ErrNoActiveKey)
	}

	// 2. Approve, activate.
	if err := r.kr.Approve(r.as(keyringtest.Approver), k1.KID); err != nil {
		tb.Fatalf("approve: %v", err)
	}
	r.checkJWKS(srv, "after approval", k1)
	if err := r.kr.Activate(r.as(keyringtest.Deployer), k1.KID); err != nil {
		tb.Fatalf("activate: %v", err)
	}
	r.wantState(k1, keyring.Active)

	// 3. Issue, verify.
	tok1 := r.mustIssue("alice", k1)
	r.mustVerify(tok1, "alice")

	// 4. Rotate: the successor is published but does not sign yet.
	k2, err := r.kr.Rotate(r.as(keyringtest.Issuer), Set)
	if err != nil {
		tb.Fatalf("rotate: %v", err)
	}
	if k2.Backend != Backend || k2.KID == k1.KID {
		tb.Fatalf("rotate: successor %v on backend %q; want a new key on %q", k2, k2.Backend, Backend)
	}
	if err := r.kr.Approve(r.as(keyringtest.Approver), k2.KID); err != nil {
		tb.Fatalf("approve successor: %v", err)
	}
	r.tick("before the pre-publication delay")
	r.wantActive(k1)
	r.wantState(k2, keyring.Pending)
	r.checkJWKS(srv, "during pre-publication", k1, k2)

	// 5. Pre-publication over: the successor signs, the old key verifies.
	r.clock.Advance(r.pol.PrePublication)
	r.tick("after the pre-publication delay")
	r.wantActive(k2)
	r.wantState(k1, keyring.Retiring)
	r.mustVerify(tok1, "alice")
	tok2 := r.mustIssue("bob", k2)
	r.mustVerify(tok2, "bob")
	r.checkJWKS(srv, "during grace", k1, k2)

	// 6. Grace over: the old key is retired.
	r.clock.Advance(r.pol.Grace)
	r.tick("after the grace window")
	r.wantState(k1, keyring.Retired)
	r.wantRejected(tok1, verifier.ErrKeyRetired)
	r.checkJWKS(srv, "after grace", k2)

	// 7. Emergency rotation of the Active key.
	tok2 = r.mustIssue("carol", k2)
	r.mustVerify(tok2, "carol")
	before, err := r.kr.Signer(ctx, Set)
	if err != nil {
		tb.Fatalf("signer before the emergency rotation: %v", err)
	}
	k3, err := r.kr.EmergencyRotate(r.as(keyringtest.SecurityOfficer), k2.KID,
		keyring.Incident{ID: "INC-lifecycle", Reason: "key exposure drill", Severity: "high"})
	if err != nil {
		tb.Fatalf("emergency rotation: %v", err)
	}
	if k3.State != keyring.Active || k3.Backend != Backend || k3.KID == k2.KID || k3.KID == k1.KID {
		tb.Fatalf("emergency rotation: new key %v on backend %q; want a fresh active key on %q", k3, k3.Backend, Backend)
	}
	r.wantState(k2, keyring.Compromised)
	r.wantRejected(tok2, verifier.ErrKeyCompromised)
	if sig, err := before.Sign(ctx, []byte("eyJ9.eyJ9")); !errors.Is(err, keyring.ErrFrozen) || sig != nil {
		tb.Fatalf("sign with the compromised key's signer: got %d bytes, %v; want %v", len(sig), err, keyring.ErrFrozen)
	}
	tok3 := r.mustIssue("dave", k3)
	r.mustVerify(tok3, "dave")
	r.checkJWKS(srv, "after the emergency rotation", k3)
}

// ring is a keyring with one key set on the backend under test, its fake
// clock, an Issuer and a Verifier.
type ring struct {
	tb       testing.TB
	ctx      context.Context
	prov     signer.Provider
	alg      string
	clock    *keyringtest.Clock
	kr       *keyring.Keyring
	pol      keyring.SetPolicy
	issuer   *signer.Issuer
	verifier *verifier.Verifier
}

func newRing(tb testing.TB, ctx context.Context, prov signer.Provider, alg string) *ring {
	tb.Helper()
	return newRingOn(tb, ctx, prov, alg, nil, keyringtest.NewClock(keyringtest.Start))
}

// newRingOn is newRing over store (nil: in memory) and clock, with the
// keyring's default revocation list for that store.
func newRingOn(tb testing.TB, ctx context.Context, prov signer.Provider, alg string, store keyring.KeyStore, clock *keyringtest.Clock) *ring {
	tb.Helper()
	kr, err := keyring.New(ctx, keyring.Config{
		Store:     store,
		Providers: map[string]signer.Provider{Backend: prov},
		Audit:     audit.NewRecorder(), // Revocations: the store's default list
		Now:       clock.Now,
		Sets:      []keyring.SetPolicy{{Name: Set, Owner: "team-identity", Backend: Backend, Algorithm: alg}},
	})
	if err != nil {
		tb.Fatalf("keyring.New: %v", err)
	}
	pol, err := kr.Policy(Set)
	if err != nil {
		tb.Fatalf("policy: %v", err)
	}
	v, err := verifier.New(kr, verifier.Policy{Issuer: IssuerURL, Audience: []string{Audience}}, verifier.WithNow(clock.Now))
	if err != nil {
		tb.Fatalf("verifier.New: %v", err)
	}
	return &ring{tb: tb, ctx: ctx, prov: prov, alg: alg, clock: clock, kr: kr, pol: pol, issuer: newIssuer(tb, kr, pol, clock), verifier: v}
}

// newIssuer mints tokens from keys' signer for Set. Tokens live as long as
// the set allows: longer than the pre-publication delay, so that a token
// of the old key is still unexpired while the successor takes over.
func newIssuer(tb testing.TB, keys signer.ActiveKeys, pol keyring.SetPolicy, clock *keyringtest.Clock) *signer.Issuer {
	tb.Helper()
	iss, err := signer.NewIssuer(keys, signer.IssuerConfig{
		Set: Set, Issuer: IssuerURL, Audience: []string{Audience},
		DefaultLifetime: pol.MaxTokenLifetime, MaxLifetime: pol.MaxTokenLifetime, Now: clock.Now,
	})
	if err != nil {
		tb.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func (r *ring) as(p keyring.Principal) context.Context { return keyring.WithPrincipal(r.ctx, p) }

func claims(subject string) tokenkms.Claims {
	return tokenkms.Claims{Subject: subject, ClientID: "lifecycle-client"}
}

func (r *ring) tick(when string) {
	r.tb.Helper()
	if err := r.kr.Tick(r.ctx); err != nil {
		r.tb.Fatalf("tick %s: %v", when, err)
	}
}

func (r *ring) wantState(k keyring.Key, want keyring.State) {
	r.tb.Helper()
	got, err := r.kr.Key(r.as(keyringtest.Core), k.KID)
	if err != nil {
		r.tb.Fatalf("read key %s: %v", k.KID, err)
	}
	if got.State != want {
		r.tb.Fatalf("key %s state: got %v, want %v", k.KID, got.State, want)
	}
}

func (r *ring) wantActive(k keyring.Key) {
	r.tb.Helper()
	s, err := r.kr.Signer(r.ctx, Set)
	if err != nil {
		r.tb.Fatalf("active signer: %v", err)
	}
	if s.KID() != k.KID {
		r.tb.Fatalf("active key: got %s, want %s", s.KID(), k.KID)
	}
}

// backendPublic is the public key the backend itself gives for k.
func (r *ring) backendPublic(k keyring.Key) crypto.PublicKey {
	r.tb.Helper()
	s, err := r.prov.Open(r.ctx, k.KID, k.BackendRef.Reveal())
	if err != nil {
		r.tb.Fatalf("open %s in the backend: %v", k.KID, err)
	}
	return s.Public()
}

// mustIssue issues a token for subject and checks that key k signed it:
// its header names k's kid and algorithm, and its signature verifies under
// the public key the backend gives for k.
func (r *ring) mustIssue(subject string, k keyring.Key) string {
	r.tb.Helper()
	tok, err := r.issuer.Issue(r.ctx, claims(subject))
	if err != nil {
		r.tb.Fatalf("issue for %s: %v", subject, err)
	}
	parts, err := jose.SplitCompact([]byte(tok))
	if err != nil {
		r.tb.Fatalf("issue for %s: %v", subject, err)
	}
	rawHeader, err := jose.AppendDecode(nil, parts.Header)
	if err != nil {
		r.tb.Fatalf("issue for %s: header does not decode: %v", subject, err)
	}
	h, err := jose.ParseHeader(string(rawHeader))
	if err != nil {
		r.tb.Fatalf("issue for %s: header does not parse: %v", subject, err)
	}
	if h.KID != k.KID || h.Alg != r.alg || h.Typ != signer.TokenType {
		r.tb.Fatalf("issue for %s: header kid %q alg %q typ %q; want %q %q %q", subject, h.KID, h.Alg, h.Typ, k.KID, r.alg, signer.TokenType)
	}
	sig, err := jose.AppendDecode(nil, parts.Signature)
	if err != nil {
		r.tb.Fatalf("issue for %s: signature does not decode: %v", subject, err)
	}
	a, _ := jose.Lookup(r.alg)
	if err := a.Verify(r.backendPublic(k), parts.SigningInput, sig); err != nil {
		r.tb.Fatalf("issue for %s: signature does not verify under the backend's public key of %s: %v", subject, k.KID, err)
	}
	return tok
}

func (r *ring) mustVerify(tok, subject string) {
	r.tb.Helper()
	c, err := r.verifier.Verify(r.ctx, tok)
	if err != nil {
		r.tb.Fatalf("verify %s's token at %s: %v", subject, r.clock.Now().Format(time.RFC3339), err)
	}
	if c.Subject != subject || c.Issuer != IssuerURL || !slices.Equal(c.Audience, []string{Audience}) {
		r.tb.Fatalf("verified claims sub %q iss %q aud %q; want %q %q [%s]", c.Subject, c.Issuer, c.Audience, subject, IssuerURL, Audience)
	}
}

func (r *ring) wantRejected(tok string, want error) {
	r.tb.Helper()
	c, err := r.verifier.Verify(r.ctx, tok)
	if !errors.Is(err, want) || c != nil {
		r.tb.Fatalf("verify at %s: got claims %v, error %v; want %v", r.clock.Now().Format(time.RFC3339), c != nil, err, want)
	}
}

// checkJWKS fetches the JWK set from srv and checks that it serves exactly
// the keys want, each with its algorithm and the public key the backend
// gives for it.
func (r *ring) checkJWKS(srv *httptest.Server, when string, want ...keyring.Key) {
	r.tb.Helper()
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, srv.URL, nil)
	if err != nil {
		r.tb.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		r.tb.Fatalf("JWKS %s: %v", when, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		r.tb.Fatalf("JWKS %s: status %d, read error %v; want 200", when, resp.StatusCode, err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		r.tb.Fatalf("JWKS %s: %v", when, err)
	}
	var got, wantKIDs []string
	for _, k := range want {
		wantKIDs = append(wantKIDs, k.KID)
	}
	for _, raw := range set.Keys {
		jk, err := jwk.ParseKey(raw)
		if err != nil {
			r.tb.Fatalf("JWKS %s: jwk.ParseKey: %v", when, err)
		}
		kid, _ := jk.KeyID()
		got = append(got, kid)
		i := slices.IndexFunc(want, func(k keyring.Key) bool { return k.KID == kid })
		if i < 0 {
			continue
		}
		if alg, _ := jk.Algorithm(); alg.String() != want[i].Algorithm {
			r.tb.Errorf("JWKS %s: kid %s alg %s, want %s", when, kid, alg, want[i].Algorithm)
		}
		var pub any
		if err := jwk.Export(jk, &pub); err != nil {
			r.tb.Fatalf("JWKS %s: export %s: %v", when, kid, err)
		}
		backend, ok := r.backendPublic(want[i]).(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !backend.Equal(pub) {
			r.tb.Errorf("JWKS %s: kid %s serves a public key that is not the backend's", when, kid)
		}
	}
	slices.Sort(got)
	slices.Sort(wantKIDs)
	if !slices.Equal(got, wantKIDs) {
		r.tb.Fatalf("JWKS %s: serves kids %q, want %q", when, got, wantKIDs)
	}
}
