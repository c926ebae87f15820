// Command feedbench measures the revocation feed with real processes on
// 127.0.0.1 over HTTP: one issuer process (keyring, JWKS handler,
// revocation handler) and three verifier processes (jwks.RemoteSet and
// jwks.RevocationFeed under a verifier.Verifier), each a copy of this
// program. It reports:
//
//   - after RevokeJTI, and after EmergencyRotate, on the issuer: the time
//     until every verifier rejects the token, p50 and p99 over -events
//     events (each verifier checks its token every 0.5 ms);
//   - a feed of -bulk revocations: a fresh verifier's first-sync time and
//     bytes, then the bytes of a steady-state poll with nothing new and
//     with one new revocation;
//   - a verifier cut from its feed (through a TCP proxy the harness cuts):
//     the time until it fails closed (verifier.ErrRevocationCheck), against
//     its MaxAge, and the time until it verifies again once the feed is
//     back.
//
// Run it from the repository root:
//
//	go run ./internal/feedbench                     # 200 events, 1M revocations
//	go run ./internal/feedbench -events 20 -bulk 10000
//
// It is a measurement, not a test: it prints figures and fails only when a
// verifier does not reject (or recover) within -timeout.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

const (
	set      = "access-tokens"
	issuerID = "https://core.bench"
	audience = "api"
)

func main() {
	role := flag.String("role", "", "internal: issuer or verifier")
	issuerURL := flag.String("issuer", "", "internal: the issuer's base URL")
	feedURL := flag.String("feed", "", "internal: the revocation feed URL (default ISSUER/revocations)")
	maxAge := flag.Duration("maxage", jwks.DefaultFeedMaxAge, "the verifiers' feed MaxAge")
	events := flag.Int("events", 200, "events of each kind")
	bulk := flag.Int("bulk", 1_000_000, "revocations in the large feed")
	cutMaxAge := flag.Duration("cut-maxage", 6*time.Second, "MaxAge of the verifier that is cut from its feed")
	timeout := flag.Duration("timeout", 30*time.Second, "longest wait for one verifier")
	flag.Parse()
	var err error
	switch *role {
	case "issuer":
		err = runIssuer()
	case "verifier":
		err = runVerifier(*issuerURL, *feedURL, *maxAge)
	case "":
		err = run(*events, *bulk, *maxAge, *cutMaxAge, *timeout)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "feedbench:", err)
		os.Exit(1)
	}
}

// ---- issuer process ----

func runIssuer() error {
	ctx := context.Background()
	var offset atomic.Int64 // the clock runs an hour behind while the first key is made, so it is past pre-publication
	offset.Store(int64(time.Hour))
	now := func() time.Time { return time.Now().Add(-time.Duration(offset.Load())) }
	list := verifier.NewLoggedRevocationList(nil)
	ring, err := keyring.New(ctx, keyring.Config{
		Revocations: list,
		Now:         now,
		Sets:        []keyring.SetPolicy{{Name: set, Owner: "bench", Algorithm: "ES256"}},
	})
	if err != nil {
		return err
	}
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	k, err := ring.Create(as(keyringtest.Issuer), set)
	if err != nil {
		return err
	}
	if err := ring.Approve(as(keyringtest.Approver), k.KID); err != nil {
		return err
	}
	offset.Store(0)
	if err := ring.Activate(as(keyringtest.Deployer), k.KID); err != nil {
		return err
	}
	iss, err := signer.NewIssuer(ring, signer.IssuerConfig{Set: set, Issuer: issuerID, Audience: []string{audience}, DefaultLifetime: 15 * time.Minute, MaxLifetime: time.Hour})
	if err != nil {
		return err
	}
	feed, err := jwks.NewRevocationHandler(jwks.RevocationHandlerConfig{Log: list, Keys: ring, Set: set, Issuer: issuerID})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /jwks.json", jwks.NewHandler(ring))
	mux.Handle("GET /revocations", feed)
	officer := as(keyringtest.SecurityOfficer)
	mux.HandleFunc("POST /issue", func(w http.ResponseWriter, r *http.Request) {
		jti := randomID()
		tok, err := iss.Issue(r.Context(), tokenkms.Claims{Subject: "bench", ClientID: "bench", ID: jti})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s", jti, tok)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		if err := ring.RevokeJTI(officer, r.URL.Query().Get("jti"), time.Now().Add(time.Hour)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	var incidents atomic.Int64
	mux.HandleFunc("POST /emergency", func(w http.ResponseWriter, r *http.Request) {
		s, err := ring.Signer(r.Context(), set)
		if err == nil {
			_, err = ring.EmergencyRotate(officer, s.KID(), keyring.Incident{ID: fmt.Sprint("bench-", incidents.Add(1)), Reason: "feedbench"})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /bulk", func(w http.ResponseWriter, r *http.Request) {
		// Straight into the list, not through the keyring: a million audit
		// events in memory would measure the recorder, not the feed.
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		until := time.Now().Add(2 * time.Hour)
		for range n {
			if err := list.RevokeJTI(r.Context(), randomID(), until); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
	})
	return serve(mux)
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// serve listens on 127.0.0.1, prints "ready ADDR" and serves h.
func serve(h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ready %s\n", ln.Addr())
	return (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// ---- verifier process ----

func runVerifier(issuerURL, feedURL string, maxAge time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := jwks.NewRemoteSet(ctx, issuerURL+"/jwks.json", jwks.AllowInsecureLoopback(), jwks.WithMinRefreshInterval(time.Second))
	if err != nil {
		return err
	}
	if feedURL == "" {
		feedURL = issuerURL + "/revocations"
	}
	start := time.Now()
	feed, err := jwks.NewRevocationFeed(ctx, jwks.RevocationFeedConfig{
		URL: feedURL, Keys: rs, Issuer: issuerID, MaxAge: maxAge, AllowInsecureLoopback: true,
		Retry: 100 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	firstSync := time.Since(start)
	if err := rs.Start(context.Background()); err != nil {
		return err
	}
	if err := feed.Start(context.Background()); err != nil {
		return err
	}
	v, err := verifier.New(rs, verifier.Policy{Issuer: issuerID, Audience: []string{audience}}, verifier.WithRevocationList(feed))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /check", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r.Context(), string(tok)); err != nil {
			http.Error(w, kind(err)+": "+err.Error(), http.StatusForbidden)
		}
	})
	mux.HandleFunc("POST /watch", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r.Context(), string(tok)); err != nil {
			http.Error(w, kind(err)+": "+err.Error(), http.StatusConflict)
			return
		}
		io.WriteString(w, "started\n")
		w.(http.Flusher).Flush()
		for r.Context().Err() == nil {
			time.Sleep(500 * time.Microsecond)
			if _, err := v.Verify(r.Context(), string(tok)); err != nil {
				fmt.Fprintf(w, "%d %s\n", time.Now().UnixNano(), kind(err))
				return
			}
		}
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		st := feed.Stats()
		json.NewEncoder(w).Encode(map[string]int64{
			"first_sync_ns": int64(firstSync), "documents": st.Documents, "full_syncs": st.FullSyncs,
			"bytes": st.Bytes, "jtis": int64(st.JTIs), "kids": int64(st.KIDs), "fresh_ms": st.Fresh.UnixMilli(),
		})
	})
	return serve(mux)
}

// kind names the sentinel behind a rejection.
func kind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{verifier.ErrRevoked, "revoked"}, {verifier.ErrKeyCompromised, "key-compromised"},
		{verifier.ErrRevocationCheck, "revocation-check"}, {verifier.ErrUnknownKID, "unknown-kid"},
		{verifier.ErrKeySource, "key-source"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// ---- the harness ----

type proc struct {
	cmd  *exec.Cmd
	addr string
}

func start(args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%v did not start: %q %v", args, line, err)
	}
	go io.Copy(io.Discard, out)
	return &proc{cmd: cmd, addr: "http://" + addr}, nil
}

func (p *proc) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

var client = &http.Client{Timeout: time.Minute}

func post(url, body string) (string, error) {
	resp, err := client.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func stats(p *proc) (map[string]int64, error) {
	resp, err := client.Get(p.addr + "/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st map[string]int64
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func run(events, bulk int, maxAge, cutMaxAge, timeout time.Duration) error {
	issuer, err := start("-role", "issuer")
	if err != nil {
		return err
	}
	defer issuer.stop()
	var verifiers []*proc
	for range 3 {
		v, err := start("-role", "verifier", "-issuer", issuer.addr, "-maxage", maxAge.String())
		if err != nil {
			return err
		}
		defer v.stop()
		verifiers = append(verifiers, v)
	}
	fmt.Printf("issuer %s, verifiers %s %s %s (feed MaxAge %v, long-poll wait %v)\n", issuer.addr, verifiers[0].addr, verifiers[1].addr, verifiers[2].addr, maxAge, max(maxAge/3/time.Second*time.Second, time.Second))

	for _, ev := range []struct {
		name   string
		action func(jti string) error
	}{
		{"RevokeJTI", func(jti string) error { _, err := post(issuer.addr+"/revoke?jti="+jti, ""); return err }},
		{"EmergencyRotate", func(string) error { _, err := post(issuer.addr+"/emergency", ""); return err }},
	} {
		lat, kinds, err := measure(issuer, verifiers, events, timeout, ev.action)
		if err != nil {
			return fmt.Errorf("%s: %w", ev.name, err)
		}
		fmt.Printf("%-16s until all 3 verifiers reject, %d events: p50 %v  p99 %v  max %v  (rejections: %v)\n",
			ev.name, len(lat), pct(lat, 50), pct(lat, 99), lat[len(lat)-1], kinds)
	}
	for _, v := range verifiers {
		v.stop()
	}

	if err := cut(issuer, cutMaxAge, timeout); err != nil {
		return err
	}
	return large(issuer, bulk, maxAge)
}

// measure runs n events: a fresh token accepted by every verifier, each
// verifier watching it, then action on the issuer; the latency of an event
// is from just before action to the last verifier's first rejection.
func measure(issuer *proc, verifiers []*proc, n int, timeout time.Duration, action func(jti string) error) ([]time.Duration, map[string]int, error) {
	var lat []time.Duration
	kinds := map[string]int{}
	for range n {
		out, err := post(issuer.addr+"/issue", "")
		if err != nil {
			return nil, nil, err
		}
		jti, tok, _ := strings.Cut(out, " ")
		// After an emergency rotation the fresh key may be a moment away
		// from a verifier's key set: wait until all accept the token.
		deadline := time.Now().Add(timeout)
		for _, v := range verifiers {
			for {
				_, err := post(v.addr+"/check", tok)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					return nil, nil, fmt.Errorf("a fresh token is not accepted: %w", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		type result struct {
			at   int64
			kind string
			err  error
		}
		results := make(chan result, len(verifiers))
		var started sync.WaitGroup
		for _, v := range verifiers {
			started.Add(1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, v.addr+"/watch", strings.NewReader(tok))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					started.Done()
					results <- result{err: err}
					return
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				line, err := br.ReadString('\n')
				started.Done()
				if err != nil || line != "started\n" {
					results <- result{err: fmt.Errorf("watch did not start: %q %v", line, err)}
					return
				}
				line, err = br.ReadString('\n')
				var r result
				if _, serr := fmt.Sscanf(line, "%d %s", &r.at, &r.kind); err != nil || serr != nil {
					r.err = fmt.Errorf("no rejection within %v: %q %v", timeout, line, err)
				}
				results <- r
			}()
		}
		started.Wait()
		t0 := time.Now()
		if err := action(jti); err != nil {
			return nil, nil, err
		}
		var last int64
		for range verifiers {
			r := <-results
			if r.err != nil {
				return nil, nil, r.err
			}
			kinds[r.kind]++
			last = max(last, r.at)
		}
		lat = append(lat, time.Unix(0, last).Sub(t0))
	}
	slices.Sort(lat)
	return lat, kinds, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)].Round(10 * time.Microsecond)
}

// large fills the issuer's list with bulk revocations and measures a
// fresh verifier's first sync and its steady-state polls.
func large(issuer *proc, bulk int, maxAge time.Duration) error {
	t := time.Now()
	if _, err := post(issuer.addr+"/bulk?n="+strconv.Itoa(bulk), ""); err != nil {
		return err
	}
	fmt.Printf("issuer: %d revocations recorded in %v\n", bulk, time.Since(t).Round(time.Millisecond))
	v, err := start("-role", "verifier", "-issuer", issuer.addr, "-maxage", maxAge.String())
	if err != nil {
		return err
	}
	defer v.stop()
	st, err := stats(v)
	if err != nil {
		return err
	}
	fmt.Printf("first sync of %d jtis: %v, %d bytes (%.1f bytes a jti)\n", st["jtis"], time.Duration(st["first_sync_ns"]).Round(time.Millisecond), st["bytes"], float64(st["bytes"])/float64(max(st["jtis"], 1)))
	// Steady state: let a few long-polls end with nothing new, then one
	// revocation.
	wait := max(maxAge/3/time.Second*time.Second, time.Second)
	time.Sleep(2*wait + wait/2)
	st2, err := stats(v)
	if err != nil {
		return err
	}
	docs := st2["documents"] - st["documents"]
	fmt.Printf("steady state, nothing new: %d polls in %v, %d bytes each\n", docs, 2*wait+wait/2, (st2["bytes"]-st["bytes"])/max(docs, 1))
	if _, err := post(issuer.addr+"/revoke?jti="+randomID(), ""); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	st3, err := stats(v)
	if err != nil {
		return err
	}
	fmt.Printf("steady state, one new revocation: %d poll(s), %d bytes\n", st3["documents"]-st2["documents"], st3["bytes"]-st2["bytes"])
	return nil
}

// proxy forwards TCP connections to target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(addr, target string) (*proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p, nil
}

// cut closes the listener and every connection.
func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// cut measures a verifier whose feed goes through a proxy that is cut,
// then restored on the same address.
func cut(issuer *proc, maxAge, timeout time.Duration) error {
	target := strings.TrimPrefix(issuer.addr, "http://")
	p, err := newProxy("127.0.0.1:0", target)
	if err != nil {
		return err
	}
	addr := p.ln.Addr().String()
	v, err := start("-role", "verifier", "-issuer", issuer.addr, "-feed", "http://"+addr+"/revocations", "-maxage", maxAge.String())
	if err != nil {
		return err
	}
	defer v.stop()
	out, err := post(issuer.addr+"/issue", "")
	if err != nil {
		return err
	}
	_, tok, _ := strings.Cut(out, " ")
	if _, err := post(v.addr+"/check", tok); err != nil {
		return err
	}
	st, err := stats(v)
	if err != nil {
		return err
	}
	p.cut()
	t0 := time.Now()
	failedAt, err := until(v, tok, timeout+maxAge, func(err error) bool { return err != nil && strings.Contains(err.Error(), "revocation-check") })
	if err != nil {
		return fmt.Errorf("cut: %w", err)
	}
	if p, err = newProxy(addr, target); err != nil {
		return err
	}
	defer p.cut()
	t1 := time.Now()
	backAt, err := until(v, tok, timeout, func(err error) bool { return err == nil })
	if err != nil {
		return fmt.Errorf("restored: %w", err)
	}
	fmt.Printf("verifier cut from its feed (MaxAge %v, long-poll wait %v; its newest document was %v old): fails closed (revocation-check) %v after the cut; verifies again %v after the feed is back\n",
		maxAge, max(maxAge/3/time.Second*time.Second, time.Second), t0.Sub(time.UnixMilli(st["fresh_ms"])).Round(time.Millisecond),
		failedAt.Sub(t0).Round(time.Millisecond), backAt.Sub(t1).Round(time.Millisecond))
	return nil
}

// until checks tok every 10 ms until done holds for the answer.
func until(v *proc, tok string, timeout time.Duration, done func(error) bool) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, err := post(v.addr+"/check", tok)
		if done(err) {
			return time.Now(), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("not within %v", timeout)
}
