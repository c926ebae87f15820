package grpcauth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/signer"
)

// TokenSource returns the access token to attach to a call.
type TokenSource func(ctx context.Context) (string, error)

// NewCredentials returns per-RPC credentials that attach
// "authorization: Bearer <token>" from src to every call. They require
// transport security (credentials.PerRPCCredentials'
// RequireTransportSecurity), and GetRequestMetadata refuses with
// ErrInsecureTransport, before asking src, a connection whose security
// level is below privacy and integrity. A nil src is refused (ErrConfig).
func NewCredentials(src TokenSource) (credentials.PerRPCCredentials, error) {
	if src == nil {
		return nil, fmt.Errorf("%w: nil TokenSource", ErrConfig)
	}
	return perRPC{src: src}, nil
}

type perRPC struct{ src TokenSource }

func (p perRPC) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, ok := credentials.RequestInfoFromContext(ctx)
	if !ok {
		return nil, fmt.Errorf("%w: no connection information", ErrInsecureTransport)
	}
	if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInsecureTransport, err)
	}
	tok, err := p.src(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenSource, err)
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

func (perRPC) RequireTransportSecurity() bool { return true }

// IssuerSource returns a TokenSource that mints tokens with is from the
// claims template c, and reuses each one until three quarters of its
// lifetime have passed (by now, time.Now when nil). The template must
// leave ID, IssuedAt, NotBefore and ExpiresAt empty: every token gets its
// own jti and times (ErrConfig otherwise).
func IssuerSource(is *signer.Issuer, c tokenkms.Claims, now func() time.Time) (TokenSource, error) {
	switch {
	case is == nil:
		return nil, fmt.Errorf("%w: nil Issuer", ErrConfig)
	case c.ID != "" || !c.IssuedAt.IsZero() || !c.NotBefore.IsZero() || !c.ExpiresAt.IsZero():
		return nil, fmt.Errorf("%w: the claims template sets jti, iat, nbf or exp; each token needs its own", ErrConfig)
	}
	if now == nil {
		now = time.Now
	}
	s := &issuerSource{is: is, c: c, now: now}
	return s.token, nil
}

type issuerSource struct {
	is  *signer.Issuer
	c   tokenkms.Claims
	now func() time.Time

	mu      sync.Mutex
	tok     string
	renewAt time.Time
}

func (s *issuerSource) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != "" && s.now().Before(s.renewAt) {
		return s.tok, nil
	}
	tok, err := s.is.Issue(ctx, s.c)
	if err != nil {
		return "", err
	}
	// Our own token, read for its times only.
	var claims tokenkms.Claims
	parts, err := jose.SplitCompact([]byte(tok))
	if err != nil {
		return "", err
	}
	payload, err := jose.AppendDecode(nil, parts.Payload)
	if err != nil {
		return "", err
	}
	if err := jose.DecodeClaims(string(payload), &claims); err != nil {
		return "", err
	}
	s.tok = tok
	s.renewAt = claims.IssuedAt.Add(claims.ExpiresAt.Sub(claims.IssuedAt) * 3 / 4)
	return tok, nil
}
