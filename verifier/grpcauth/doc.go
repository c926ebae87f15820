// Package grpcauth protects gRPC services with tokenkms access tokens, as
// verifier.Middleware protects HTTP handlers, and attaches tokens to a
// client's calls.
//
// On the server, NewServer returns the unary and stream interceptors: the
// bearer token of the "authorization" metadata is verified, the method's
// scopes (WithMethodScopes) are required, and the claims reach the handler
// in the context, where verifier.ClaimsFromContext finds them as it does
// behind verifier.Middleware. The caller learns only a status code,
// never why:
//   - codes.Unauthenticated: no token, or a token Verify refuses;
//   - codes.PermissionDenied: a valid token without a required scope, or
//     (WithCompleteMap) a method with no scope mapping;
//   - codes.Unavailable: the key source or the revocation list is down
//     (verifier.ErrKeySource, verifier.ErrRevocationCheck): retry later.
//
// WithErrorHook receives the reason for server-side logs.
//
// On the client, NewCredentials returns credentials.PerRPCCredentials that
// attach a token from a TokenSource (IssuerSource mints them with a
// signer.Issuer). They require transport security: gRPC refuses them on an
// insecure connection, and they check the connection's security level
// themselves before handing out a token.
//
// # Errors
//
// Construction refuses a nil verifier, a method name that is not of the
// form "/package.Service/Method", a scope that is not an RFC 6749 scope
// token, a mapping for a method that none of the services given to
// WithCompleteMap has, and a method of those services left unmapped
// (ErrConfig).
package grpcauth
