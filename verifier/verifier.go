package verifier

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
)

// Option configures New.
type Option func(*options)

type options struct {
	revocation        RevocationList
	withoutRevocation bool
	now               func() time.Time
	cacheSize         int
	cacheSet          bool
	tp                trace.TracerProvider
	tpSet             bool
	mp                metric.MeterProvider
	mpSet             bool
}

// WithRevocationList checks every token's jti and kid against l.
func WithRevocationList(l RevocationList) Option {
	return func(o *options) { o.revocation = l }
}

// UnsafeWithoutRevocation turns revocation checks off: revoked tokens and
// the tokens of a compromised key's kid policy stay valid until they
// expire. New refuses to run without a RevocationList unless this option is
// given.
func UnsafeWithoutRevocation() Option {
	return func(o *options) { o.withoutRevocation = true }
}

// WithNow sets the clock (time.Now by default).
func WithNow(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Verifier checks access tokens against a Policy. It is immutable and safe
// for concurrent use; Verify takes no lock of its own, except the per-shard
// locks of the token cache when WithCache is given.
type Verifier struct {
	keys       KeySource
	revocation RevocationList // nil only with UnsafeWithoutRevocation
	now        func() time.Time
	p          *policy
	cache      *tokenCache // nil unless WithCache
	tel        *verifyTelemetry
	revHolder  *revocationHolder // what the revocation metrics read, kept as long as v
}

// New returns a Verifier that resolves kids with keys and enforces p.
//
// The RevocationList is the one WithRevocationList gives, else keys itself
// if it implements RevocationList (the keyring does). Without either, New
// fails with ErrPolicy unless UnsafeWithoutRevocation is given.
func New(keys KeySource, p Policy, opts ...Option) (*Verifier, error) {
	if keys == nil {
		return nil, fmt.Errorf("%w: KeySource is nil", ErrPolicy)
	}
	var o options
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrPolicy)
		}
		opt(&o)
	}
	cp, err := compile(p)
	if err != nil {
		return nil, err
	}
	if err := cp.trustSets(keys); err != nil {
		return nil, err
	}
	v := &Verifier{keys: keys, revocation: o.revocation, now: o.now, p: cp}
	if v.now == nil {
		v.now = time.Now
	}
	if v.revocation == nil {
		if l, ok := keys.(RevocationList); ok {
			v.revocation = l
		}
	}
	switch {
	case v.revocation != nil && o.withoutRevocation:
		return nil, fmt.Errorf("%w: UnsafeWithoutRevocation given with a RevocationList", ErrPolicy)
	case v.revocation == nil && !o.withoutRevocation:
		return nil, fmt.Errorf("%w: no RevocationList (give WithRevocationList, or UnsafeWithoutRevocation to run without)", ErrPolicy)
	}
	if o.cacheSet {
		if v.cache, err = newTokenCache(o.cacheSize); err != nil {
			return nil, err
		}
	}
	if v.tel, err = newVerifyTelemetry(v, &o); err != nil {
		return nil, err
	}
	return v, nil
}

// Policy returns the validated policy, defaults filled in.
func (v *Verifier) Policy() Policy {
	p := v.p.Policy
	p.KeySets = slices.Clone(p.KeySets)
	p.Audience = slices.Clone(p.Audience)
	p.Algorithms = slices.Clone(p.Algorithms)
	p.Types = slices.Clone(p.Types)
	p.RequiredScopes = slices.Clone(p.RequiredScopes)
	p.AllowedPrincipalTypes = slices.Clone(p.AllowedPrincipalTypes)
	p.AllowedClientIDs = slices.Clone(p.AllowedClientIDs)
	return p
}

// Stack room for decoding; longer segments go to the heap.
const (
	headerRoom  = 256
	payloadRoom = 1024
	sigRoom     = 512 // RSA-4096
)

// Verify checks token and returns its claims. Every rejection wraps one of
// the sentinels in errors.go with a short reason; none quotes the token.
//
// The order: size, compact form, header (JSON, refused parameters, crit,
// alg allowlist, typ, kid), key from the KeySource (alg must be the key's
// own), signature, then the claims (types, exp, nbf, iat, age, lifetime,
// iss, aud, sub, client_id, jti, revocation, scope, principal_type,
// client_id allowlist). Nothing in the claims is looked at before the
// signature verifies. With WithCache, a token verified before is checked
// again from its cached claims: key state, then the claims.
func (v *Verifier) Verify(ctx context.Context, token string) (*tokenkms.Claims, error) {
	if v.tel.on(ctx) {
		return v.verifyObserved(ctx, token)
	}
	return v.verify(ctx, token)
}

func (v *Verifier) verify(ctx context.Context, token string) (*tokenkms.Claims, error) {
	p := v.p
	if len(token) > p.MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(token), p.MaxTokenSize)
	}
	tok := []byte(token) // the one copy: hashed for the cache, split and decoded in place
	var ck cacheKey
	if v.cache != nil {
		ck = sha256.Sum256(tok)
		if e := v.cache.get(ck); e != nil {
			c, done, err := v.verifyCached(ctx, e)
			if done && (err == nil || errors.Is(err, ErrKeySource) || errors.Is(err, ErrRevocationCheck)) {
				return c, err
			}
			v.cache.drop(ck, e)
			if done {
				return nil, err
			}
		}
	}
	parts, err := jose.SplitCompact(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}

	var hroom [headerRoom]byte
	hjson, err := jose.AppendDecode(hroom[:0], parts.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	h, err := jose.ParseHeader(string(hjson))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if h.Refused&^jose.ParamCrit != 0 {
		return nil, fmt.Errorf("%w: %q", ErrHeaderParam, (h.Refused &^ jose.ParamCrit).First())
	}
	if h.Refused&jose.ParamCrit != 0 {
		return nil, fmt.Errorf("%w: no critical extension is understood", ErrCrit)
	}
	alg, ok := p.alg(h.Alg)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not allowed", ErrAlgorithm, clip(h.Alg))
	}
	if !p.typeAllowed(h.Typ) {
		return nil, fmt.Errorf("%w: typ %q", ErrType, clip(h.Typ))
	}
	if h.KID == "" {
		return nil, ErrMissingKID
	}
	key, err := v.key(ctx, h.KID)
	if err != nil {
		return nil, err
	}
	if !key.Allows(alg.Name) {
		return nil, fmt.Errorf("%w: token alg %s but key %q is %s", ErrAlgorithm, alg.Name, clip(h.KID), key.algorithms())
	}

	var sroom [sigRoom]byte
	sig, err := jose.AppendDecode(sroom[:0], parts.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	if err := alg.Verify(key.Public, parts.SigningInput, sig); err != nil {
		if errors.Is(err, jose.ErrKeyMismatch) {
			return nil, fmt.Errorf("%w: key %q does not suit %s", ErrAlgorithm, clip(h.KID), alg.Name)
		}
		return nil, fmt.Errorf("%w: key %q", ErrSignature, clip(h.KID))
	}

	var proom [payloadRoom]byte
	pjson, err := jose.AppendDecode(proom[:0], parts.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	c := new(tokenkms.Claims)
	if err := jose.DecodeClaims(string(pjson), c); err != nil {
		if errors.Is(err, jose.ErrType) {
			return nil, fmt.Errorf("%w: %w", ErrClaimType, err)
		}
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if err := v.checkClaims(ctx, h.KID, c); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(ck, &cacheEntry{claims: cloneClaims(c), kid: strings.Clone(h.KID), alg: alg.Name, public: key.Public, exp: c.ExpiresAt.Unix()})
	}
	return c, nil
}

// checkClaims applies the policy to the signed claims.
func (v *Verifier) checkClaims(ctx context.Context, kid string, c *tokenkms.Claims) error {
	p := v.p
	switch {
	case c.ExpiresAt.IsZero():
		return fmt.Errorf("%w: exp", ErrMissingClaim)
	case c.IssuedAt.IsZero():
		return fmt.Errorf("%w: iat", ErrMissingClaim)
	}
	if err := v.checkTimes(c); err != nil {
		return err
	}
	switch {
	case c.ExpiresAt.Sub(c.IssuedAt) > p.MaxLifetime:
		return fmt.Errorf("%w: %v, at most %v", ErrLifetime, c.ExpiresAt.Sub(c.IssuedAt), p.MaxLifetime)
	case c.Issuer == "":
		return fmt.Errorf("%w: iss", ErrMissingClaim)
	case c.Issuer != p.Issuer:
		return fmt.Errorf("%w: %q", ErrIssuer, clip(c.Issuer))
	case len(c.Audience) == 0:
		return fmt.Errorf("%w: aud", ErrMissingClaim)
	case !anyAudience(c, p.Audience):
		return ErrAudience
	case c.Subject == "":
		return fmt.Errorf("%w: sub", ErrMissingClaim)
	case c.ClientID == "":
		return fmt.Errorf("%w: client_id", ErrMissingClaim)
	case c.ID == "":
		return ErrMissingJTI
	}
	if err := v.checkRevoked(ctx, kid, c); err != nil {
		return err
	}
	if s := firstMissing(c, p.RequiredScopes); s != "" {
		return fmt.Errorf("%w: %q not granted", ErrScope, s)
	}
	if len(p.AllowedPrincipalTypes) > 0 {
		if c.PrincipalType == "" {
			return fmt.Errorf("%w: principal_type", ErrMissingClaim)
		}
		if !slices.Contains(p.AllowedPrincipalTypes, c.PrincipalType) {
			return fmt.Errorf("%w: %q", ErrPrincipalType, clip(c.PrincipalType))
		}
	}
	if len(p.AllowedClientIDs) > 0 && !slices.Contains(p.AllowedClientIDs, c.ClientID) {
		return fmt.Errorf("%w: %q", ErrClientID, clip(c.ClientID))
	}
	return nil
}

// checkTimes applies the policy's time checks, the only ones whose verdict
// on the same claims changes over time (with the revocation check): exp,
// nbf and iat with the leeway, and the maximum age.
func (v *Verifier) checkTimes(c *tokenkms.Claims) error {
	p := v.p
	now := v.now()
	switch {
	case !now.Before(c.ExpiresAt.Add(p.Leeway)):
		return ErrExpired
	case !c.NotBefore.IsZero() && now.Add(p.Leeway).Before(c.NotBefore):
		return ErrNotYetValid
	case now.Add(p.Leeway).Before(c.IssuedAt):
		return ErrIssuedInFuture
	case now.Sub(c.IssuedAt) > p.MaxTokenAge:
		return fmt.Errorf("%w: issued %v ago, at most %v", ErrTooOld, now.Sub(c.IssuedAt).Truncate(time.Second), p.MaxTokenAge)
	}
	return nil
}

// checkRevoked asks the RevocationList about the token's jti and kid,
// failing closed.
func (v *Verifier) checkRevoked(ctx context.Context, kid string, c *tokenkms.Claims) error {
	if v.revocation == nil {
		return nil
	}
	revoked, err := v.revocation.Revoked(ctx, kid, c.ID, c.IssuedAt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRevocationCheck, err)
	}
	if revoked {
		return ErrRevoked
	}
	return nil
}

func anyAudience(c *tokenkms.Claims, want []string) bool {
	for _, a := range want {
		if c.HasAudience(a) {
			return true
		}
	}
	return false
}

// key resolves kid through the KeySource and refuses a key of a set the
// Policy does not trust.
func (v *Verifier) key(ctx context.Context, kid string) (Key, error) {
	key, err := v.keys.VerificationKey(ctx, kid)
	if err != nil {
		return Key{}, keySourceError(kid, err)
	}
	if !v.p.trusts(key.Set) {
		return Key{}, fmt.Errorf("%w: key %q is in set %q", ErrKeySet, clip(kid), clip(key.Set))
	}
	return key, nil
}

// keySourceError keeps the KeySource's verdict on a kid and hides any other
// failure behind ErrKeySource.
func keySourceError(kid string, err error) error {
	for _, s := range []error{ErrUnknownKID, ErrKeyUnusable, ErrKeyRetired, ErrKeyCompromised} {
		if errors.Is(err, s) {
			return err
		}
	}
	return fmt.Errorf("%w: kid %q: %w", ErrKeySource, clip(kid), err)
}

// clip shortens attacker-controlled text quoted in an error.
var clip = jose.Clip
