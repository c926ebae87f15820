package grpcauth

import "errors"

// Errors of this package; match them with errors.Is.
var (
	// ErrConfig: NewServer or NewCredentials refused its configuration.
	ErrConfig = errors.New("grpcauth: invalid configuration")
	// ErrNoToken: the call carried no bearer token in its "authorization"
	// metadata (a reason given to the error hook, never to the caller).
	ErrNoToken = errors.New("grpcauth: no bearer token")
	// ErrUnmappedMethod: WithCompleteMap was given and the method called
	// has no scope mapping.
	ErrUnmappedMethod = errors.New("grpcauth: method has no scope mapping")
	// ErrInsecureTransport: the client credentials refuse to send a token
	// over a connection without privacy and integrity.
	ErrInsecureTransport = errors.New("grpcauth: refusing to send a token over an insecure transport")
	// ErrTokenSource: the client's token source failed.
	ErrTokenSource = errors.New("grpcauth: token source failed")
)
