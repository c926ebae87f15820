package signer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/telemetry"
)

// TokenType is the "typ" header of every token the Issuer mints (RFC 9068 §2.1).
const TokenType = "at+jwt"

// jtiBytes is the number of random bytes of a generated jti (128 bits).
const jtiBytes = 16

// IssuedTokens records every token an Issuer mints, so that the host can
// revoke a compromised key's tokens one by one (R4.4). Issued is called
// after signing and before Issue returns; if it fails, Issue fails and the
// token is discarded.
type IssuedTokens interface {
	Issued(ctx context.Context, kid, jti string, expiresAt time.Time) error
}

// VerifiableUntil is implemented by Signers whose key stops verifying at a
// known time (the keyring's signers: the end of the key's grace window). A
// zero time means no known horizon. The Issuer never mints a token that
// outlives it.
type VerifiableUntil interface {
	VerifiableUntil() time.Time
}

// IssuerConfig configures an Issuer. NewIssuer validates it.
type IssuerConfig struct {
	Set             string           // key set whose Active key signs (required; known to the keys when they are SetLimits)
	Issuer          string           // "iss" of every token (required)
	Audience        []string         // "aud" when the claims give none (required)
	DefaultLifetime time.Duration    // exp − iat when the claims give no exp (≤ MaxLifetime; default MaxLifetime)
	MaxLifetime     time.Duration    // the longest exp − iat accepted from a caller (≤ the set's MaxTokenLifetime; default it)
	Now             func() time.Time // clock; time.Now when nil
	Recorder        IssuedTokens     // optional: told of every token minted
	// TracerProvider traces every Issue (span "tokenkms.issue" with the
	// set, the signing kid and the outcome; never a claim); MeterProvider
	// records tokenkms.issue.duration (s) by set and outcome. Nil: otel's
	// global providers, which record nothing until the host installs one.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// SetLimits is implemented by ActiveKeys that know their key sets
// (*keyring.Keyring): MaxTokenLifetime returns the longest exp − iat a
// set's keys may sign for (its verification grace is computed from it),
// or an error for a set it does not hold. NewIssuer then refuses an
// unknown set and lifetimes above the set's, and takes MaxLifetime from
// the set when it is zero.
type SetLimits interface {
	MaxTokenLifetime(set string) (time.Duration, error)
}

// Issuer mints RFC 9068 access tokens with the Active key of one key set.
// It is safe for concurrent use.
type Issuer struct {
	keys    ActiveKeys
	cfg     IssuerConfig
	tracer  telemetry.Tracer
	latency metric.Float64Histogram
}

// NewIssuer returns an Issuer that signs with keys' Active key of cfg.Set.
// It refuses a configuration that would fail at the first Issue, or mint
// tokens that outlive their key's grace: each error names the setting.
func NewIssuer(keys ActiveKeys, cfg IssuerConfig) (*Issuer, error) {
	switch {
	case keys == nil:
		return nil, fmt.Errorf("%w: issuer needs ActiveKeys", ErrConfig)
	case cfg.Set == "":
		return nil, fmt.Errorf("%w: issuer: Set is required", ErrConfig)
	case cfg.Issuer == "":
		return nil, fmt.Errorf("%w: issuer: Issuer is required", ErrConfig)
	case len(cfg.Audience) == 0:
		return nil, fmt.Errorf("%w: issuer: Audience is required (the aud of tokens whose claims give none)", ErrConfig)
	case cfg.MaxLifetime < 0 || cfg.DefaultLifetime < 0:
		return nil, fmt.Errorf("%w: issuer: negative MaxLifetime or DefaultLifetime", ErrConfig)
	}
	if lim, ok := keys.(SetLimits); ok {
		setMax, err := lim.MaxTokenLifetime(cfg.Set)
		if err != nil {
			return nil, fmt.Errorf("%w: issuer: Set %q: %w", ErrConfig, cfg.Set, err)
		}
		if cfg.MaxLifetime == 0 {
			cfg.MaxLifetime = setMax
		}
		if cfg.MaxLifetime > setMax {
			return nil, fmt.Errorf("%w: issuer: MaxLifetime %v exceeds the MaxTokenLifetime %v of set %q, from which its keys' grace is computed (tokens would be refused as signed by a retired key before they expire); lower MaxLifetime, or raise the set's SetPolicy.MaxTokenLifetime", ErrConfig, cfg.MaxLifetime, setMax, cfg.Set)
		}
	}
	if cfg.DefaultLifetime == 0 {
		cfg.DefaultLifetime = cfg.MaxLifetime
	}
	switch {
	case cfg.MaxLifetime == 0:
		return nil, fmt.Errorf("%w: issuer: MaxLifetime is required (the keys do not say their set's limit)", ErrConfig)
	case cfg.DefaultLifetime > cfg.MaxLifetime:
		return nil, fmt.Errorf("%w: issuer: DefaultLifetime %v exceeds MaxLifetime %v", ErrConfig, cfg.DefaultLifetime, cfg.MaxLifetime)
	}
	for _, a := range cfg.Audience {
		if a == "" {
			return nil, fmt.Errorf("%w: issuer: empty Audience entry", ErrConfig)
		}
	}
	if err := telemetry.CheckProviders(cfg.TracerProvider, cfg.MeterProvider); err != nil {
		return nil, fmt.Errorf("%w: issuer: %w", ErrConfig, err)
	}
	cfg.Audience = append([]string(nil), cfg.Audience...)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lat, err := telemetry.Meter(cfg.MeterProvider).Float64Histogram("tokenkms.issue.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of Issue calls."))
	if err != nil {
		return nil, err
	}
	return &Issuer{keys: keys, cfg: cfg, tracer: telemetry.NewTracer(cfg.TracerProvider), latency: lat}, nil
}

// Issue signs c with the Active key and returns the compact JWS.
//
// The header is {"alg","kid","typ":"at+jwt"}, alg and kid from the Active
// key. From c: Subject and ClientID are required; Issuer must be empty or
// equal to the configured one; Audience defaults to the configured one (one
// is required); IssuedAt and NotBefore default to now, an IssuedAt in the
// future is refused; ExpiresAt defaults to iat + DefaultLifetime, capped to
// the key's verification horizon, and a caller's ExpiresAt is kept only if
// it is after iat and nbf, at most MaxLifetime after iat and within the
// horizon; ID (jti) defaults to 128 random bits in base64url; Scope entries
// must be RFC 6749 scope tokens; Extra may not repeat a registered claim.
// Times are sent in whole seconds. Every refusal of the claims wraps
// ErrClaims. A rotation never fails Issue: if the Active key stops being
// active while it signs (ErrKeyNotActive), Issue moves to the set's
// current Active key, again and again, until a signature is made or ctx
// ends (then ctx's error, joined with the last refusal).
func (is *Issuer) Issue(ctx context.Context, c tokenkms.Claims) (string, error) {
	tracing := is.tracer.On()
	if !tracing && !is.latency.Enabled(ctx) {
		return is.issue(ctx, c)
	}
	start := time.Now()
	var span trace.Span
	if tracing {
		ctx, span = is.tracer.Start(ctx, "tokenkms.issue", telemetry.AttrSet.String(is.cfg.Set))
	}
	tok, err := is.issue(ctx, c)
	outcome, desc := "ok", ""
	if err != nil {
		outcome, desc = "error", issueFailure(err)
	}
	is.latency.Record(ctx, telemetry.Seconds(start), metric.WithAttributes(
		telemetry.AttrSet.String(is.cfg.Set), telemetry.AttrOutcome.String(outcome)))
	telemetry.End(span, err, desc)
	return tok, err
}

// issueFailure describes a failed Issue for its span: a refusal of the
// claims by its sentinel alone (the detail may quote a claim), any other
// failure (no active key, the backend) as it is.
func issueFailure(err error) string {
	if errors.Is(err, ErrClaims) {
		return ErrClaims.Error()
	}
	return err.Error()
}

func (is *Issuer) issue(ctx context.Context, c tokenkms.Claims) (string, error) {
	now := time.Unix(is.cfg.Now().Unix(), 0).UTC()
	defaultExp, err := is.complete(&c, now)
	if err != nil {
		return "", err
	}
	pause, last := retryPause, ""
	for {
		tok, kid, err := is.sign(ctx, c, defaultExp)
		if !errors.Is(err, ErrKeyNotActive) {
			return tok, err
		}
		// The set rotated between Signer and Sign: ask again at once for
		// the new Active key. The same kid failing twice in a row means
		// the keys have not caught up yet: wait a little, up to
		// maxRetryPause, before asking again.
		if kid == last {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", errors.Join(ctx.Err(), err)
			case <-t.C:
			}
			pause = min(2*pause, maxRetryPause)
		}
		last = kid
	}
}

// retryPause and maxRetryPause bound how long Issue waits before asking
// again for the Active key when the one it got stopped signing and no
// other has replaced it yet.
const (
	retryPause    = time.Millisecond
	maxRetryPause = 100 * time.Millisecond
)

// sign mints the token with the current Active key, and returns the kid
// it tried.
func (is *Issuer) sign(ctx context.Context, c tokenkms.Claims, defaultExp bool) (string, string, error) {
	s, err := is.keys.Signer(ctx, is.cfg.Set)
	if err != nil {
		return "", "", fmt.Errorf("signer: no active key for set %q: %w", is.cfg.Set, err)
	}
	tok, err := is.signWith(ctx, s, c, defaultExp)
	return tok, s.KID(), err
}

// signWith mints the token with s.
func (is *Issuer) signWith(ctx context.Context, s Signer, c tokenkms.Claims, defaultExp bool) (string, error) {
	alg, ok := jose.Lookup(s.Algorithm())
	if !ok {
		return "", fmt.Errorf("%w: active key %s has algorithm %q", ErrUnsupportedAlgorithm, s.KID(), s.Algorithm())
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(telemetry.AttrKID.String(s.KID()), telemetry.AttrAlgorithm.String(alg.Name))
	}
	if h, ok := s.(VerifiableUntil); ok {
		if err := capToHorizon(&c, h.VerifiableUntil(), defaultExp); err != nil {
			return "", err
		}
	}
	header, err := jose.AppendHeader(make([]byte, 0, 96), alg.Name, s.KID(), TokenType)
	if err != nil {
		return "", fmt.Errorf("signer: active key's kid cannot be encoded: %w", err)
	}
	payload, err := jose.AppendClaims(make([]byte, 0, 512), &c)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrClaims, err)
	}
	tok := make([]byte, 0, (len(header)+len(payload)+512)*4/3+4)
	tok = jose.AppendEncode(tok, header)
	tok = append(tok, '.')
	tok = jose.AppendEncode(tok, payload)
	sig, err := s.Sign(ctx, tok)
	if err != nil {
		return "", fmt.Errorf("signer: sign with %s: %w", s.KID(), err)
	}
	tok = append(tok, '.')
	tok = jose.AppendEncode(tok, sig)
	if is.cfg.Recorder != nil {
		if err := is.cfg.Recorder.Issued(ctx, s.KID(), c.ID, c.ExpiresAt); err != nil {
			return "", fmt.Errorf("signer: record issued token: %w", err)
		}
	}
	return string(tok), nil
}

// complete checks the caller's claims and fills in the defaults, the
// verification horizon aside. It reports whether exp is the default one.
func (is *Issuer) complete(c *tokenkms.Claims, now time.Time) (bool, error) {
	switch {
	case c.Issuer != "" && c.Issuer != is.cfg.Issuer:
		return false, fmt.Errorf("%w: iss %q is not this issuer's", ErrClaims, c.Issuer)
	case c.Subject == "":
		return false, fmt.Errorf("%w: sub is required", ErrClaims)
	case c.ClientID == "":
		return false, fmt.Errorf("%w: client_id is required", ErrClaims)
	}
	c.Issuer = is.cfg.Issuer
	if len(c.Audience) == 0 {
		c.Audience = is.cfg.Audience
	}
	for _, a := range c.Audience {
		if a == "" {
			return false, fmt.Errorf("%w: empty aud entry", ErrClaims)
		}
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	c.IssuedAt = wholeSeconds(c.IssuedAt)
	if c.IssuedAt.After(now) {
		return false, fmt.Errorf("%w: iat is in the future", ErrClaims)
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = now
	}
	c.NotBefore = wholeSeconds(c.NotBefore)
	defaultExp := false
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.IssuedAt.Add(is.cfg.DefaultLifetime)
		defaultExp = true
	} else {
		c.ExpiresAt = wholeSeconds(c.ExpiresAt)
		if life := c.ExpiresAt.Sub(c.IssuedAt); life > is.cfg.MaxLifetime {
			return false, fmt.Errorf("%w: exp − iat is %v, more than the maximum lifetime %v", ErrClaims, life, is.cfg.MaxLifetime)
		}
	}
	if !c.ExpiresAt.After(c.IssuedAt) || !c.ExpiresAt.After(c.NotBefore) {
		return false, fmt.Errorf("%w: exp must be after iat and nbf", ErrClaims)
	}
	if c.ID == "" {
		var b [jtiBytes]byte
		rand.Read(b[:])
		c.ID = string(jose.AppendEncode(nil, b[:]))
	}
	return defaultExp, nil
}

// capToHorizon keeps exp within the signing key's verification horizon: a
// default exp is lowered to it, a caller's exp beyond it is refused.
func capToHorizon(c *tokenkms.Claims, horizon time.Time, defaultExp bool) error {
	if horizon.IsZero() {
		return nil
	}
	horizon = wholeSeconds(horizon)
	if !c.ExpiresAt.After(horizon) {
		return nil
	}
	if !defaultExp {
		return fmt.Errorf("%w: exp is after the signing key's verification horizon", ErrClaims)
	}
	c.ExpiresAt = horizon
	if !c.ExpiresAt.After(c.IssuedAt) || !c.ExpiresAt.After(c.NotBefore) {
		return fmt.Errorf("%w: the signing key's verification horizon has passed", ErrClaims)
	}
	return nil
}

func wholeSeconds(t time.Time) time.Time { return time.Unix(t.Unix(), 0).UTC() }
