package keyring

import (
	"fmt"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// The limits of the standard (R3.1, R3.2).
const (
	MaxSigningRotation    = 90 * 24 * time.Hour
	MaxEncryptionRotation = 180 * 24 * time.Hour
	Day                   = 24 * time.Hour
)

// Defaults that a zero SetPolicy field takes.
const (
	DefaultAlgorithm        = "ES256"
	DefaultBackend          = "local"
	DefaultJWKSMaxAge       = 5 * time.Minute
	DefaultLeeway           = time.Minute
	DefaultMaxTokenLifetime = time.Hour
	DefaultRotateAfter      = 0.8
	DefaultReviewWithin     = 24 * time.Hour
	// DefaultVerifierRefresh is the JWKS refresh interval of jwx v3's
	// jwk.Cache, the longest default among the JWKS clients Core's
	// services use (go-oidc and keyfunc refetch on an unknown kid; our
	// RemoteSet follows max-age).
	DefaultVerifierRefresh = 15 * time.Minute
)

// SetPolicy is the policy of one key set: which keys it holds and how they
// rotate. Zero fields take defaults; New refuses a policy that breaks a
// timing rule, naming the rule.
type SetPolicy struct {
	Name      string  // the set's name, e.g. "access-tokens"
	Purpose   Purpose // default Signing
	Algorithm string  // default ES256 (signing), "A256GCM" (encryption)
	Backend   string  // provider name in Config.Providers; default "local"
	Owner     string  // owner of the set's keys (R2.4); required

	// RotationPeriod is the key's life from creation to its target
	// rotation date (RotateBy). Default and maximum: 90 days for signing
	// keys, 180 days for data keys (R3.1, R3.2), or LegalMaxRotation when
	// it is set and shorter.
	RotationPeriod   time.Duration
	LegalMaxRotation time.Duration
	// RotateAfter is the fraction of RotationPeriod after which Tick
	// starts the scheduled rotation; default 0.8, range [0.5, 0.95].
	RotateAfter float64

	// PrePublication is how long a successor is published before it may
	// sign: at least Visibility + Leeway. Default Visibility + 2*Leeway.
	PrePublication time.Duration
	// Grace is how long a rotated key still verifies: at least
	// MaxTokenLifetime + Visibility + Leeway. Default: that sum. For data
	// keys, the target by which the host rewraps what a rotated key
	// protects (its GraceUntil), default RotationPeriod: the key goes on
	// decrypting after it, until an approved Retire.
	Grace time.Duration
	// MaxTokenLifetime bounds exp − iat of tokens the set signs.
	MaxTokenLifetime time.Duration
	// JWKSMaxAge is the Cache-Control max-age of the JWKS; Leeway the
	// clock skew allowed to verifiers.
	JWKSMaxAge time.Duration
	Leeway     time.Duration
	// VerifierRefresh is the longest time a verifier of the set may keep
	// a JWKS without fetching it again, whatever max-age says (default
	// DefaultVerifierRefresh, jwx jwk.Cache's 15 minutes). A key is
	// visible to every verifier Visibility() = max(JWKSMaxAge,
	// VerifierRefresh) after it is published, and the timing rules count
	// from that. Set it to the longest refresh interval of the set's
	// verifiers (JWKSMaxAge or less when all of them follow max-age or
	// refetch on an unknown kid).
	VerifierRefresh time.Duration

	// UnsafeSkipApproval lets a key be activated without a recorded
	// approval by a second principal (R6.3 then does not hold).
	UnsafeSkipApproval bool

	// NoStandby opts a signing set out of its standby key. By default the
	// scheduler keeps one approved, published standby successor per
	// signing set (created under the set's standing schedule approval), so
	// that EmergencyRotate activates a key two people approved and remote
	// verifiers already hold. Without one, emergency rotation activates a
	// break-glass key that a second principal must Review.
	NoStandby bool
	// ReviewWithin is how long a break-glass key may stay unreviewed
	// before Tick reports it (audit event and error); default 24 hours.
	ReviewWithin time.Duration
	// NoRewrapAfterCompromise makes a compromised data key refuse Rewrap
	// too; by default it still opens ciphertexts for Rewrap (each call
	// audited) and nothing else.
	NoRewrapAfterCompromise bool
}

// standby reports whether the set keeps a standby key.
func (p SetPolicy) standby() bool { return p.Purpose == Signing && !p.NoStandby }

// withDefaults fills zero fields and checks the timing rules.
func (p SetPolicy) withDefaults() (SetPolicy, error) {
	bad := func(rule string, args ...any) (SetPolicy, error) {
		return SetPolicy{}, fmt.Errorf("%w: set %q: %s", ErrPolicy, p.Name, fmt.Sprintf(rule, args...))
	}
	if p.Name == "" {
		return bad("a set needs a name")
	}
	if p.Owner == "" {
		return SetPolicy{}, fmt.Errorf("%w: %w: set %q (R2.4)", ErrPolicy, ErrNoOwner, p.Name)
	}
	if p.Purpose == 0 {
		p.Purpose = Signing
	}
	maxRot := MaxSigningRotation
	switch p.Purpose {
	case Signing:
		if p.Algorithm == "" {
			p.Algorithm = DefaultAlgorithm
		}
		if _, ok := jose.Lookup(p.Algorithm); !ok {
			return bad("algorithm %q is not a supported signing algorithm", p.Algorithm)
		}
	case Encryption:
		maxRot = MaxEncryptionRotation
		if p.Algorithm == "" {
			p.Algorithm = "A256GCM"
		}
		if p.Algorithm != "A256GCM" {
			return bad("data keys are A256GCM, not %q", p.Algorithm)
		}
	default:
		return bad("purpose %v has no key sets", p.Purpose)
	}
	if p.Backend == "" {
		p.Backend = DefaultBackend
	}
	if p.LegalMaxRotation < 0 {
		return bad("negative legal rotation limit")
	}
	if p.LegalMaxRotation > 0 && p.LegalMaxRotation < maxRot {
		maxRot = p.LegalMaxRotation
	}
	if p.RotationPeriod == 0 {
		p.RotationPeriod = maxRot
	}
	if p.RotationPeriod <= 0 || p.RotationPeriod > maxRot {
		return bad("rotation period %v exceeds the maximum of %v for %v keys (R3.1/R3.2)", p.RotationPeriod, maxRot, p.Purpose)
	}
	if p.RotateAfter == 0 {
		p.RotateAfter = DefaultRotateAfter
	}
	if p.RotateAfter < 0.5 || p.RotateAfter > 0.95 {
		return bad("rotate-after fraction %v outside [0.5, 0.95]", p.RotateAfter)
	}
	if p.JWKSMaxAge == 0 {
		p.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if p.Leeway == 0 {
		p.Leeway = DefaultLeeway
	}
	if p.MaxTokenLifetime == 0 {
		p.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if p.ReviewWithin == 0 {
		p.ReviewWithin = DefaultReviewWithin
	}
	if p.VerifierRefresh == 0 {
		p.VerifierRefresh = DefaultVerifierRefresh
	}
	if p.JWKSMaxAge < 0 || p.Leeway < 0 || p.MaxTokenLifetime < 0 || p.PrePublication < 0 || p.Grace < 0 || p.ReviewWithin < 0 || p.VerifierRefresh < 0 {
		return bad("negative duration")
	}
	visible := p.Visibility()
	if p.PrePublication == 0 {
		p.PrePublication = visible + 2*p.Leeway
	}
	if p.Grace == 0 {
		p.Grace = p.MaxTokenLifetime + visible + p.Leeway
		if p.Purpose == Encryption {
			// A rotated data key decrypts for one more period: time to
			// rewrap what it protects.
			p.Grace = p.RotationPeriod
		}
	}
	if p.Purpose == Signing {
		if p.PrePublication < visible+p.Leeway {
			return bad("pre-publication %v shorter than the key's visibility (the longer of JWKS max-age %v and verifier refresh %v) + leeway (%v): remote verifiers would see tokens before the key; lengthen it, or set VerifierRefresh to your verifiers' longest JWKS refresh interval", p.PrePublication, p.JWKSMaxAge, p.VerifierRefresh, visible+p.Leeway)
		}
		if min := p.MaxTokenLifetime + visible + p.Leeway; p.Grace < min {
			return bad("grace %v shorter than max token lifetime + the key's visibility (the longer of JWKS max-age %v and verifier refresh %v) + leeway (%v): valid tokens would be orphaned", p.Grace, p.JWKSMaxAge, p.VerifierRefresh, min)
		}
		if p.PrePublication+p.Grace >= p.RotationPeriod {
			return bad("pre-publication + grace (%v) must be shorter than the rotation period %v", p.PrePublication+p.Grace, p.RotationPeriod)
		}
	}
	return p, nil
}

// Visibility is how long after its publication a key is known to every
// verifier of the set: the longer of JWKSMaxAge and VerifierRefresh.
func (p SetPolicy) Visibility() time.Duration {
	return max(p.JWKSMaxAge, p.VerifierRefresh)
}

// rotationDue is when Tick starts the scheduled rotation of a key.
func (p SetPolicy) rotationDue(k Key) time.Time {
	return k.CreatedAt.Add(time.Duration(float64(p.RotationPeriod) * p.RotateAfter))
}
