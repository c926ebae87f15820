// Command grpcotel wires tokenkms into a gRPC service and OpenTelemetry:
// the standard gRPC health service on 127.0.0.1 (TLS) is protected by the
// grpcauth interceptors, a client calls it with per-RPC credentials that
// mint tokens with the Issuer, the keyring rotates its key, and every span
// goes to the stdout trace exporter (one JSON object a line); the metrics
// are then collected once and printed.
//
// The OpenTelemetry SDK appears only here, in the host: the library talks
// to the API, takes the providers from its configuration, and records
// nothing when none is installed. The clock is keyringtest's fake clock so
// that the pre-publication delay passes in an instant; a real host leaves
// Config.Now nil, loads its own TLS certificate, and exports to a
// collector.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
	"github.com/tokenkms/tokenkms/verifier/grpcauth"
)

const set = "access-tokens"

var (
	alice = keyring.Principal{ID: "alice", Roles: []keyring.Role{keyring.RoleIssuer}}
	bob   = keyring.Principal{ID: "bob", Roles: []keyring.Role{keyring.RoleApprover}}
	carol = keyring.Principal{ID: "carol", Roles: []keyring.Role{keyring.RoleDeployer}}
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "grpcotel:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	clock := keyringtest.NewClock(time.Now().UTC())

	// 1. The host's OpenTelemetry: spans to stdout as they end, metrics
	// read on demand.
	exporter, err := stdouttrace.New(stdouttrace.WithWriter(out))
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer tp.Shutdown(context.WithoutCancel(ctx))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.WithoutCancel(ctx))
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// 2. The keyring, the Issuer and the Verifier, all given the providers.
	ring, err := keyring.New(ctx, keyring.Config{
		Now:            clock.Now,
		Sets:           []keyring.SetPolicy{{Name: set, Owner: "team-identity", Algorithm: "ES256"}},
		TracerProvider: tp, MeterProvider: mp, Logger: logger,
	})
	if err != nil {
		return err
	}
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
	pol, err := ring.Policy(set)
	if err != nil {
		return err
	}
	issuer, err := signer.NewIssuer(ring, signer.IssuerConfig{
		Set: set, Issuer: "https://core.example", Audience: []string{"health-api"},
		DefaultLifetime: 15 * time.Minute, MaxLifetime: pol.MaxTokenLifetime, Now: clock.Now,
		TracerProvider: tp, MeterProvider: mp,
	})
	if err != nil {
		return err
	}
	v, err := verifier.New(ring, verifier.Policy{Issuer: "https://core.example", Audience: []string{"health-api"}},
		verifier.WithNow(clock.Now), verifier.WithCache(1024), verifier.WithTracerProvider(tp), verifier.WithMeterProvider(mp))
	if err != nil {
		return err
	}

	// 3. The gRPC server: every method of the health service mapped to a
	// scope (WithCompleteMap refuses a forgotten one at construction).
	auth, err := grpcauth.NewServer(v,
		grpcauth.WithCompleteMap(&grpc_health_v1.Health_ServiceDesc),
		grpcauth.WithMethodScopes(map[string][]string{
			grpc_health_v1.Health_Check_FullMethodName: {"health:read"},
			grpc_health_v1.Health_List_FullMethodName:  {"health:read"},
			grpc_health_v1.Health_Watch_FullMethodName: {"health:read"},
		}),
		grpcauth.WithErrorHook(func(_ context.Context, method string, err error) {
			logger.Info("grpc call refused", "method", method, "reason", err)
		}))
	if err != nil {
		return err
	}
	serverTLS, clientTLS, err := testenv.LoopbackTLS()
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)),
		grpc.UnaryInterceptor(auth.Unary()), grpc.StreamInterceptor(auth.Stream()))
	grpc_health_v1.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	defer srv.Stop()

	// 4. The client: tokens minted by the Issuer, attached to each call.
	src, err := grpcauth.IssuerSource(issuer, tokenkms.Claims{Subject: "svc-orders", ClientID: "orders", Scope: []string{"health:read"}}, clock.Now)
	if err != nil {
		return err
	}
	creds, err := grpcauth.NewCredentials(src)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := grpc_health_v1.NewHealthClient(conn)
	check := func(what string, opts ...grpc.CallOption) {
		resp, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, opts...)
		if err != nil {
			say("== %-28s -> %v", what, status.Code(err))
			return
		}
		say("== %-28s -> %v", what, resp.Status)
	}
	forged, err := grpcauth.NewCredentials(func(context.Context) (string, error) { return "not.a.token", nil })
	if err != nil {
		return err
	}
	say("== calls before the rotation")
	check("Check with a token", grpc.PerRPCCredentials(creds))
	check("Check again, same token", grpc.PerRPCCredentials(creds))
	check("Check without a token")
	check("Check with a forged token", grpc.PerRPCCredentials(forged))

	// 5. A rotation, under one span so that its steps share a trace.
	say("== rotation: its spans follow, one JSON object a line")
	rctx, span := tp.Tracer("grpcotel").Start(ctx, "example.rotation")
	next, err := ring.Rotate(keyring.WithPrincipal(rctx, alice), set)
	if err != nil {
		return err
	}
	if err := ring.Approve(keyring.WithPrincipal(rctx, bob), next.KID); err != nil {
		return err
	}
	clock.Advance(pol.PrePublication)
	if err := ring.Tick(rctx); err != nil {
		return err
	}
	span.End()
	active, err := ring.Key(as(keyringtest.Core), next.KID)
	if err != nil {
		return err
	}
	say("== key %s is now %v", active.KID, active.State)
	check("Check after the rotation", grpc.PerRPCCredentials(creds))

	// 6. The metrics, collected once.
	say("== metrics")
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	printMetrics(out, rm)
	return nil
}

// printMetrics prints one line per data point: name{attributes} value
// (a histogram: its count and sum).
func printMetrics(out io.Writer, rm metricdata.ResourceMetrics) {
	var lines []string
	add := func(name string, attrs attribute.Set, value string) {
		var kv []string
		for _, a := range attrs.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.Emit())
		}
		lines = append(lines, fmt.Sprintf("%s{%s} %s", name, strings.Join(kv, ","), value))
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, fmt.Sprint(p.Value))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, fmt.Sprint(p.Value))
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, fmt.Sprintf("%.0f", p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, fmt.Sprintf("count=%d sum=%.6fs", p.Count, p.Sum))
				}
			}
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
}
