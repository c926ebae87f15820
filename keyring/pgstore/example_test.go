package pgstore_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// One replica of a Core that runs several, sharing one PostgreSQL: the
// store holds the keys, the audit chain and the revocations (answered from
// memory by a RevocationCache); Listen refreshes this replica when another
// one changes a key; TryLead lets one replica at a time run the
// scheduler. (Compiled, not run: it needs a database.)
func ExampleNew() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logger := slog.Default()

	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	migrateCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := pgstore.Migrate(migrateCtx, pool); err != nil { // idempotent, from every replica
		panic(err)
	}
	store := pgstore.New(pool)
	revocations, err := store.RevocationCache(pgstore.CacheConfig{
		OnError: func(err error) { logger.Error("revocation cache", "err", err) },
	})
	if err != nil {
		panic(err)
	}
	go revocations.Run(ctx)

	// Local keys sealed under a KEK from the host's secret store; or an
	// awskms, gcpkms or pkcs11 provider.
	wrapper, err := signer.NewAESWrapper([]byte(os.Getenv("TOKENKMS_KEK")))
	if err != nil {
		panic(err)
	}
	local, err := signer.NewLocalProvider(wrapper)
	if err != nil {
		panic(err)
	}
	ring, err := keyring.New(ctx, keyring.Config{
		Store:       store,
		Providers:   map[string]signer.Provider{"local": local},
		Audit:       audit.Fanout(store, audit.NewSlog(logger)),
		Revocations: revocations,
		Sets:        []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}},
		TickLease:   store.TryLead,
		OnTickError: func(err error) { logger.Error("key scheduler", "err", err) },
	})
	if err != nil {
		panic(err)
	}
	go store.Listen(ctx, func() {
		refreshCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := ring.Refresh(refreshCtx); err != nil {
			logger.Error("keyring refresh", "err", err)
		}
	})
	go ring.Run(ctx)

	v, err := verifier.New(ring, verifier.Policy{Issuer: "https://core.example", Audience: []string{"orders-api"}})
	if err != nil {
		panic(err)
	}
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		w.Write([]byte("orders of " + c.Subject))
	})
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/jwks.json", jwks.NewHandler(ring))
	mux.Handle("/orders/", verifier.Middleware(v)(verifier.RequireScopes("orders:read")(orders)))
	srv := &http.Server{Addr: ":8443", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServeTLS("cert.pem", "key.pem"); err != nil {
		logger.Error("server", "err", err)
	}
}
