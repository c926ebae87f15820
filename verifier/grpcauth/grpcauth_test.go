package grpcauth_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/verifier"
	"github.com/tokenkms/tokenkms/verifier/grpcauth"
)

const (
	checkMethod = grpc_health_v1.Health_Check_FullMethodName
	watchMethod = grpc_health_v1.Health_Watch_FullMethodName
	listMethod  = grpc_health_v1.Health_List_FullMethodName
)

// tlsPair returns server and client credentials for a fresh self-signed
// certificate of 127.0.0.1.
func tlsPair(t *testing.T) (server, client credentials.TransportCredentials) {
	t.Helper()
	sc, cc, err := testenv.LoopbackTLS()
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(sc), credentials.NewTLS(cc)
}

// health answers Check and Watch, and remembers the claims and the
// authorization metadata each call carried.
type health struct {
	grpc_health_v1.UnimplementedHealthServer
	mu     sync.Mutex
	claims []*tokenkms.Claims
	tokens []string
}

func (h *health) seen(ctx context.Context) {
	c, _ := verifier.ClaimsFromContext(ctx)
	md, _ := metadata.FromIncomingContext(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claims = append(h.claims, c)
	h.tokens = append(h.tokens, md.Get("authorization")...)
}

func (h *health) Check(ctx context.Context, _ *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	h.seen(ctx)
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

func (h *health) Watch(_ *grpc_health_v1.HealthCheckRequest, s grpc.ServerStreamingServer[grpc_health_v1.HealthCheckResponse]) error {
	h.seen(s.Context())
	return s.Send(&grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING})
}

func (h *health) calls() ([]*tokenkms.Claims, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*tokenkms.Claims(nil), h.claims...), append([]string(nil), h.tokens...)
}

// serve starts a TLS gRPC server on loopback with the interceptors of s
// and returns a client connection to it and the service.
func serve(t *testing.T, s *grpcauth.Server, dial ...grpc.DialOption) (*grpc.ClientConn, *health) {
	t.Helper()
	sc, cc := tlsPair(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(sc), grpc.UnaryInterceptor(s.Unary()), grpc.StreamInterceptor(s.Stream()))
	h := &health{}
	grpc_health_v1.RegisterHealthServer(srv, h)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(cc)}, dial...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, h
}

func fixture(t *testing.T) *keyringtest.Fixture {
	t.Helper()
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func issue(t *testing.T, f *keyringtest.Fixture, c tokenkms.Claims) string {
	t.Helper()
	if c.Subject == "" {
		c.Subject = "alice"
	}
	c.ClientID = "cli"
	tok, err := f.Issuer.Issue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func withToken(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

// failingKeys is a KeySource that is down.
type failingKeys struct{}

func (failingKeys) VerificationKey(context.Context, string) (verifier.Key, error) {
	return verifier.Key{}, errors.New("key source down")
}

// failingList is a RevocationList that is down.
type failingList struct{ verifier.RevocationList }

func (failingList) Revoked(context.Context, string, string, time.Time) (bool, error) {
	return false, errors.New("revocation store down")
}

func TestUnaryRefusals(t *testing.T) {
	f := fixture(t)
	policy := verifier.Policy{Issuer: "https://core.test", Audience: []string{"api"}}
	keysDown, err := verifier.New(failingKeys{}, policy, verifier.WithRevocationList(f.Revocations), verifier.WithNow(f.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	listDown, err := verifier.New(f.Ring, policy, verifier.WithRevocationList(failingList{f.Revocations}), verifier.WithNow(f.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	good := issue(t, f, tokenkms.Claims{Scope: []string{"health:read"}})
	noScope := issue(t, f, tokenkms.Claims{Scope: []string{"other"}})
	wrongAud := issue(t, f, tokenkms.Claims{Audience: []string{"elsewhere"}, Scope: []string{"health:read"}})
	scopes := grpcauth.WithMethodScopes(map[string][]string{checkMethod: {"health:read"}, watchMethod: {"health:read"}})

	tests := []struct {
		name       string
		v          *verifier.Verifier
		opts       []grpcauth.Option
		ctx        context.Context
		wantCode   codes.Code
		wantReason error // what the error hook is told; nil when the call passes
	}{
		{name: "valid token and scope", v: f.Verifier, opts: []grpcauth.Option{scopes}, ctx: withToken(good), wantCode: codes.OK},
		{name: "no token", v: f.Verifier, opts: []grpcauth.Option{scopes}, ctx: context.Background(), wantCode: codes.Unauthenticated, wantReason: grpcauth.ErrNoToken},
		{name: "basic scheme", v: f.Verifier, opts: []grpcauth.Option{scopes},
			ctx:      metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic "+good),
			wantCode: codes.Unauthenticated, wantReason: grpcauth.ErrNoToken},
		{name: "two authorization entries", v: f.Verifier, opts: []grpcauth.Option{scopes},
			ctx:      metadata.AppendToOutgoingContext(withToken(good), "authorization", "Bearer "+good),
			wantCode: codes.Unauthenticated, wantReason: grpcauth.ErrNoToken},
		{name: "garbage token", v: f.Verifier, opts: []grpcauth.Option{scopes}, ctx: withToken("a.b.c"), wantCode: codes.Unauthenticated, wantReason: verifier.ErrMalformed},
		{name: "wrong audience", v: f.Verifier, opts: []grpcauth.Option{scopes}, ctx: withToken(wrongAud), wantCode: codes.Unauthenticated, wantReason: verifier.ErrAudience},
		{name: "method scope missing", v: f.Verifier, opts: []grpcauth.Option{scopes}, ctx: withToken(noScope), wantCode: codes.PermissionDenied, wantReason: verifier.ErrScope},
		{name: "unmapped method any token", v: f.Verifier, ctx: withToken(noScope), wantCode: codes.OK},
		{name: "key source down", v: keysDown, opts: []grpcauth.Option{scopes}, ctx: withToken(good), wantCode: codes.Unavailable, wantReason: verifier.ErrKeySource},
		{name: "revocation list down", v: listDown, opts: []grpcauth.Option{scopes}, ctx: withToken(good), wantCode: codes.Unavailable, wantReason: verifier.ErrRevocationCheck},
		{name: "public method without token", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithPublicMethods(checkMethod)}, ctx: context.Background(), wantCode: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reasons []error
			hook := grpcauth.WithErrorHook(func(_ context.Context, method string, err error) {
				if method != checkMethod {
					t.Errorf("hook method = %q, want %q", method, checkMethod)
				}
				reasons = append(reasons, err)
			})
			s, err := grpcauth.NewServer(tt.v, append(tt.opts, hook)...)
			if err != nil {
				t.Fatal(err)
			}
			conn, h := serve(t, s)
			_, err = grpc_health_v1.NewHealthClient(conn).Check(tt.ctx, &grpc_health_v1.HealthCheckRequest{})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			claims, _ := h.calls()
			if tt.wantCode != codes.OK {
				if len(claims) != 0 {
					t.Errorf("handler ran %d times for a refused call", len(claims))
				}
				msg := status.Convert(err).Message()
				for _, leak := range []string{"verifier", "grpcauth", "scope", "audience", "kid"} {
					if strings.Contains(msg, leak) {
						t.Errorf("status message %q tells the caller why (%q)", msg, leak)
					}
				}
				if len(reasons) != 1 || !errors.Is(reasons[0], tt.wantReason) {
					t.Errorf("hook reasons = %v, want one wrapping %v", reasons, tt.wantReason)
				}
				return
			}
			if len(reasons) != 0 {
				t.Errorf("hook called for an accepted call: %v", reasons)
			}
			if len(claims) != 1 {
				t.Fatalf("handler ran %d times, want 1", len(claims))
			}
			if tt.ctx == context.Background() {
				if claims[0] != nil {
					t.Errorf("public call got claims %v", claims[0])
				}
				return
			}
			if claims[0] == nil || claims[0].Subject != "alice" {
				t.Errorf("claims in the handler = %+v, want subject alice", claims[0])
			}
		})
	}
}

func TestCompleteMapRefusesUnmappedAtRunTime(t *testing.T) {
	f := fixture(t)
	// The declared service is not the one registered: Check is unmapped.
	other := grpc.ServiceDesc{ServiceName: "test.Other", Methods: []grpc.MethodDesc{{MethodName: "Do"}}}
	var reason error
	s, err := grpcauth.NewServer(f.Verifier,
		grpcauth.WithCompleteMap(&other),
		grpcauth.WithMethodScopes(map[string][]string{"/test.Other/Do": nil}),
		grpcauth.WithErrorHook(func(_ context.Context, _ string, err error) { reason = err }))
	if err != nil {
		t.Fatal(err)
	}
	conn, h := serve(t, s)
	_, err = grpc_health_v1.NewHealthClient(conn).Check(withToken(issue(t, f, tokenkms.Claims{})), &grpc_health_v1.HealthCheckRequest{})
	if got := status.Code(err); got != codes.PermissionDenied {
		t.Fatalf("code = %v, want PermissionDenied", got)
	}
	if !errors.Is(reason, grpcauth.ErrUnmappedMethod) {
		t.Errorf("reason = %v, want ErrUnmappedMethod", reason)
	}
	if claims, _ := h.calls(); len(claims) != 0 {
		t.Errorf("handler ran for an unmapped method")
	}
}

func TestStream(t *testing.T) {
	f := fixture(t)
	s, err := grpcauth.NewServer(f.Verifier, grpcauth.WithMethodScopes(map[string][]string{watchMethod: {"health:watch"}}))
	if err != nil {
		t.Fatal(err)
	}
	conn, h := serve(t, s)
	client := grpc_health_v1.NewHealthClient(conn)
	tests := []struct {
		name     string
		ctx      context.Context
		wantCode codes.Code
	}{
		{name: "scoped token", ctx: withToken(issue(t, f, tokenkms.Claims{Scope: []string{"health:watch"}})), wantCode: codes.OK},
		{name: "no token", ctx: context.Background(), wantCode: codes.Unauthenticated},
		{name: "token without the scope", ctx: withToken(issue(t, f, tokenkms.Claims{Scope: []string{"health:read"}})), wantCode: codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := h.calls()
			st, err := client.Watch(tt.ctx, &grpc_health_v1.HealthCheckRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			after, _ := h.calls()
			ran := len(after) - len(before)
			switch {
			case tt.wantCode != codes.OK && ran != 0:
				t.Errorf("handler ran for a refused stream")
			case tt.wantCode == codes.OK && (ran != 1 || after[len(after)-1] == nil || after[len(after)-1].Subject != "alice"):
				t.Errorf("stream handler did not see the claims: %d calls", ran)
			}
		})
	}
}

func TestNewServerRefusesBadConfig(t *testing.T) {
	f := fixture(t)
	desc := &grpc_health_v1.Health_ServiceDesc
	all := map[string][]string{checkMethod: nil, watchMethod: nil, listMethod: nil}
	tests := []struct {
		name string
		v    *verifier.Verifier
		opts []grpcauth.Option
		want error
	}{
		{name: "nil verifier", v: nil, want: grpcauth.ErrConfig},
		{name: "nil option", v: f.Verifier, opts: []grpcauth.Option{nil}, want: grpcauth.ErrConfig},
		{name: "nil hook", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithErrorHook(nil)}, want: grpcauth.ErrConfig},
		{name: "method without slash", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithMethodScopes(map[string][]string{"grpc.health.v1.Health/Check": nil})}, want: grpcauth.ErrConfig},
		{name: "method without service", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithPublicMethods("/Check")}, want: grpcauth.ErrConfig},
		{name: "bad scope token", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithMethodScopes(map[string][]string{checkMethod: {"a b"}})}, want: grpcauth.ErrConfig},
		{name: "mapped twice", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithMethodScopes(map[string][]string{checkMethod: nil}), grpcauth.WithMethodScopes(map[string][]string{checkMethod: {"x"}})}, want: grpcauth.ErrConfig},
		{name: "public and scoped", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithMethodScopes(map[string][]string{checkMethod: nil}), grpcauth.WithPublicMethods(checkMethod)}, want: grpcauth.ErrConfig},
		{name: "complete map, method unmapped", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithCompleteMap(desc), grpcauth.WithMethodScopes(map[string][]string{checkMethod: nil, listMethod: nil})}, want: grpcauth.ErrUnmappedMethod},
		{name: "complete map, unknown method mapped", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithCompleteMap(desc), grpcauth.WithMethodScopes(all), grpcauth.WithPublicMethods("/grpc.health.v1.Health/Chekc")}, want: grpcauth.ErrConfig},
		{name: "complete map, nil desc", v: f.Verifier, opts: []grpcauth.Option{grpcauth.WithCompleteMap(nil)}, want: grpcauth.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := grpcauth.NewServer(tt.v, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewServer error = %v, want %v", err, tt.want)
			}
			if s != nil {
				t.Errorf("NewServer returned a server with an error")
			}
		})
	}
	if _, err := grpcauth.NewServer(f.Verifier, grpcauth.WithCompleteMap(desc), grpcauth.WithMethodScopes(all)); err != nil {
		t.Errorf("complete map of every method refused: %v", err)
	}
}

func TestCredentialsFromIssuer(t *testing.T) {
	f := fixture(t)
	s, err := grpcauth.NewServer(f.Verifier, grpcauth.WithMethodScopes(map[string][]string{checkMethod: {"health:read"}}))
	if err != nil {
		t.Fatal(err)
	}
	src, err := grpcauth.IssuerSource(f.Issuer, tokenkms.Claims{Subject: "svc", ClientID: "cli", Scope: []string{"health:read"}}, f.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := grpcauth.NewCredentials(src)
	if err != nil {
		t.Fatal(err)
	}
	conn, h := serve(t, s, grpc.WithPerRPCCredentials(creds))
	client := grpc_health_v1.NewHealthClient(conn)
	check := func() {
		t.Helper()
		if _, err := client.Check(context.Background(), &grpc_health_v1.HealthCheckRequest{}); err != nil {
			t.Fatalf("Check with the issuer's credentials: %v", err)
		}
	}
	check()
	check()
	first, _ := h.calls()
	if len(first) != 2 || first[0] == nil {
		t.Fatalf("server saw %d calls, want 2 with claims", len(first))
	}
	f.Clock.Advance(first[0].ExpiresAt.Sub(first[0].IssuedAt)*3/4 + time.Second) // past 3/4 of the lifetime
	check()
	claims, tokens := h.calls()
	if len(claims) != 3 || claims[0].Subject != "svc" {
		t.Fatalf("server saw %d calls (%v), want 3 as svc", len(claims), claims)
	}
	if tokens[0] != tokens[1] {
		t.Errorf("a fresh token was minted for the second call; want the first reused")
	}
	if tokens[2] == tokens[1] || claims[2].ID == claims[1].ID {
		t.Errorf("the token was reused past 3/4 of its lifetime")
	}
}

func TestCredentialsRefuseInsecureTransport(t *testing.T) {
	f := fixture(t)
	minted := 0
	creds, err := grpcauth.NewCredentials(func(context.Context) (string, error) {
		minted++
		return issue(t, f, tokenkms.Claims{}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := grpcauth.NewServer(f.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(s.Unary()))
	h := &health{}
	grpc_health_v1.RegisterHealthServer(srv, h)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	if _, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(creds)); err == nil {
		t.Errorf("NewClient accepted token credentials on an insecure connection")
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = grpc_health_v1.NewHealthClient(conn).Check(context.Background(), &grpc_health_v1.HealthCheckRequest{}, grpc.PerRPCCredentials(creds))
	if got := status.Code(err); got != codes.Unauthenticated {
		t.Errorf("call over an insecure connection: code %v (%v), want Unauthenticated", got, err)
	}
	if _, tokens := h.calls(); len(tokens) != 0 || minted != 0 {
		t.Errorf("a token was minted (%d) or reached the server (%d)", minted, len(tokens))
	}
	// Without connection information (a transport that does not say how
	// secure it is), the credentials refuse on their own.
	if _, err := creds.GetRequestMetadata(context.Background()); !errors.Is(err, grpcauth.ErrInsecureTransport) {
		t.Errorf("GetRequestMetadata without connection info: %v, want ErrInsecureTransport", err)
	}
	if !creds.RequireTransportSecurity() {
		t.Errorf("RequireTransportSecurity = false")
	}
}

func TestCredentialsRefuseBadConfig(t *testing.T) {
	f := fixture(t)
	tests := []struct {
		name string
		make func() error
	}{
		{name: "nil source", make: func() error { _, err := grpcauth.NewCredentials(nil); return err }},
		{name: "nil issuer", make: func() error { _, err := grpcauth.IssuerSource(nil, tokenkms.Claims{}, nil); return err }},
		{name: "fixed jti", make: func() error { _, err := grpcauth.IssuerSource(f.Issuer, tokenkms.Claims{ID: "j"}, nil); return err }},
		{name: "fixed exp", make: func() error {
			_, err := grpcauth.IssuerSource(f.Issuer, tokenkms.Claims{ExpiresAt: time.Now()}, nil)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.make(); !errors.Is(err, grpcauth.ErrConfig) {
				t.Errorf("error = %v, want ErrConfig", err)
			}
		})
	}
}
