package keyringtest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// The principals a Fixture acts as, one per role, so that every step
// respects the separation of duties.
var (
	Issuer          = keyring.Principal{ID: "test-issuer", Roles: []keyring.Role{keyring.RoleIssuer}}
	Approver        = keyring.Principal{ID: "test-approver", Roles: []keyring.Role{keyring.RoleApprover}}
	Deployer        = keyring.Principal{ID: "test-deployer", Roles: []keyring.Role{keyring.RoleDeployer}}
	SecurityOfficer = keyring.Principal{ID: "test-security-officer", Roles: []keyring.Role{keyring.RoleSecurityOfficer}}
	Core            = keyring.Principal{ID: "test-core", Roles: []keyring.Role{keyring.RoleCore}}
)

// Start is the time a Fixture's clock starts at.
var Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Options shape a Fixture; zero fields take the defaults shown.
type Options struct {
	Set       string   // "access-tokens"
	Algorithm string   // "ES256"
	Issuer    string   // "https://core.test"
	Audience  []string // ["api"]
	// Policy is the verifier policy; Issuer, Audience and KeySets default
	// to the fields above.
	Policy verifier.Policy
	// SetPolicy is the key set's policy, its zero fields taking keyring's
	// defaults (keyring.SetPolicy). Its Name and Algorithm default to Set
	// and Algorithm above (giving both, different, is refused), its Owner
	// to "test-owner".
	SetPolicy keyring.SetPolicy
	// DefaultLifetime and MaxLifetime are the Fixture issuer's token
	// lifetimes (signer.IssuerConfig). Defaults: half the set's
	// MaxTokenLifetime and MaxTokenLifetime itself, 30 minutes and 1 hour
	// under keyring's defaults (a token issued before a rotation then
	// outlives its 17-minute pre-publication). MaxLifetime may not exceed the set's
	// MaxTokenLifetime.
	DefaultLifetime time.Duration
	MaxLifetime     time.Duration
	// TracerProvider, MeterProvider and Logger go to the keyring, the
	// Issuer and the Verifier (nil: otel's globals, no log).
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Logger         *slog.Logger
}

// setPolicy merges the Set and Algorithm fields into SetPolicy.
func (o Options) setPolicy() (keyring.SetPolicy, error) {
	p := o.SetPolicy
	for _, f := range []struct {
		name       string
		field, pol *string
	}{{"Set", &o.Set, &p.Name}, {"Algorithm", &o.Algorithm, &p.Algorithm}} {
		switch {
		case *f.pol == "":
			*f.pol = *f.field
		case *f.field != "" && *f.field != *f.pol:
			return keyring.SetPolicy{}, fmt.Errorf("%w: %s %q and SetPolicy's %q differ: give one of them", ErrOptions, f.name, *f.field, *f.pol)
		}
	}
	if p.Name == "" {
		p.Name = "access-tokens"
	}
	if p.Owner == "" {
		p.Owner = "test-owner"
	}
	return p, nil
}

// Fixture is a complete in-memory tokenkms: a keyring with one Active
// local key, an Issuer, a Verifier, the audit recorder, the revocation list
// and a fake clock, wired together. Core's unit tests use it instead of
// the real backends.
type Fixture struct {
	Clock       *Clock
	Ring        *keyring.Keyring
	Issuer      *signer.Issuer
	Verifier    *verifier.Verifier
	Audit       *audit.Recorder
	Revocations *verifier.MemoryRevocationList
	Set         string
	Audience    []string
}

// New builds a Fixture whose set has an Active key (created, approved and
// activated by three principals), a standing schedule approval and, unless
// SetPolicy.NoStandby, the standby key the scheduler creates under it: an
// emergency rotation (Compromise) activates that standby.
func New(opts Options) (*Fixture, error) {
	set, err := opts.setPolicy()
	if err != nil {
		return nil, err
	}
	if opts.Issuer == "" {
		opts.Issuer = "https://core.test"
	}
	if len(opts.Audience) == 0 {
		opts.Audience = []string{"api"}
	}
	if opts.Policy.Issuer == "" {
		opts.Policy.Issuer = opts.Issuer
	}
	if len(opts.Policy.Audience) == 0 {
		opts.Policy.Audience = opts.Audience
	}
	if len(opts.Policy.KeySets) == 0 {
		opts.Policy.KeySets = []string{set.Name}
	}
	f := &Fixture{Clock: NewClock(Start), Audit: audit.NewRecorder(), Set: set.Name, Audience: opts.Audience}
	f.Revocations = verifier.NewMemoryRevocationList(f.Clock.Now)
	ctx := context.Background()
	ring, err := keyring.New(ctx, keyring.Config{
		Audit: f.Audit, Revocations: f.Revocations, Now: f.Clock.Now,
		Sets:           []keyring.SetPolicy{set},
		TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	f.Ring = ring
	pol, err := ring.Policy(f.Set)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.MaxLifetime == 0:
		opts.MaxLifetime = pol.MaxTokenLifetime
	case opts.MaxLifetime > pol.MaxTokenLifetime:
		return nil, fmt.Errorf("%w: MaxLifetime %v exceeds the set's MaxTokenLifetime %v, which its grace window is built on: raise SetPolicy.MaxTokenLifetime", ErrOptions, opts.MaxLifetime, pol.MaxTokenLifetime)
	}
	if opts.DefaultLifetime == 0 {
		opts.DefaultLifetime = min(pol.MaxTokenLifetime/2, opts.MaxLifetime)
	}
	if f.Issuer, err = signer.NewIssuer(ring, signer.IssuerConfig{
		Set: f.Set, Issuer: opts.Issuer, Audience: opts.Audience,
		DefaultLifetime: opts.DefaultLifetime, MaxLifetime: opts.MaxLifetime, Now: f.Clock.Now,
		TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
	}); err != nil {
		return nil, err
	}
	vopts := []verifier.Option{verifier.WithNow(f.Clock.Now)}
	if opts.TracerProvider != nil {
		vopts = append(vopts, verifier.WithTracerProvider(opts.TracerProvider))
	}
	if opts.MeterProvider != nil {
		vopts = append(vopts, verifier.WithMeterProvider(opts.MeterProvider))
	}
	if f.Verifier, err = verifier.New(ring, opts.Policy, vopts...); err != nil {
		return nil, err
	}
	if _, err := ActivateFirst(ctx, ring, f.Set); err != nil {
		return nil, err
	}
	if err := ring.ApproveSchedule(f.As(Approver), f.Set); err != nil {
		return nil, err
	}
	if err := ring.Tick(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// NewT is New for a test: it fails t at once (t.Fatal) when the Fixture
// cannot be built.
func NewT(t testing.TB, opts Options) *Fixture {
	t.Helper()
	f, err := New(opts)
	if err != nil {
		t.Fatalf("keyringtest.New: %v", err)
	}
	return f
}

// ActivateFirst brings a set's first key to life as three people would:
// Issuer creates it, Approver approves it, Deployer activates it.
func ActivateFirst(ctx context.Context, ring *keyring.Keyring, set string) (keyring.Key, error) {
	k, err := ring.Create(keyring.WithPrincipal(ctx, Issuer), set)
	if err != nil {
		return keyring.Key{}, err
	}
	if err := ring.Approve(keyring.WithPrincipal(ctx, Approver), k.KID); err != nil {
		return keyring.Key{}, err
	}
	if err := ring.Activate(keyring.WithPrincipal(ctx, Deployer), k.KID); err != nil {
		return keyring.Key{}, err
	}
	return ring.Key(keyring.WithPrincipal(ctx, Core), k.KID)
}

// As returns a context carrying p.
func (f *Fixture) As(p keyring.Principal) context.Context {
	return keyring.WithPrincipal(context.Background(), p)
}

// Token issues a token for subject with the given scopes, client "test-client"
// and principal type "user".
func (f *Fixture) Token(subject string, scopes ...string) (string, error) {
	return f.TokenFor(tokenkms.Claims{
		Subject: subject, Scope: scopes, ClientID: "test-client", PrincipalType: "user",
	})
}

// TokenFor issues a token carrying c, through the Fixture's Issuer: the
// issuer adds iss, aud, iat, exp (DefaultLifetime unless c sets it) and
// jti where c leaves them out, and refuses claims it would refuse in
// production.
func (f *Fixture) TokenFor(c tokenkms.Claims) (string, error) {
	return f.Issuer.Issue(context.Background(), c)
}

// Context returns a context holding the claims of a token issued from c
// and verified by the Fixture's Verifier: what a handler behind
// verifier.Middleware finds in its request's context
// (verifier.ClaimsFromContext), without an HTTP round trip. For claims
// that the Issuer or the Verifier would refuse, use
// verifier.ContextWithClaims directly.
func (f *Fixture) Context(c tokenkms.Claims) (context.Context, error) {
	tok, err := f.TokenFor(c)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	verified, err := f.Verifier.Verify(ctx, tok)
	if err != nil {
		return nil, err
	}
	return verifier.ContextWithClaims(ctx, verified), nil
}

// ActiveKID returns the kid of the set's Active key.
func (f *Fixture) ActiveKID() (string, error) {
	s, err := f.Ring.Signer(context.Background(), f.Set)
	if err != nil {
		return "", err
	}
	return s.KID(), nil
}

// StandbyKID returns the kid of the set's standby key (ErrNotFound when it
// has none: SetPolicy.NoStandby, or an emergency rotation used it and no
// Tick has replaced it yet).
func (f *Fixture) StandbyKID() (string, error) {
	keys, err := f.Ring.Keys(f.As(Core), keyring.Filter{Set: f.Set, States: []keyring.State{keyring.Pending}})
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.Standby {
			return k.KID, nil
		}
	}
	return "", fmt.Errorf("%w: no standby key in set %q", keyring.ErrNotFound, f.Set)
}

// Rotate performs a whole scheduled rotation step as the operators would:
// starts it, approves the successor, lets the pre-publication delay pass
// and ticks. The successor is then Active and the previous key Retiring.
func (f *Fixture) Rotate() (keyring.Key, error) {
	k, err := f.Ring.Rotate(f.As(Issuer), f.Set)
	if err != nil {
		return keyring.Key{}, err
	}
	if err := f.Ring.Approve(f.As(Approver), k.KID); err != nil {
		return keyring.Key{}, err
	}
	pol, err := f.Ring.Policy(f.Set)
	if err != nil {
		return keyring.Key{}, err
	}
	f.Clock.Advance(pol.PrePublication)
	if err := f.Ring.Tick(context.Background()); err != nil {
		return keyring.Key{}, err
	}
	if kid, err := f.ActiveKID(); err != nil || kid != k.KID {
		return keyring.Key{}, fmt.Errorf("keyringtest: rotation did not activate %s (active %q, %v)", k.KID, kid, err)
	}
	return f.Ring.Key(f.As(Core), k.KID)
}

// EndGrace moves the clock past the grace window and ticks: every
// Retiring key becomes Retired.
func (f *Fixture) EndGrace() error {
	pol, err := f.Ring.Policy(f.Set)
	if err != nil {
		return err
	}
	f.Clock.Advance(pol.Grace)
	return f.Ring.Tick(context.Background())
}

// Compromise runs an emergency rotation of kid as the security officer.
func (f *Fixture) Compromise(kid, incident string) (keyring.Key, error) {
	return f.Ring.EmergencyRotate(f.As(SecurityOfficer), kid, keyring.Incident{ID: incident, Reason: "test", Severity: "high"})
}
