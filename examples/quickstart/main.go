// Command quickstart runs the whole tokenkms flow on in-memory defaults:
// it creates a key set, serves the JWKS and a protected endpoint on
// 127.0.0.1, issues a token and calls the endpoint with it, rotates the key
// (the successor is pre-published, the old token stays valid during
// grace), retires the old key (its token is then refused), handles a key
// compromise, and prints the audit trail.
//
// The clock is keyringtest's fake clock, so that pre-publication and grace
// windows pass in an instant; a real host leaves Config.Now nil (time.Now).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

const set = "access-tokens"

var (
	alice = keyring.Principal{ID: "alice", Roles: []keyring.Role{keyring.RoleIssuer}}
	bob   = keyring.Principal{ID: "bob", Roles: []keyring.Role{keyring.RoleApprover}}
	carol = keyring.Principal{ID: "carol", Roles: []keyring.Role{keyring.RoleDeployer}}
	dave  = keyring.Principal{ID: "dave", Roles: []keyring.Role{keyring.RoleSecurityOfficer}}
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	clock := keyringtest.NewClock(time.Now().UTC()) // moves only when told

	// 1. The keyring: in-memory store, local keys wrapped under an
	// ephemeral key-encryption key, an audit recorder, a revocation list.
	trail := audit.NewRecorder()
	revocations := verifier.NewMemoryRevocationList(clock.Now)
	ring, err := keyring.New(ctx, keyring.Config{
		Audit:       trail,
		Revocations: revocations,
		Now:         clock.Now,
		Sets:        []keyring.SetPolicy{{Name: set, Owner: "team-identity", Algorithm: "ES256"}},
	})
	if err != nil {
		return err
	}
	pol, _ := ring.Policy(set)
	say("key set %q: %s, rotate every %v, pre-publish %v, grace %v", set, pol.Algorithm, pol.RotationPeriod, pol.PrePublication, pol.Grace)

	// Three people bring the first key to life (R6.3): alice generates,
	// bob approves, carol deploys.
	first, err := ring.Create(as(alice), set)
	if err != nil {
		return err
	}
	if err := ring.Approve(as(bob), first.KID); err != nil {
		return err
	}
	if err := ring.Activate(as(carol), first.KID); err != nil {
		return err
	}
	say("key %s active (owner %s, rotate by %s)", first.KID, first.Owner, first.RotateBy.Format("2006-01-02"))

	// 2. Issuer and verifier.
	issuer, err := signer.NewIssuer(ring, signer.IssuerConfig{
		Set: set, Issuer: "https://core.example", Audience: []string{"orders-api"},
		DefaultLifetime: 30 * time.Minute, MaxLifetime: pol.MaxTokenLifetime, Now: clock.Now,
	})
	if err != nil {
		return err
	}
	v, err := verifier.New(ring, verifier.Policy{
		Issuer: "https://core.example", Audience: []string{"orders-api"},
		RequiredScopes: []string{"orders:read"}, AllowedPrincipalTypes: []string{"user", "service"},
	}, verifier.WithNow(clock.Now))
	if err != nil {
		return err
	}

	// 3. The JWKS and a protected endpoint, on 127.0.0.1.
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/jwks.json", jwks.NewHandler(ring))
	mux.Handle("GET /orders", verifier.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "orders of %s", c.Subject)
	})))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	say("serving %s/.well-known/jwks.json and %s/orders", base, base)

	client := &http.Client{Timeout: 5 * time.Second}
	call := func(label, token string) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/orders", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if resp.StatusCode == http.StatusOK {
			say("  %-34s -> %d %s", label, resp.StatusCode, body)
		} else {
			say("  %-34s -> %d %s", label, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		return nil
	}
	jwksKIDs := func() ([]string, error) {
		resp, err := client.Get(base + "/.well-known/jwks.json")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var doc struct {
			Keys []struct {
				KID string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return nil, err
		}
		var kids []string
		for _, k := range doc.Keys {
			kids = append(kids, k.KID)
		}
		return kids, nil
	}
	issue := func() (string, error) {
		return issuer.Issue(ctx, tokenkms.Claims{
			Subject: "user-123", ClientID: "web-app", PrincipalType: "user", Scope: []string{"orders:read"},
		})
	}

	// 4. Issue a token and use it.
	say("\n# issue and call")
	oldToken, err := issue()
	if err != nil {
		return err
	}
	if err := call("token of the first key", oldToken); err != nil {
		return err
	}
	if err := call("no token at all", ""); err != nil {
		return err
	}

	// 5. Rotate (R3.4): the successor is published first, then signs.
	say("\n# rotate")
	next, err := ring.Rotate(as(alice), set)
	if err != nil {
		return err
	}
	if err := ring.Approve(as(bob), next.KID); err != nil {
		return err
	}
	kids, err := jwksKIDs()
	if err != nil {
		return err
	}
	say("  successor %s pre-published; JWKS now holds %v", next.KID, kids)
	clock.Advance(pol.PrePublication)
	if err := ring.Tick(ctx); err != nil {
		return err
	}
	newToken, err := issue()
	if err != nil {
		return err
	}
	say("  after pre-publication the successor signs")
	if err := call("old token, during grace", oldToken); err != nil {
		return err
	}
	if err := call("new token", newToken); err != nil {
		return err
	}

	// 6. Grace over: the old key is retired and its tokens refused (T2).
	say("\n# grace window over")
	clock.Advance(pol.Grace)
	if err := ring.Tick(ctx); err != nil {
		return err
	}
	kids, err = jwksKIDs()
	if err != nil {
		return err
	}
	say("  old key retired; JWKS now holds %v", kids)
	if err := call("old token, after retirement", oldToken); err != nil {
		return err
	}
	newToken, err = issue()
	if err != nil {
		return err
	}
	if err := call("token of the active key", newToken); err != nil {
		return err
	}

	// 7. Compromise (R4): one call freezes, replaces and revokes.
	say("\n# emergency rotation")
	fresh, err := ring.EmergencyRotate(as(dave), next.KID, keyring.Incident{ID: "INC-1", Reason: "key material exposed", Severity: "critical"})
	if err != nil {
		return err
	}
	say("  %s compromised; %s active at once", next.KID, fresh.KID)
	// No standby key here (no standing schedule approval): the fresh key
	// is break-glass, and a second person reviews it.
	if err := ring.Review(as(bob), fresh.KID); err != nil {
		return err
	}
	say("  break-glass key %s reviewed by bob", fresh.KID)
	if err := call("token of the compromised key", newToken); err != nil {
		return err
	}
	freshToken, err := issue()
	if err != nil {
		return err
	}
	if err := call("token of the fresh key", freshToken); err != nil {
		return err
	}

	// 8. The compliance report: every key, its owner, age and rotation date.
	say("\n# key report")
	report, err := ring.Report(as(dave))
	if err != nil {
		return err
	}
	for _, k := range report {
		say("  %s  %-11s owner %s  age %-8v rotate by %s  overdue %d d", k.KID, k.State, k.Owner, k.Age.Round(time.Minute), k.RotateBy.Format("2006-01-02"), k.DaysOverdue)
	}

	// 9. The audit trail: who did what to which key.
	say("\n# audit trail")
	for _, e := range trail.Events() {
		say("  %s  %-18s %-22s %-8s %s %s", e.Time.Format("2006-01-02 15:04"), e.Type, e.Actor, e.Outcome, e.KID, e.Incident)
	}
	return nil
}
