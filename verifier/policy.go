package verifier

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms/internal/jose"
)

// Defaults and bounds of a Policy.
const (
	DefaultLeeway       = 30 * time.Second
	MaxLeeway           = 5 * time.Minute
	DefaultMaxTokenAge  = 24 * time.Hour
	DefaultMaxLifetime  = 24 * time.Hour
	DefaultMaxTokenSize = 8 << 10
	MaxMaxTokenSize     = 64 << 10
	DefaultType         = "at+jwt"
)

// DefaultAlgorithms is the algorithm allowlist of a Policy that names none.
var DefaultAlgorithms = []string{"ES256", "ES384", "EdDSA", "PS256", "RS256"}

// Policy is everything Verify checks beyond the signature. New validates it
// and fills in the defaults; a zero duration or size means its default.
type Policy struct {
	Issuer   string   // required "iss"
	Audience []string // required; the token must carry at least one of them

	// KeySets names the key sets whose keys this verifier trusts: a token
	// signed by a key of any other set is refused (ErrKeySet), so that the
	// weakest set's key cannot mint tokens for every API. With a KeySource
	// that is a SetLister (the keyring), every name must be one of its
	// signing sets, and KeySets is required when it holds more than one
	// (with exactly one, that set is the default). A KeySource that names
	// no sets (jwks.RemoteSet: the JWKS URL it fetches is its trust
	// boundary: serve each API's sets at their own URL with jwks.WithSets)
	// takes none.
	KeySets []string

	// Algorithms allowed in "alg" (default DefaultAlgorithms). Only
	// asymmetric algorithms that internal/jose implements are accepted:
	// never "none" nor HS*. A token's alg must also be its key's own.
	Algorithms []string
	// Types accepted in "typ" (default "at+jwt"), compared
	// case-insensitively; "application/" before a type is also accepted.
	Types []string

	Leeway       time.Duration // clock skew allowed on exp, nbf, iat (default 30s, at most 5 min)
	MaxTokenAge  time.Duration // now − iat (default 24h)
	MaxLifetime  time.Duration // exp − iat (default 24h)
	MaxTokenSize int           // bytes, checked before any decoding (default 8 KiB, at most 64 KiB)

	RequiredScopes        []string // every one must be granted (ErrScope)
	AllowedPrincipalTypes []string // if set, principal_type is required and must be one of them
	AllowedClientIDs      []string // if set, client_id must be one of them (it is always required)
}

// policy is a validated Policy in the form Verify reads.
type policy struct {
	Policy
	algs  []*jose.Alg
	types []string // without "application/", lower case
}

func policyError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrPolicy, field, fmt.Sprintf(format, args...))
}

func compile(p Policy) (*policy, error) {
	if p.Issuer == "" {
		return nil, policyError("Issuer", "required")
	}
	if len(p.Audience) == 0 {
		return nil, policyError("Audience", "at least one required")
	}
	c := &policy{Policy: p}
	for _, f := range []struct {
		name string
		list *[]string
	}{
		{"Audience", &c.Audience}, {"RequiredScopes", &c.RequiredScopes},
		{"AllowedPrincipalTypes", &c.AllowedPrincipalTypes}, {"AllowedClientIDs", &c.AllowedClientIDs},
	} {
		if slices.Contains(*f.list, "") {
			return nil, policyError(f.name, "empty entry")
		}
		*f.list = slices.Clone(*f.list)
	}
	for _, s := range c.RequiredScopes {
		if !jose.ValidScopeToken(s) {
			return nil, policyError("RequiredScopes", "%q is not an RFC 6749 scope token", s)
		}
	}

	names := p.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	for _, n := range names {
		a, ok := jose.Lookup(n)
		if !ok { // the table holds only asymmetric algorithms: no "none", no HS*
			return nil, policyError("Algorithms", "%q is not an asymmetric JWS algorithm tokenkms verifies", n)
		}
		c.algs = append(c.algs, a)
	}
	c.Algorithms = slices.Clone(names)

	types := p.Types
	if len(types) == 0 {
		types = []string{DefaultType}
	}
	for _, t := range types {
		n := normalType(t)
		if n == "" {
			return nil, policyError("Types", "empty entry")
		}
		c.types = append(c.types, n)
	}
	c.Types = slices.Clone(types)

	var err error
	if c.Leeway, err = bounded("Leeway", p.Leeway, DefaultLeeway, MaxLeeway); err != nil {
		return nil, err
	}
	if c.MaxTokenAge, err = bounded("MaxTokenAge", p.MaxTokenAge, DefaultMaxTokenAge, 0); err != nil {
		return nil, err
	}
	if c.MaxLifetime, err = bounded("MaxLifetime", p.MaxLifetime, DefaultMaxLifetime, 0); err != nil {
		return nil, err
	}
	if c.MaxTokenSize, err = bounded("MaxTokenSize", p.MaxTokenSize, DefaultMaxTokenSize, MaxMaxTokenSize); err != nil {
		return nil, err
	}
	return c, nil
}

// trustSets checks KeySets against the sets keys names (if it is a
// SetLister) and fills in the default.
func (c *policy) trustSets(keys KeySource) error {
	if slices.Contains(c.KeySets, "") {
		return policyError("KeySets", "empty entry")
	}
	c.KeySets = slices.Clone(c.KeySets)
	l, ok := keys.(SetLister)
	if !ok {
		if len(c.KeySets) > 0 {
			return policyError("KeySets", "the KeySource names no key sets (a JWKS client trusts what its URL serves: give each API its own URL, served with jwks.WithSets)")
		}
		return nil
	}
	sets := l.SigningSets()
	for _, s := range c.KeySets {
		if !slices.Contains(sets, s) {
			return policyError("KeySets", "%q is not a signing set of the KeySource (it holds %q)", s, sets)
		}
	}
	switch {
	case len(c.KeySets) > 0:
	case len(sets) == 1:
		c.KeySets = []string{sets[0]}
	case len(sets) == 0:
		return policyError("KeySets", "the KeySource holds no signing set")
	default:
		return policyError("KeySets", "required: the KeySource holds the signing sets %q; name the ones this verifier trusts", sets)
	}
	return nil
}

// trusts reports whether a key of set may verify tokens: always when the
// KeySource names no sets (KeySets empty).
func (p *policy) trusts(set string) bool {
	return len(p.KeySets) == 0 || slices.Contains(p.KeySets, set)
}

// bounded checks a Policy limit: negative is an error, zero takes def, and
// above max (when max > 0) is an error.
func bounded[T int | time.Duration](field string, d, def, max T) (T, error) {
	switch {
	case d < 0:
		return 0, policyError(field, "negative")
	case d == 0:
		return def, nil
	case max > 0 && d > max:
		return 0, policyError(field, "%v exceeds %v", d, max)
	}
	return d, nil
}

// trimApplication drops a leading "application/", in any case (RFC 7515
// §4.1.9).
func trimApplication(t string) string {
	const prefix = "application/"
	if len(t) >= len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) {
		return t[len(prefix):]
	}
	return t
}

// normalType drops a leading "application/" and lowers the case.
func normalType(t string) string {
	return strings.ToLower(trimApplication(t))
}

// typeAllowed compares typ with the accepted types without allocating.
func (p *policy) typeAllowed(typ string) bool {
	typ = trimApplication(typ)
	for _, t := range p.types {
		if strings.EqualFold(typ, t) {
			return true
		}
	}
	return false
}

func (p *policy) alg(name string) (*jose.Alg, bool) {
	for _, a := range p.algs {
		if a.Name == name {
			return a, true
		}
	}
	return nil, false
}
