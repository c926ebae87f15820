package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/verifier"
)

// Option configures NewServer.
type Option func(*Server) error

// WithMethodScopes requires, for each full method name
// ("/package.Service/Method"), every scope listed, on top of the Policy's
// RequiredScopes. An empty list maps a method that any valid token may
// call. Several calls add up; mapping one method twice is refused.
func WithMethodScopes(scopes map[string][]string) Option {
	return func(s *Server) error {
		for m, sc := range scopes {
			if err := checkMethod(m); err != nil {
				return err
			}
			if _, dup := s.scopes[m]; dup {
				return fmt.Errorf("%w: method %s mapped twice", ErrConfig, m)
			}
			for _, x := range sc {
				if !jose.ValidScopeToken(x) {
					return fmt.Errorf("%w: method %s: %q is not a scope token", ErrConfig, m, x)
				}
			}
			s.scopes[m] = slices.Clone(sc)
		}
		return nil
	}
}

// WithCompleteMap declares the services the server registers: NewServer
// refuses a method of theirs without a mapping (WithMethodScopes or
// WithPublicMethods) and a mapping for a method they do not have (a typo
// would leave the real method unprotected otherwise); at run time a method
// without a mapping is refused with PermissionDenied.
func WithCompleteMap(services ...*grpc.ServiceDesc) Option {
	return func(s *Server) error {
		for _, d := range services {
			if d == nil {
				return fmt.Errorf("%w: nil ServiceDesc", ErrConfig)
			}
			s.services = append(s.services, d)
		}
		s.complete = true
		return nil
	}
}

// WithPublicMethods lets calls to the listed full method names through
// without a token (health checks, reflection). Their handlers find no
// claims in the context.
func WithPublicMethods(methods ...string) Option {
	return func(s *Server) error {
		for _, m := range methods {
			if err := checkMethod(m); err != nil {
				return err
			}
			s.public[m] = true
		}
		return nil
	}
}

// WithErrorHook calls onError with the full method and the reason of every
// refusal (a Verify error, ErrNoToken, verifier.ErrScope for a missing
// method scope, ErrUnmappedMethod), for server-side logs. The reason never
// reaches the caller.
func WithErrorHook(onError func(ctx context.Context, fullMethod string, err error)) Option {
	return func(s *Server) error {
		if onError == nil {
			return fmt.Errorf("%w: nil error hook", ErrConfig)
		}
		s.onError = onError
		return nil
	}
}

// Server holds the interceptors' configuration; it is immutable once
// built and safe for concurrent use.
type Server struct {
	v        *verifier.Verifier
	scopes   map[string][]string
	public   map[string]bool
	complete bool
	services []*grpc.ServiceDesc
	onError  func(ctx context.Context, fullMethod string, err error)
}

// NewServer returns the interceptors' configuration over v. It fails with
// ErrConfig on a nil verifier or option, a malformed method name or scope,
// and (WithCompleteMap) an unmapped or unknown method.
func NewServer(v *verifier.Verifier, opts ...Option) (*Server, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: nil Verifier", ErrConfig)
	}
	s := &Server{v: v, scopes: make(map[string][]string), public: make(map[string]bool)}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrConfig)
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	for m := range s.public {
		if _, both := s.scopes[m]; both {
			return nil, fmt.Errorf("%w: method %s is both public and scoped", ErrConfig, m)
		}
	}
	if s.complete {
		if err := s.checkComplete(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkComplete matches the mappings against the declared services.
func (s *Server) checkComplete() error {
	known := make(map[string]bool)
	for _, d := range s.services {
		for _, m := range d.Methods {
			known["/"+d.ServiceName+"/"+m.MethodName] = true
		}
		for _, m := range d.Streams {
			known["/"+d.ServiceName+"/"+m.StreamName] = true
		}
	}
	var unmapped []string
	for m := range known {
		if _, ok := s.scopes[m]; !ok && !s.public[m] {
			unmapped = append(unmapped, m)
		}
	}
	if len(unmapped) > 0 {
		slices.Sort(unmapped)
		return fmt.Errorf("%w: %w: %s: give WithMethodScopes (an empty list for any valid token) or WithPublicMethods",
			ErrConfig, ErrUnmappedMethod, strings.Join(unmapped, ", "))
	}
	for _, set := range []map[string]bool{s.public, keys(s.scopes)} {
		for m := range set {
			if !known[m] {
				return fmt.Errorf("%w: method %s is mapped but no declared service has it", ErrConfig, m)
			}
		}
	}
	return nil
}

func keys(m map[string][]string) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func checkMethod(m string) error {
	svc, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
	if !strings.HasPrefix(m, "/") || !ok || svc == "" || method == "" || strings.Contains(method, "/") {
		return fmt.Errorf("%w: %q is not a full method name (/package.Service/Method)", ErrConfig, m)
	}
	return nil
}

// Unary returns the unary server interceptor.
func (s *Server) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := s.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor.
func (s *Server) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := s.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
	}
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authedStream) Context() context.Context { return a.ctx }

// Status errors returned to callers: the code says what to do, never why.
var (
	errUnauthenticated = status.Error(codes.Unauthenticated, "unauthenticated")
	errDenied          = status.Error(codes.PermissionDenied, "permission denied")
	errUnavailable     = status.Error(codes.Unavailable, "authorization unavailable, retry later")
)

// authorize verifies the call's token and the method's scopes, and returns
// the context carrying the claims or the status error for the caller.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	if s.public[method] {
		return ctx, nil
	}
	scopes, mapped := s.scopes[method]
	if !mapped && s.complete {
		return nil, s.refuse(ctx, method, errDenied, fmt.Errorf("%w: %s", ErrUnmappedMethod, method))
	}
	token, err := bearer(ctx)
	if err != nil {
		return nil, s.refuse(ctx, method, errUnauthenticated, err)
	}
	c, err := s.v.Verify(ctx, token)
	switch {
	case err == nil:
	case errors.Is(err, verifier.ErrKeySource), errors.Is(err, verifier.ErrRevocationCheck):
		return nil, s.refuse(ctx, method, errUnavailable, err)
	case errors.Is(err, verifier.ErrScope):
		return nil, s.refuse(ctx, method, errDenied, err)
	default:
		return nil, s.refuse(ctx, method, errUnauthenticated, err)
	}
	for _, sc := range scopes {
		if !c.HasScope(sc) {
			return nil, s.refuse(ctx, method, errDenied, fmt.Errorf("%w: method %s requires %q", verifier.ErrScope, method, sc))
		}
	}
	return verifier.ContextWithClaims(ctx, c), nil
}

func (s *Server) refuse(ctx context.Context, method string, st, reason error) error {
	if s.onError != nil {
		s.onError(ctx, method, reason)
	}
	return st
}

// bearer returns the token of the single "authorization: Bearer <token>"
// metadata entry (scheme case-insensitive).
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch len(vals) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", fmt.Errorf("%w: %d authorization entries", ErrNoToken, len(vals))
	}
	scheme, token, _ := strings.Cut(vals[0], " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", fmt.Errorf("%w: not a Bearer credential", ErrNoToken)
	}
	return token, nil
}
