package jwks_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/verifier"
)

// server is a JWKS endpoint: the package's own handler over a source,
// unless mode says to misbehave. It counts requests and 304 answers.
type server struct {
	src      *source
	h        http.Handler
	mode     atomic.Value // string
	requests atomic.Int64
	notMod   atomic.Int64
	release  chan struct{}
	hold     chan struct{} // mode "held": the answer, read at once, waits for it
}

func newServer(opts ...jwks.Option) *server {
	s := &server{src: &source{keys: fourKeys()[:2]}, release: make(chan struct{})}
	s.h = jwks.NewHandler(s.src, opts...)
	s.mode.Store("ok")
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	switch mode := s.mode.Load().(string); mode {
	case "ok", "held":
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, r)
		if rec.Code == http.StatusNotModified {
			s.notMod.Add(1)
		}
		if mode == "held" {
			<-s.hold
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	case "slow":
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
	case "500":
		http.Error(w, "down", http.StatusInternalServerError)
	default: // a literal document
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, mode)
	}
}

// start serves s on a loopback httptest server.
func (s *server) start(t testing.TB) string {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		close(s.release)
		ts.Close()
	})
	return ts.URL + "/jwks.json"
}

// quiet is the logger of the tests that do not read the log.
var quiet = slog.New(slog.DiscardHandler)

func newRemote(t testing.TB, url string, opts ...jwks.RemoteOption) *jwks.RemoteSet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := jwks.NewRemoteSet(ctx, url, append([]jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("NewRemoteSet: %v", err)
	}
	t.Cleanup(func() { rs.Close() })
	return rs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func samePublic(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

func TestRemoteSetSeesPublishedKeys(t *testing.T) {
	srv := newServer()
	rs := newRemote(t, srv.start(t))
	for _, want := range fourKeys()[:2] {
		got, err := rs.VerificationKey(ctxT(t), want.KID)
		if err != nil {
			t.Fatalf("VerificationKey(%s): %v", want.KID, err)
		}
		if got.KID != want.KID || got.Algorithm != want.Algorithm || !samePublic(want.Public, got.Public) {
			t.Errorf("VerificationKey(%s): got %s/%s, want %s/%s and the same public key", want.KID, got.KID, got.Algorithm, want.KID, want.Algorithm)
		}
	}
	if _, err := rs.VerificationKey(ctxT(t), "k-none"); !errors.Is(err, verifier.ErrUnknownKID) {
		t.Errorf("unknown kid: got %v, want ErrUnknownKID", err)
	}
	if _, err := rs.VerificationKey(ctxT(t), ""); !errors.Is(err, verifier.ErrUnknownKID) {
		t.Errorf("empty kid: got %v, want ErrUnknownKID", err)
	}
}

func TestRemoteSetRotation(t *testing.T) {
	srv := newServer()
	rs := newRemote(t, srv.start(t), jwks.WithMinRefreshInterval(time.Nanosecond))
	all := fourKeys()

	// A key published after the last fetch is found by the refresh that
	// its unknown kid triggers.
	srv.src.set(all...)
	if _, err := rs.VerificationKey(ctxT(t), "k-ed"); err != nil {
		t.Fatalf("new key: %v", err)
	}
	// A key removed from the document is dropped at the next fetch.
	srv.src.set(all[2:]...)
	if err := rs.Refresh(ctxT(t)); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if diff := cmp.Diff([]string{"k-ec384", "k-ed"}, rs.Keys()); diff != "" {
		t.Errorf("kids after removal (-want +got):\n%s", diff)
	}
	if _, err := rs.VerificationKey(ctxT(t), "k-rsa"); !errors.Is(err, verifier.ErrUnknownKID) {
		t.Errorf("removed key: got %v, want ErrUnknownKID", err)
	}
}

func TestRemoteSetRevalidatesWithETag(t *testing.T) {
	srv := newServer()
	rs := newRemote(t, srv.start(t))
	for range 2 {
		if err := rs.Refresh(ctxT(t)); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
	}
	if got := srv.notMod.Load(); got != 2 {
		t.Errorf("304 answers: got %d, want 2", got)
	}
	if _, err := rs.VerificationKey(ctxT(t), "k-rsa"); err != nil {
		t.Errorf("key after 304: %v", err)
	}
}

func TestRemoteSetKeepsLastGoodSet(t *testing.T) {
	big := `{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		mode string
		want error
	}{
		{"500", jwks.ErrFetch},
		{"not json", jwks.ErrMalformed},
		{`{"keys":[]}`, jwks.ErrNoUsableKeys},
		{`{"keys":[{"kty":"oct","kid":"k-ec","k":"AAAA"}]}`, jwks.ErrPrivateMaterial},
		{`{"nokeys":[]}`, jwks.ErrMalformed},
		{`{"keys":{}}`, jwks.ErrMalformed},
		{big, jwks.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.mode[:min(len(tc.mode), 20)], func(t *testing.T) {
			srv := newServer()
			rs := newRemote(t, srv.start(t), jwks.WithMinRefreshInterval(time.Nanosecond))
			srv.mode.Store(tc.mode)
			if err := rs.Refresh(ctxT(t)); !errors.Is(err, tc.want) {
				t.Fatalf("Refresh: got %v, want %v", err, tc.want)
			}
			if _, err := rs.VerificationKey(ctxT(t), "k-ec"); err != nil {
				t.Errorf("last good key: %v", err)
			}
			if _, err := rs.VerificationKey(ctxT(t), "k-new"); !errors.Is(err, verifier.ErrUnknownKID) {
				t.Errorf("unknown kid while broken: got %v, want ErrUnknownKID", err)
			}
		})
	}
}

func TestRemoteSetSlowServer(t *testing.T) {
	srv := newServer()
	rs := newRemote(t, srv.start(t), jwks.WithTimeout(200*time.Millisecond), jwks.WithMinRefreshInterval(time.Nanosecond))
	srv.mode.Store("slow")
	err := rs.Refresh(ctxT(t))
	var ne net.Error
	if !errors.Is(err, jwks.ErrFetch) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Refresh: got %v, want ErrFetch with a timeout", err)
	}
	if _, err := rs.VerificationKey(ctxT(t), "k-ec"); err != nil {
		t.Errorf("last good key: %v", err)
	}
	if _, err := rs.VerificationKey(ctxT(t), "k-other"); !errors.Is(err, verifier.ErrUnknownKID) {
		t.Errorf("unknown kid during a slow refresh: got %v, want ErrUnknownKID", err)
	}
}

// doc builds a JWK set document from JWK JSON objects.
func doc(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

func jwkJSON(t *testing.T, raw any, fields map[string]any) string {
	t.Helper()
	jk, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if err := jk.Set(k, v); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	return string(must(json.Marshal(jk)))
}

func TestNewRemoteSetRefuses(t *testing.T) {
	srv := newServer()
	loop := srv.start(t)
	tests := []struct {
		name string
		url  string
		opts []jwks.RemoteOption
		want error
	}{
		{"plain http, not loopback", "http://keys.example.com/jwks.json", []jwks.RemoteOption{jwks.AllowInsecureLoopback()}, jwks.ErrInsecureURL},
		{"plain http to loopback, not allowed", loop, nil, jwks.ErrInsecureURL},
		{"plain http to a loopback alias", "http://127.0.0.2/jwks.json", []jwks.RemoteOption{jwks.AllowInsecureLoopback()}, jwks.ErrInsecureURL},
		{"other scheme", "file:///etc/jwks.json", nil, jwks.ErrInsecureURL},
		{"credentials in URL", "https://u:p@keys.example.com/", nil, jwks.ErrInsecureURL},
		{"no host", "https:///jwks.json", nil, jwks.ErrInsecureURL},
		{"zero body size", loop, []jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithMaxBodySize(0)}, jwks.ErrOption},
		{"zero timeout", loop, []jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithTimeout(0)}, jwks.ErrOption},
		{"zero refresh interval", loop, []jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithMinRefreshInterval(0)}, jwks.ErrOption},
		{"negative max stale", loop, []jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithMaxStale(-1)}, jwks.ErrOption},
		{"no algorithm", loop, []jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithAlgorithms()}, jwks.ErrOption},
		{"HS256 allowed", loop, []jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithAlgorithms("ES256", "HS256")}, jwks.ErrOption},
		{"document too large", loop, []jwks.RemoteOption{jwks.AllowInsecureLoopback(), jwks.WithMaxBodySize(64)}, jwks.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := jwks.NewRemoteSet(ctxT(t), tc.url, tc.opts...)
			if !errors.Is(err, tc.want) {
				if rs != nil {
					rs.Close()
				}
				t.Fatalf("NewRemoteSet: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRemoteSetHTTPS(t *testing.T) {
	srv := newServer()
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() { close(srv.release); ts.Close() })
	rs, err := jwks.NewRemoteSet(ctxT(t), ts.URL+"/jwks.json", jwks.WithHTTPClient(ts.Client()))
	if err != nil {
		t.Fatalf("NewRemoteSet over https: %v", err)
	}
	defer rs.Close()
	if _, err := rs.VerificationKey(ctxT(t), "k-rsa"); err != nil {
		t.Errorf("VerificationKey: %v", err)
	}

	redirect := httptest.NewTLSServer(http.RedirectHandler("http://keys.example.com/jwks.json", http.StatusFound))
	t.Cleanup(redirect.Close)
	_, err = jwks.NewRemoteSet(ctxT(t), redirect.URL, jwks.WithHTTPClient(redirect.Client()), jwks.AllowInsecureLoopback())
	if !errors.Is(err, jwks.ErrInsecureURL) {
		t.Errorf("redirect to plain http: got %v, want ErrInsecureURL", err)
	}
}

func TestRemoteSetLifecycle(t *testing.T) {
	srv := newServer()
	rs, err := jwks.NewRemoteSet(ctxT(t), srv.start(t), jwks.AllowInsecureLoopback())
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Start(ctxT(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := rs.Start(ctxT(t)); !errors.Is(err, jwks.ErrStarted) {
		t.Errorf("second Start: got %v, want ErrStarted", err)
	}
	if err := rs.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := rs.VerificationKey(ctxT(t), "k-ec"); !errors.Is(err, jwks.ErrClosed) || !errors.Is(err, verifier.ErrKeySource) {
		t.Errorf("VerificationKey after Close: got %v, want ErrClosed and ErrKeySource", err)
	}
	for name, f := range map[string]func() error{
		"Close":   rs.Close,
		"Start":   func() error { return rs.Start(ctxT(t)) },
		"Refresh": func() error { return rs.Refresh(ctxT(t)) },
	} {
		if err := f(); !errors.Is(err, jwks.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
}

// memTransport serves requests with a handler in memory, so that tests in
// a synctest bubble involve no real network.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func bubbleRemote(t *testing.T, srv *server, opts ...jwks.RemoteOption) *jwks.RemoteSet {
	t.Helper()
	all := append([]jwks.RemoteOption{
		jwks.AllowInsecureLoopback(),
		jwks.WithLogger(quiet),
		jwks.WithHTTPClient(&http.Client{Transport: memTransport{srv}}),
	}, opts...)
	rs, err := jwks.NewRemoteSet(t.Context(), "http://127.0.0.1/jwks.json", all...)
	if err != nil {
		t.Fatalf("NewRemoteSet: %v", err)
	}
	t.Cleanup(func() { rs.Close() })
	return rs
}

func TestRemoteSetUnknownKIDFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer()
		rs := bubbleRemote(t, srv, jwks.WithMinRefreshInterval(time.Minute))
		flood := func(round int) {
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 100 {
						kid := fmt.Sprintf("forged-%d-%d-%d", round, g, i)
						if _, err := rs.VerificationKey(t.Context(), kid); !errors.Is(err, verifier.ErrUnknownKID) {
							t.Errorf("VerificationKey(%s): got %v, want ErrUnknownKID", kid, err)
						}
					}
				})
			}
			wg.Wait()
		}
		flood(0)
		if got := srv.requests.Load(); got != 2 {
			t.Errorf("fetches within the first interval: got %d, want 2 (the initial one and one for unknown kids)", got)
		}
		time.Sleep(time.Minute)
		flood(1)
		if got := srv.requests.Load(); got != 3 {
			t.Errorf("fetches after one interval: got %d, want 3", got)
		}
		if _, err := rs.VerificationKey(t.Context(), "k-ec"); err != nil {
			t.Errorf("known key during the flood: %v", err)
		}
	})
}

func TestRemoteSetNegativeCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer()
		rs := bubbleRemote(t, srv, jwks.WithMinRefreshInterval(time.Minute))
		time.Sleep(time.Minute)
		if _, err := rs.VerificationKey(t.Context(), "k-ed"); !errors.Is(err, verifier.ErrUnknownKID) {
			t.Fatalf("not yet published: got %v, want ErrUnknownKID", err)
		}
		srv.src.set(fourKeys()...)
		time.Sleep(time.Minute - time.Second)
		if _, err := rs.VerificationKey(t.Context(), "k-ed"); !errors.Is(err, verifier.ErrUnknownKID) {
			t.Errorf("within the negative cache: got %v, want ErrUnknownKID", err)
		}
		if got := srv.requests.Load(); got != 2 {
			t.Errorf("fetches: got %d, want 2", got)
		}
		time.Sleep(time.Second)
		if _, err := rs.VerificationKey(t.Context(), "k-ed"); err != nil {
			t.Errorf("after the negative cache expired: %v", err)
		}
	})
}

func TestRemoteSetBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(jwks.WithMaxAge(time.Hour))
		rs := bubbleRemote(t, srv)
		if err := rs.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		all := fourKeys()
		srv.src.set(all[1:]...)
		time.Sleep(45*time.Minute - time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]string{"k-ec", "k-rsa"}, rs.Keys()); diff != "" {
			t.Errorf("before three quarters of max-age (-want +got):\n%s", diff)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]string{"k-ec", "k-ec384", "k-ed"}, rs.Keys()); diff != "" {
			t.Errorf("after the background refresh (-want +got):\n%s", diff)
		}
		if got := srv.requests.Load(); got != 2 {
			t.Errorf("fetches: got %d, want 2", got)
		}
	})
}

func TestRemoteSetMaxStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(jwks.WithMaxAge(time.Hour))
		rs := bubbleRemote(t, srv, jwks.WithMaxStale(time.Hour))
		if err := rs.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		srv.mode.Store("500")
		time.Sleep(2*time.Hour - time.Second)
		synctest.Wait()
		if _, err := rs.VerificationKey(t.Context(), "k-ec"); err != nil {
			t.Errorf("within max stale: %v", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		_, err := rs.VerificationKey(t.Context(), "k-ec")
		if !errors.Is(err, jwks.ErrStale) || !errors.Is(err, verifier.ErrKeySource) {
			t.Errorf("past max stale: got %v, want ErrStale and ErrKeySource", err)
		}
		srv.mode.Store("ok")
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, err := rs.VerificationKey(t.Context(), "k-ec"); err != nil {
			t.Errorf("after the server recovered: %v", err)
		}
	})
}
