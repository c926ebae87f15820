package jwks_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
	"github.com/tokenkms/tokenkms/verifier/verifiertest"
)

const feedIss = "https://core.test"

// activeKeys is a signer.ActiveKeys whose Active key tests switch.
type activeKeys struct {
	mu sync.Mutex
	s  signer.Signer
}

func (a *activeKeys) Signer(context.Context, string) (signer.Signer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.s, nil
}

// feedIssuer is an issuer's HTTP side: /jwks.json and /revocations over a
// logged revocation list, signed by the Active key. down makes every
// request fail with 503, as a cut network would; edit rewrites the
// revocation documents on the way out.
type feedIssuer struct {
	list  *verifier.MemoryRevocationList
	keys  *activeKeys
	src   *source
	mux   *http.ServeMux
	down  atomic.Bool
	edit  atomic.Pointer[func([]byte) []byte]
	query atomic.Pointer[string] // replaces the query of revocation requests
	feeds atomic.Int64           // revocation requests served
}

func newFeedIssuer(t testing.TB) *feedIssuer {
	return newFeedIssuerAt(t, nil)
}

// newFeedIssuerAt is newFeedIssuer on the clock now (time.Now when nil).
func newFeedIssuerAt(t testing.TB, now func() time.Time) *feedIssuer {
	t.Helper()
	is := &feedIssuer{list: verifier.NewLoggedRevocationList(now), keys: &activeKeys{}, src: &source{}, mux: http.NewServeMux()}
	is.rotate(t, "k1")
	h, err := jwks.NewRevocationHandler(jwks.RevocationHandlerConfig{Log: is.list, Keys: is.keys, Set: "access-tokens", Issuer: feedIss, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	is.mux.Handle("/jwks.json", jwks.NewHandler(is.src))
	is.mux.Handle("/revocations", h)
	return is
}

// rotate makes a fresh key kid the Active one and publishes it beside the
// others.
func (is *feedIssuer) rotate(t testing.TB, kid string) *ecdsa.PrivateKey {
	t.Helper()
	priv := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	s, err := signer.FromCryptoSigner(kid, "ES256", priv)
	if err != nil {
		t.Fatal(err)
	}
	is.keys.mu.Lock()
	is.keys.s = s
	is.keys.mu.Unlock()
	keys, _ := is.src.PublicKeys(context.Background())
	is.src.set(append(keys, key(kid, "ES256", &priv.PublicKey))...)
	return priv
}

func (is *feedIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if is.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/revocations" {
		is.mux.ServeHTTP(w, r)
		return
	}
	is.feeds.Add(1)
	if q := is.query.Load(); q != nil {
		r.URL.RawQuery = *q
	}
	rec := httptest.NewRecorder()
	is.mux.ServeHTTP(rec, r)
	b := rec.Body.Bytes()
	if e := is.edit.Load(); e != nil {
		b = (*e)(bytes.Clone(b))
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	w.Write(b)
}

// bubbleFeed returns a RemoteSet and a RevocationFeed on is over an
// in-memory transport (for synctest bubbles).
func bubbleFeed(t *testing.T, is *feedIssuer, cfg jwks.RevocationFeedConfig) (*jwks.RemoteSet, *jwks.RevocationFeed) {
	t.Helper()
	hc := &http.Client{Transport: memTransport{is}}
	rs, err := jwks.NewRemoteSet(t.Context(), "http://127.0.0.1/jwks.json", jwks.AllowInsecureLoopback(), jwks.WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("NewRemoteSet: %v", err)
	}
	t.Cleanup(func() { rs.Close() })
	cfg.URL, cfg.Keys, cfg.HTTPClient, cfg.AllowInsecureLoopback = "http://127.0.0.1/revocations", rs, hc, true
	if cfg.Issuer == "" {
		cfg.Issuer = feedIss
	}
	f, err := jwks.NewRevocationFeed(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewRevocationFeed: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return rs, f
}

func revoked(t *testing.T, l verifier.RevocationList, kid, jti string, iat time.Time) bool {
	t.Helper()
	got, err := l.Revoked(t.Context(), kid, jti, iat)
	if err != nil {
		t.Fatalf("Revoked(%q, %q): %v", kid, jti, err)
	}
	return got
}

// feedThrough is a RevocationList whose writes go to the issuer's list
// and whose reads come through the feed, synced first: the RevocationList
// conformance suite then checks what a verifier in another process sees.
type feedThrough struct {
	issuer *verifier.MemoryRevocationList
	feed   *jwks.RevocationFeed
}

func (l feedThrough) RevokeJTI(ctx context.Context, jti string, until time.Time) error {
	return l.issuer.RevokeJTI(ctx, jti, until)
}

func (l feedThrough) RevokeKID(ctx context.Context, kid string, issuedBefore time.Time) error {
	return l.issuer.RevokeKID(ctx, kid, issuedBefore)
}

func (l feedThrough) Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	if err := l.feed.Sync(ctx); err != nil {
		return false, err
	}
	return l.feed.Revoked(ctx, kid, jti, issuedAt)
}

func TestFeedConformance(t *testing.T) {
	verifiertest.TestRevocationList(t, func(t *testing.T, now func() time.Time) verifier.RevocationList {
		is := newFeedIssuerAt(t, now)
		_, f := bubbleFeed(t, is, jwks.RevocationFeedConfig{Now: now})
		return feedThrough{issuer: is.list, feed: f}
	})
}

// TestFeedFollowsRevocations: a verifier over a RemoteSet and a
// RevocationFeed needs no Unsafe option, and rejects a token once its jti
// is revoked on the issuer, through a long-poll over real loopback HTTP.
func TestFeedFollowsRevocations(t *testing.T) {
	is := newFeedIssuer(t)
	ts := httptest.NewServer(is)
	t.Cleanup(ts.Close)
	rs := newRemote(t, ts.URL+"/jwks.json")
	f, err := jwks.NewRevocationFeed(ctxT(t), jwks.RevocationFeedConfig{
		URL: ts.URL + "/revocations", Keys: rs, Issuer: feedIss, AllowInsecureLoopback: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := is.list.RevokeJTI(t.Context(), "jti-0", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(rs, verifier.Policy{Issuer: feedIss, Audience: []string{"api"}}, verifier.WithRevocationList(f))
	if err != nil {
		t.Fatalf("verifier.New over a RemoteSet with a RevocationFeed: %v", err)
	}
	iss, err := signer.NewIssuer(is.keys, signer.IssuerConfig{Set: "access-tokens", Issuer: feedIss, Audience: []string{"api"}, DefaultLifetime: time.Hour, MaxLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue(t.Context(), tokenkms.Claims{Subject: "alice", ClientID: "app", ID: "jti-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if err := is.list.RevokeJTI(t.Context(), "jti-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := v.Verify(t.Context(), tok)
		if errors.Is(err, verifier.ErrRevoked) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("after RevokeJTI on the issuer: got %v, want ErrRevoked", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := f.Stats(); st.JTIs != 2 || st.FullSyncs != 2 {
		t.Errorf("stats: got %d jtis, %d full syncs; want 2 and 2 (the first two documents: changes from cursor 0 are the full content)", st.JTIs, st.FullSyncs)
	}
}

// TestFeedDeltas: after the first full document, a poll moves only the
// changes since the client's cursor; the client merges kid policies and
// jtis, and a poll with nothing new is a small signed document.
func TestFeedDeltas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newFeedIssuer(t)
		for _, jti := range []string{"a", "b", "c"} {
			is.list.RevokeJTI(t.Context(), jti, time.Now().Add(time.Hour))
		}
		_, f := bubbleFeed(t, is, jwks.RevocationFeedConfig{})
		first := f.Stats().Bytes
		is.list.RevokeJTI(t.Context(), "d", time.Now().Add(time.Hour))
		cut := time.Now()
		is.list.RevokeKID(t.Context(), "k-old", cut)
		if err := f.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		st := f.Stats()
		delta := st.Bytes - first
		if err := f.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		empty := f.Stats().Bytes - st.Bytes
		if st.FullSyncs != 1 || st.Documents != 2 || st.JTIs != 4 || st.KIDs != 1 {
			t.Errorf("stats: got %+v, want 1 full sync, 2 documents, 4 jtis, 1 kid policy", st)
		}
		// A delta of one jti and one kid policy is its own size, not the set's.
		if delta >= first+int64(12+14+len("k-old")) || empty >= delta {
			t.Errorf("sizes: full %d bytes, delta %d, empty %d; want delta = full + 1 jti + 1 kid policy at most, empty < delta", first, delta, empty)
		}
		for _, tc := range []struct {
			name     string
			kid, jti string
			iat      time.Time
			want     bool
		}{
			{name: "first", kid: "k1", jti: "a", iat: cut, want: true},
			{name: "delta", kid: "k1", jti: "d", iat: cut, want: true},
			{name: "never revoked", kid: "k1", jti: "e", iat: cut, want: false},
			{name: "kid policy", kid: "k-old", jti: "e", iat: cut.Add(-time.Second), want: true},
			{name: "after the cutoff", kid: "k-old", jti: "e", iat: cut, want: false},
		} {
			if got := revoked(t, f, tc.kid, tc.jti, tc.iat); got != tc.want {
				t.Errorf("%s: Revoked = %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

// TestFeedStaleFailsClosed: a feed cut from its issuer answers until its
// newest document is MaxAge old, then fails closed (the verifier's
// ErrRevocationCheck), and recovers when the issuer is back.
func TestFeedStaleFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newFeedIssuer(t)
		rs, f := bubbleFeed(t, is, jwks.RevocationFeedConfig{MaxAge: 10 * time.Second})
		if err := f.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		v, err := verifier.New(rs, verifier.Policy{Issuer: feedIss, Audience: []string{"api"}}, verifier.WithRevocationList(f))
		if err != nil {
			t.Fatal(err)
		}
		iss := must(signer.NewIssuer(is.keys, signer.IssuerConfig{Set: "access-tokens", Issuer: feedIss, Audience: []string{"api"}, DefaultLifetime: time.Hour, MaxLifetime: time.Hour}))
		tok := must(iss.Issue(t.Context(), tokenkms.Claims{Subject: "alice", ClientID: "app", ID: "j"}))
		is.down.Store(true)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Errorf("within MaxAge of the last document: %v", err)
		}
		// The long-poll in flight when the issuer went down still answered
		// (at most Wait, 3 s, later): stale by 13 s.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		_, err = v.Verify(t.Context(), tok)
		if !errors.Is(err, verifier.ErrRevocationCheck) || !errors.Is(err, jwks.ErrFeedStale) {
			t.Errorf("past MaxAge: got %v, want ErrRevocationCheck and ErrFeedStale", err)
		}
		if at := f.RevocationUpdatedAt(); at.IsZero() || time.Since(at) <= 10*time.Second {
			t.Errorf("past MaxAge: RevocationUpdatedAt %v ago, want more than MaxAge", time.Since(at))
		}
		is.down.Store(false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Errorf("after the issuer came back: %v", err)
		}
	})
}

// TestFeedCompromisedKey: a kid revoked whole (emergency rotation's
// cutoff) is dropped from the RemoteSet at once, even though the JWKS
// still lists it, and documents it signs are refused from then on. A
// document signed by the fresh key, unknown to the RemoteSet, makes it
// refresh.
func TestFeedCompromisedKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newFeedIssuer(t)
		rs, f := bubbleFeed(t, is, jwks.RevocationFeedConfig{})
		is.rotate(t, "k2") // not yet known to rs: no refresh since
		if _, err := rs.VerificationKey(t.Context(), "k1"); err != nil {
			t.Fatalf("k1 before: %v", err)
		}
		is.list.RevokeKID(t.Context(), "k1", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
		if err := f.Sync(t.Context()); err != nil {
			t.Fatalf("document signed by the fresh key k2: %v", err)
		}
		if _, err := rs.VerificationKey(t.Context(), "k1"); !errors.Is(err, verifier.ErrKeyCompromised) {
			t.Errorf("k1 after the feed revoked it: got %v, want ErrKeyCompromised", err)
		}
		if err := rs.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.VerificationKey(t.Context(), "k1"); !errors.Is(err, verifier.ErrKeyCompromised) {
			t.Errorf("k1 after a JWKS refresh that still lists it: got %v, want ErrKeyCompromised", err)
		}
		if _, err := rs.VerificationKey(t.Context(), "k2"); err != nil {
			t.Errorf("k2: %v", err)
		}
		// The attacker holding k1 signs the feed: refused.
		is.keys.mu.Lock()
		is.keys.s = must(signer.FromCryptoSigner("k1", "ES256", must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))))
		is.keys.mu.Unlock()
		time.Sleep(2 * time.Second) // past the handler's Refresh: documents are signed again
		if err := f.Sync(t.Context()); !errors.Is(err, jwks.ErrFeedSignature) {
			t.Errorf("document signed by the revoked k1: got %v, want ErrFeedSignature", err)
		}
	})
}

// TestFeedIssuerRestart: the issuer's list restarts empty under a new
// epoch; the client takes a full snapshot and keeps what it had (a merge
// never forgets a revocation before it expires).
func TestFeedIssuerRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newFeedIssuer(t)
		is.list.RevokeJTI(t.Context(), "old", time.Now().Add(time.Hour))
		_, f := bubbleFeed(t, is, jwks.RevocationFeedConfig{})
		restarted := verifier.NewLoggedRevocationList(nil)
		restarted.RevokeJTI(t.Context(), "new", time.Now().Add(time.Hour))
		h := must(jwks.NewRevocationHandler(jwks.RevocationHandlerConfig{Log: restarted, Keys: is.keys, Set: "access-tokens", Issuer: feedIss}))
		is.mux = http.NewServeMux()
		is.mux.Handle("/revocations", h)
		if err := f.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if !revoked(t, f, "k1", "old", now) || !revoked(t, f, "k1", "new", now) {
			t.Errorf("after the restart: want both the old and the new jti revoked")
		}
		if st := f.Stats(); st.FullSyncs != 2 {
			t.Errorf("full syncs: got %d, want 2", st.FullSyncs)
		}
	})
}

// TestFeedRefusesDocuments: every document that is not exactly what the
// issuer signed is refused, and nothing of it is applied.
func TestFeedRefusesDocuments(t *testing.T) {
	flip := func(at func(b []byte) int) func([]byte) []byte {
		return func(b []byte) []byte {
			if i := at(b); b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return b
		}
	}
	payloadStart := func(b []byte) int { return bytes.IndexByte(b, '\n') + 1 }
	for _, tc := range []struct {
		name    string
		edit    func([]byte) []byte
		cfg     jwks.RevocationFeedConfig
		wantErr error
	}{
		{name: "payload byte flipped", edit: flip(func(b []byte) int { return payloadStart(b) + 3 }), wantErr: jwks.ErrFeedDocument},
		{name: "payload truncated", edit: func(b []byte) []byte { return b[:len(b)-1] }, wantErr: jwks.ErrFeedDocument},
		{name: "signature byte flipped", edit: flip(func(b []byte) int { return payloadStart(b) - 6 }), wantErr: jwks.ErrFeedSignature},
		{name: "manifest byte flipped", edit: flip(func(b []byte) int { return bytes.IndexByte(b, '.') + 5 }), wantErr: jwks.ErrFeedSignature},
		{name: "no payload line", edit: func(b []byte) []byte { return b[:payloadStart(b)-1] }, wantErr: jwks.ErrFeedDocument},
		{name: "not a JWS", edit: func([]byte) []byte { return []byte("{}\n") }, wantErr: jwks.ErrFeedDocument},
		{name: "other issuer", cfg: jwks.RevocationFeedConfig{Issuer: "https://evil.test"}, wantErr: jwks.ErrFeedDocument},
		{name: "over the size cap", cfg: jwks.RevocationFeedConfig{MaxSize: 100}, wantErr: jwks.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				is := newFeedIssuer(t)
				is.list.RevokeJTI(t.Context(), "a", time.Now().Add(time.Hour))
				if tc.edit != nil {
					is.edit.Store(&tc.edit)
				}
				hc := &http.Client{Transport: memTransport{is}}
				rs := must(jwks.NewRemoteSet(t.Context(), "http://127.0.0.1/jwks.json", jwks.AllowInsecureLoopback(), jwks.WithHTTPClient(hc)))
				defer rs.Close()
				cfg := tc.cfg
				cfg.URL, cfg.Keys, cfg.HTTPClient, cfg.AllowInsecureLoopback = "http://127.0.0.1/revocations", rs, hc, true
				f, err := jwks.NewRevocationFeed(t.Context(), cfg)
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("got %v, want %v", err, tc.wantErr)
				}
				if f != nil {
					f.Close()
				}
			})
		})
	}
}

// TestFeedOutOfStep: changes that do not start at the client's cursor
// (a cache that mixed up URLs) are refused, and the next request starts
// over with the full content.
func TestFeedOutOfStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newFeedIssuer(t)
		for _, jti := range []string{"a", "b", "c"} {
			is.list.RevokeJTI(t.Context(), jti, time.Now().Add(time.Hour))
		}
		_, f := bubbleFeed(t, is, jwks.RevocationFeedConfig{})
		epoch, _, _ := is.list.Cursor()
		q := fmt.Sprintf("cursor=%x.1", epoch)
		is.query.Store(&q)
		if err := f.Sync(t.Context()); !errors.Is(err, jwks.ErrFeedDocument) {
			t.Errorf("changes from another cursor: got %v, want ErrFeedDocument", err)
		}
		is.query.Store(nil)
		if err := f.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := f.Stats(); st.FullSyncs != 2 {
			t.Errorf("full syncs: got %d, want 2 (the first, and the one after the refusal)", st.FullSyncs)
		}
	})
}

// TestFeedFutureDocument: a document signed more than verifier.MaxLeeway
// ahead of the client's clock would stretch its freshness: refused.
func TestFeedFutureDocument(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ahead := func() time.Time { return time.Now().Add(verifier.MaxLeeway + time.Second) }
		is := newFeedIssuerAt(t, ahead)
		hc := &http.Client{Transport: memTransport{is}}
		rs := must(jwks.NewRemoteSet(t.Context(), "http://127.0.0.1/jwks.json", jwks.AllowInsecureLoopback(), jwks.WithHTTPClient(hc)))
		defer rs.Close()
		_, err := jwks.NewRevocationFeed(t.Context(), jwks.RevocationFeedConfig{URL: "http://127.0.0.1/revocations", Keys: rs, HTTPClient: hc, AllowInsecureLoopback: true})
		if !errors.Is(err, jwks.ErrFeedDocument) {
			t.Errorf("got %v, want ErrFeedDocument", err)
		}
	})
}

// TestFeedSignedByUnknownKey: a document signed by a key outside the JWKS
// is refused, after one refresh of the key set.
func TestFeedSignedByUnknownKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := newFeedIssuer(t)
		rs, f := bubbleFeed(t, is, jwks.RevocationFeedConfig{})
		is.keys.mu.Lock()
		is.keys.s = must(signer.FromCryptoSigner("k-rogue", "ES256", must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))))
		is.keys.mu.Unlock()
		is.list.RevokeJTI(t.Context(), "x", time.Now().Add(time.Hour))
		err := f.Sync(t.Context())
		if !errors.Is(err, jwks.ErrFeedSignature) || !errors.Is(err, verifier.ErrUnknownKID) {
			t.Errorf("got %v, want ErrFeedSignature and ErrUnknownKID", err)
		}
		if revoked(t, f, "k1", "x", time.Now()) {
			t.Error("a refused document was applied")
		}
		if got := rs.Keys(); len(got) != 1 || got[0] != "k1" {
			t.Errorf("key set: got %v, want [k1]", got)
		}
	})
}

// TestFeedHandlerHTTP: status codes, caching headers and conditional
// requests of the handler.
func TestFeedHandlerHTTP(t *testing.T) {
	is := newFeedIssuer(t)
	is.list.RevokeJTI(t.Context(), "a", time.Now().Add(time.Hour))
	epoch, head, err := is.list.Cursor()
	if err != nil {
		t.Fatal(err)
	}
	cur := fmt.Sprintf("%x.%d", epoch, head)
	for _, tc := range []struct {
		name       string
		method     string
		query      string
		hdr        map[string]string
		wantStatus int
	}{
		{name: "full", method: http.MethodGet, wantStatus: http.StatusOK},
		{name: "at the head", method: http.MethodGet, query: "?cursor=" + cur, wantStatus: http.StatusOK},
		{name: "bad cursor", method: http.MethodGet, query: "?cursor=zz", wantStatus: http.StatusBadRequest},
		{name: "bad wait", method: http.MethodGet, query: "?wait=-1", wantStatus: http.StatusBadRequest},
		{name: "POST", method: http.MethodPost, wantStatus: http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/revocations"+tc.query, nil)
			rec := httptest.NewRecorder()
			is.mux.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status: got %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusOK {
				return
			}
			for h, want := range map[string]string{"Content-Type": jwks.FeedMediaType, "Cache-Control": "public, max-age=1"} {
				if got := rec.Header().Get(h); got != want {
					t.Errorf("%s: got %q, want %q", h, got, want)
				}
			}
			etag := rec.Header().Get("ETag")
			req = httptest.NewRequest(tc.method, "/revocations"+tc.query, nil)
			req.Header.Set("If-None-Match", etag)
			rec = httptest.NewRecorder()
			is.mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotModified {
				t.Errorf("If-None-Match %s: got %d, want 304", etag, rec.Code)
			}
		})
	}
}

// TestFeedHandlerSignFailure: with no key to sign, the handler answers
// 500 and tells OnError, never an unsigned document.
func TestFeedHandlerSignFailure(t *testing.T) {
	var got error
	h := must(jwks.NewRevocationHandler(jwks.RevocationHandlerConfig{
		Log: verifier.NewLoggedRevocationList(nil), Keys: failingKeys{}, Set: "access-tokens",
		OnError: func(_ *http.Request, err error) { got = err },
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/revocations", nil))
	if rec.Code != http.StatusInternalServerError || !errors.Is(got, errNoKey) {
		t.Errorf("got %d, %v; want 500 and errNoKey", rec.Code, got)
	}
}

var errNoKey = errors.New("no active key")

type failingKeys struct{}

func (failingKeys) Signer(context.Context, string) (signer.Signer, error) { return nil, errNoKey }

// TestRevocationFeedConfig: configurations that cannot keep the feed's
// promises are refused where they are built.
func TestRevocationFeedConfig(t *testing.T) {
	ok := jwks.RevocationFeedConfig{URL: "https://core.test/revocations", Keys: &activeKeySource{}}
	for _, tc := range []struct {
		name    string
		edit    func(*jwks.RevocationFeedConfig)
		wantErr error
	}{
		{name: "no keys", edit: func(c *jwks.RevocationFeedConfig) { c.Keys = nil }, wantErr: jwks.ErrOption},
		{name: "plain http", edit: func(c *jwks.RevocationFeedConfig) { c.URL = "http://core.test/revocations" }, wantErr: jwks.ErrInsecureURL},
		{name: "wait not under max age", edit: func(c *jwks.RevocationFeedConfig) { c.MaxAge, c.Wait = 10*time.Second, 10*time.Second }, wantErr: jwks.ErrOption},
		{name: "poll not under max age", edit: func(c *jwks.RevocationFeedConfig) { c.PollInterval = time.Minute }, wantErr: jwks.ErrOption},
		{name: "wait and poll", edit: func(c *jwks.RevocationFeedConfig) { c.Wait, c.PollInterval = time.Second, time.Second }, wantErr: jwks.ErrOption},
		{name: "fractional wait", edit: func(c *jwks.RevocationFeedConfig) { c.Wait = 1500 * time.Millisecond }, wantErr: jwks.ErrOption},
		{name: "negative size", edit: func(c *jwks.RevocationFeedConfig) { c.MaxSize = -1 }, wantErr: jwks.ErrOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			if _, err := jwks.NewRevocationFeed(t.Context(), cfg); !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
	for _, tc := range []struct {
		name string
		cfg  jwks.RevocationHandlerConfig
	}{
		{name: "no log", cfg: jwks.RevocationHandlerConfig{Keys: failingKeys{}, Set: "s"}},
		{name: "no keys", cfg: jwks.RevocationHandlerConfig{Log: verifier.NewLoggedRevocationList(nil), Set: "s"}},
		{name: "no set", cfg: jwks.RevocationHandlerConfig{Log: verifier.NewLoggedRevocationList(nil), Keys: failingKeys{}}},
		{name: "refresh under a second", cfg: jwks.RevocationHandlerConfig{Log: verifier.NewLoggedRevocationList(nil), Keys: failingKeys{}, Set: "s", Refresh: time.Millisecond}},
		{name: "a list without a log", cfg: jwks.RevocationHandlerConfig{Log: verifier.NewMemoryRevocationList(nil), Keys: failingKeys{}, Set: "s"}},
	} {
		t.Run("handler "+tc.name, func(t *testing.T) {
			if _, err := jwks.NewRevocationHandler(tc.cfg); !errors.Is(err, jwks.ErrOption) {
				t.Errorf("got %v, want ErrOption", err)
			}
		})
	}
}

type activeKeySource struct{}

func (*activeKeySource) VerificationKey(context.Context, string) (verifier.Key, error) {
	return verifier.Key{}, verifier.ErrUnknownKID
}

// TestRevocationFeedReadOnly: a feed follows the issuer and refuses to
// record revocations of its own.
func TestRevocationFeedReadOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, f := bubbleFeed(t, newFeedIssuer(t), jwks.RevocationFeedConfig{})
		if err := f.RevokeJTI(t.Context(), "a", time.Now().Add(time.Hour)); !errors.Is(err, jwks.ErrReadOnly) {
			t.Errorf("RevokeJTI: got %v, want ErrReadOnly", err)
		}
		if err := f.RevokeKID(t.Context(), "k1", time.Now()); !errors.Is(err, jwks.ErrReadOnly) {
			t.Errorf("RevokeKID: got %v, want ErrReadOnly", err)
		}
		f.Close()
		if _, err := f.Revoked(t.Context(), "k1", "a", time.Now()); !errors.Is(err, jwks.ErrClosed) {
			t.Errorf("Revoked after Close: got %v, want ErrClosed", err)
		}
		if !strings.Contains(f.String(), "127.0.0.1") {
			t.Errorf("String: %q", f.String())
		}
	})
}
