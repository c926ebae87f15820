// Command httpserver shows tokenkms wired into an existing net/http server
// for a single-node Core: keys, standing approvals and revocations persist
// beside one file (keyring/filestore), local private keys are sealed under
// a key-encryption key read from a 0600 file, the audit trail is a
// hash-chained log, the scheduler runs in the background, and the mux
// serves the JWKS, a token endpoint, a revocation endpoint and an API
// behind the middleware. Everything it promises holds across a restart,
// SIGKILL included: the first key and the standing schedule approval are
// made on the first start only, and revoked tokens stay revoked.
//
//	go run ./examples/httpserver -dir /var/lib/core-keys -addr 127.0.0.1:8080
//	curl -s -X POST 127.0.0.1:8080/token -d 'sub=alice&scope=orders:read'
//	curl -s -H "Authorization: Bearer $TOKEN" 127.0.0.1:8080/api/orders
//	curl -s -X POST -H "Authorization: Bearer $ADMIN" 127.0.0.1:8080/api/admin/revoke -d "jti=$JTI"
//
// The token endpoint stands for Core's own authentication flow: it trusts
// the form it is given, which a real service never does; a real service
// also gives the keys:revoke scope to its security officers only.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/safefile"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

const (
	set      = "access-tokens"
	issuerID = "https://core.example"
	audience = "orders-api"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	dir := flag.String("dir", "", "state directory (keys, key-encryption key, audit log); required")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "httpserver: -dir is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
	if err := serve(ctx, ln, *dir, os.Stdout, options{}); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
}

// options are what a test changes: the clock (default time.Now) and the
// scheduler's interval (default keyring.DefaultTickInterval).
type options struct {
	now  func() time.Time
	tick time.Duration
}

// serve runs the server on ln until ctx is done.
func serve(ctx context.Context, ln net.Listener, dir string, out io.Writer, opt options) error {
	if opt.now == nil {
		opt.now = time.Now
	}
	logger := slog.New(slog.NewTextHandler(out, nil))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	kek, err := loadOrCreateKEK(filepath.Join(dir, "kek"))
	if err != nil {
		return err
	}
	wrapper, err := signer.NewAESWrapper(kek)
	clear(kek)
	if err != nil {
		return err
	}
	local, err := signer.NewLocalProvider(wrapper)
	if err != nil {
		return err
	}
	// The store keeps keys and standing approvals in keys.json, and
	// revocations in keys.json.revoked: the keyring's default revocation
	// list with a filestore.
	store, err := filestore.Open(filepath.Join(dir, "keys.json"), filestore.WithClock(opt.now))
	if err != nil {
		return err
	}
	defer store.Close()
	chain, err := audit.OpenChain(filepath.Join(dir, "audit.log"))
	if err != nil {
		return err
	}
	defer chain.Close()

	ring, err := keyring.New(ctx, keyring.Config{
		Store:        store,
		Providers:    map[string]signer.Provider{"local": local},
		Audit:        audit.Fanout(chain, audit.NewSlog(logger)),
		Sets:         []keyring.SetPolicy{{Name: set, Owner: "team-identity", Algorithm: "ES256"}},
		OnTickError:  func(err error) { logger.Error("key scheduler", "err", err) },
		Now:          opt.now,
		TickInterval: opt.tick,
	})
	if err != nil {
		return err
	}
	if err := bootstrap(ctx, ring); err != nil {
		return err
	}
	pol, err := ring.Policy(set)
	if err != nil {
		return err
	}
	// MaxLifetime defaults to the set's MaxTokenLifetime.
	issuer, err := signer.NewIssuer(ring, signer.IssuerConfig{
		Set: set, Issuer: issuerID, Audience: []string{audience},
		DefaultLifetime: 15 * time.Minute, Now: opt.now,
	})
	if err != nil {
		return err
	}
	v, err := verifier.New(ring, verifier.Policy{Issuer: issuerID, Audience: []string{audience}}, verifier.WithNow(opt.now))
	if err != nil {
		return err
	}

	// The host's existing mux, with tokenkms's handlers added to it.
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/jwks.json", jwks.NewHandler(ring))
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("sub") == "" {
			http.Error(w, "sub required", http.StatusBadRequest)
			return
		}
		tok, err := issuer.Issue(r.Context(), tokenkms.Claims{
			Subject: r.PostForm.Get("sub"), ClientID: "httpserver-demo", PrincipalType: "user",
			Scope: strings.Fields(r.PostForm.Get("scope")),
		})
		if err != nil {
			logger.Error("issue", "err", err)
			http.Error(w, "cannot issue", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "{\"access_token\":%q,\"token_type\":\"Bearer\"}\n", tok)
	})
	api := http.NewServeMux()
	api.Handle("GET /api/orders", verifier.RequireScopes("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "orders of %s\n", c.Subject)
	})))
	// Revocation, by a security officer: a jti (until no token signed now
	// can still be alive), or every token of a kid issued until now. It
	// returns once the revocation is on disk.
	api.Handle("POST /api/admin/revoke", verifier.RequireScopes("keys:revoke")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		officer := keyring.WithPrincipal(r.Context(), keyring.Principal{ID: c.Subject, Roles: []keyring.Role{keyring.RoleSecurityOfficer}})
		var err error
		switch jti, kid := r.PostFormValue("jti"), r.PostFormValue("kid"); {
		case jti != "":
			err = ring.RevokeJTI(officer, jti, opt.now().Add(pol.MaxTokenLifetime))
		case kid != "":
			err = ring.RevokeKID(officer, kid, opt.now())
		default:
			http.Error(w, "jti or kid required", http.StatusBadRequest)
			return
		}
		if err != nil {
			logger.Error("revoke", "err", err)
			http.Error(w, "cannot revoke", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("/api/", verifier.Middleware(v, verifier.WithErrorHook(func(r *http.Request, err error) {
		logger.Info("token refused", "path", r.URL.Path, "err", err)
	}))(api))

	go ring.Run(ctx)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	logger.Info("serving", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ctx.Err()
}

// bootstrap gives the set its first key and its standing schedule
// approval, each once: the store keeps both, so a restart (even after a
// crash between the two) does only what is missing. In production three
// people do this, each with their own role (the approval can come later,
// from an approver's own tool); the example plays them.
func bootstrap(ctx context.Context, ring *keyring.Keyring) error {
	as := func(id string, role keyring.Role) context.Context {
		return keyring.WithPrincipal(ctx, keyring.Principal{ID: id, Roles: []keyring.Role{role}})
	}
	active, err := ring.Keys(as("ops-alice", keyring.RoleIssuer), keyring.Filter{Set: set, States: []keyring.State{keyring.Active}})
	if err != nil {
		return err
	}
	if len(active) == 0 {
		k, err := ring.Create(as("ops-alice", keyring.RoleIssuer), set)
		if err != nil {
			return err
		}
		if err := ring.Approve(as("sec-bob", keyring.RoleApprover), k.KID); err != nil {
			return err
		}
		if err := ring.Activate(as("ops-carol", keyring.RoleDeployer), k.KID); err != nil {
			return err
		}
	}
	report, err := ring.Report(as("sec-bob", keyring.RoleApprover))
	if err != nil {
		return err
	}
	for _, kr := range report {
		if kr.Set == set && kr.ScheduleApprovedBy != "" {
			return nil
		}
	}
	return ring.ApproveSchedule(as("sec-bob", keyring.RoleApprover), set)
}

// loadOrCreateKEK reads the 32-byte key-encryption key, creating it on the
// first start, before the key store is opened: exclusively (O_EXCL, never
// through a symbolic link), mode 0600, synced with its directory so that
// no key is ever sealed under a key-encryption key a crash could lose. The
// file and its directory are checked as the store's are (owner, mode). A
// production host takes the key from its secret manager, or uses a KMS or
// HSM KeyWrapper instead.
func loadOrCreateKEK(path string) ([]byte, error) {
	f, created, err := safefile.Open(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	defer f.Close()
	if created {
		return newKEK(f, path)
	}
	kek, err := io.ReadAll(io.LimitReader(f, 33))
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	if len(kek) != 32 {
		return nil, fmt.Errorf("key-encryption key %s holds %d bytes, want 32 (an empty one is left by an interrupted first start: remove it if keys.json holds no key)", path, len(kek))
	}
	return kek, nil
}

// newKEK fills the new key file f with a fresh key and makes it durable;
// on failure it removes the file, so that the next start makes another.
func newKEK(f *os.File, path string) (kek []byte, err error) {
	defer func() {
		if err != nil {
			os.Remove(path)
			err = fmt.Errorf("key-encryption key: %w", err)
		}
	}()
	kek = make([]byte, 32)
	rand.Read(kek)
	if _, err := f.Write(kek); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := safefile.SyncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return kek, nil
}
