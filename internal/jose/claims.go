package jose

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenkms/tokenkms"
)

// Registered claim names: the members of tokenkms.Claims other than Extra.
const (
	ClaimIssuer        = "iss"
	ClaimSubject       = "sub"
	ClaimAudience      = "aud"
	ClaimExpiresAt     = "exp"
	ClaimNotBefore     = "nbf"
	ClaimIssuedAt      = "iat"
	ClaimID            = "jti"
	ClaimScope         = "scope"
	ClaimClientID      = "client_id"
	ClaimPrincipalType = "principal_type"
)

// IsRegistered reports whether name is one of the claims that
// tokenkms.Claims holds in a field of its own.
func IsRegistered(name string) bool {
	switch name {
	case ClaimIssuer, ClaimSubject, ClaimAudience, ClaimExpiresAt, ClaimNotBefore,
		ClaimIssuedAt, ClaimID, ClaimScope, ClaimClientID, ClaimPrincipalType:
		return true
	}
	return false
}

// MaxNumericDate is the largest NumericDate accepted: 9999-12-31T23:59:59Z.
const MaxNumericDate = 253402300799

// maxClaimMembers is the room DecodeClaims keeps on the stack; more claims
// still decode.
const maxClaimMembers = 16

// DecodeClaims decodes a JWT claims set into c, which it overwrites. Every
// registered claim has a strict type (ErrType otherwise): iss, sub, jti,
// client_id, principal_type and scope are strings, scope holding scope
// tokens separated by single spaces; aud is a string or an array of
// strings; exp, nbf and iat are NumericDate numbers in [0, MaxNumericDate]
// (fractions allowed). Every other claim goes to c.Extra as encoding/json
// decodes it into an any. Strings in c share memory with s.
func DecodeClaims(s string, c *tokenkms.Claims) error {
	*c = tokenkms.Claims{}
	var room [maxClaimMembers]Member
	ms, err := ScanObject(s, room[:0])
	if err != nil {
		return err
	}
	for _, m := range ms {
		switch m.Name {
		case ClaimIssuer:
			err = stringClaim(m, &c.Issuer)
		case ClaimSubject:
			err = stringClaim(m, &c.Subject)
		case ClaimID:
			err = stringClaim(m, &c.ID)
		case ClaimClientID:
			err = stringClaim(m, &c.ClientID)
		case ClaimPrincipalType:
			err = stringClaim(m, &c.PrincipalType)
		case ClaimExpiresAt:
			c.ExpiresAt, err = numericDate(m)
		case ClaimNotBefore:
			c.NotBefore, err = numericDate(m)
		case ClaimIssuedAt:
			c.IssuedAt, err = numericDate(m)
		case ClaimAudience:
			c.Audience, err = audience(m)
		case ClaimScope:
			c.Scope, err = scope(m)
		default:
			var v any
			if err = json.Unmarshal([]byte(m.Raw), &v); err != nil {
				return fmt.Errorf("%w: claim %q: %v", ErrSyntax, clip(m.Name), err)
			}
			if c.Extra == nil {
				c.Extra = make(map[string]any) // most members are registered claims: no size hint
			}
			c.Extra[m.Name] = v
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func typeError(m Member, want string) error {
	return fmt.Errorf("%w: claim %q is a %s, not %s", ErrType, m.Name, m.Kind, want)
}

func stringClaim(m Member, dst *string) error {
	if m.Kind != JSONString {
		return typeError(m, "a string")
	}
	*dst = m.StringValue()
	return nil
}

func numericDate(m Member) (time.Time, error) {
	if m.Kind != JSONNumber {
		return time.Time{}, typeError(m, "a NumericDate number")
	}
	f, err := strconv.ParseFloat(m.Raw, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > MaxNumericDate {
		return time.Time{}, fmt.Errorf("%w: claim %q is out of the NumericDate range", ErrType, m.Name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

func audience(m Member) ([]string, error) {
	switch m.Kind {
	case JSONString:
		return []string{m.StringValue()}, nil
	case JSONArray:
		return stringArray(m)
	}
	return nil, typeError(m, "a string or an array of strings")
}

// stringArray decodes an array member, already validated by ScanObject,
// whose elements must all be strings.
func stringArray(m Member) ([]string, error) {
	sc := scanner{s: m.Raw, i: 1}
	n := 1 + strings.Count(m.Raw, ",") // an upper bound on the element count
	out := make([]string, 0, n)
	sc.ws()
	if sc.eat(']') {
		return out, nil
	}
	for {
		sc.ws()
		start := sc.i
		if start >= len(m.Raw) || m.Raw[start] != '"' {
			return nil, typeError(m, "an array of strings")
		}
		esc, err := sc.str()
		if err != nil {
			return nil, err
		}
		v := m.Raw[start+1 : sc.i-1]
		if esc {
			v = unescape(v)
		}
		out = append(out, v)
		sc.ws()
		if sc.eat(']') {
			return out, nil
		}
		sc.eat(',')
	}
}

func scope(m Member) ([]string, error) {
	if m.Kind != JSONString {
		return nil, typeError(m, "a space-separated string")
	}
	v := m.StringValue()
	if v == "" {
		return nil, nil
	}
	out := make([]string, 0, 1+strings.Count(v, " "))
	for tok := range strings.SplitSeq(v, " ") {
		if !ValidScopeToken(tok) {
			return nil, fmt.Errorf("%w: claim %q is not a list of scope tokens separated by single spaces", ErrType, m.Name)
		}
		out = append(out, tok)
	}
	return out, nil
}

// ValidScopeToken reports whether s is a scope token as RFC 6749 §3.3
// defines it: one or more of %x21 / %x23-5B / %x5D-7E (printable ASCII
// without space, '"' and '\').
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// AppendClaims appends the JSON of c to dst: the registered claims that are
// set (non-empty, non-zero) in a fixed order, then c.Extra in name order,
// each value as encoding/json marshals it. Times are NumericDate whole
// seconds (sub-second parts are dropped). aud is a string when it holds
// one value. An Extra name that is registered, a string that is not valid
// UTF-8, a scope that is not a valid scope token, or a time outside
// [0, MaxNumericDate] gives ErrEncode.
func AppendClaims(dst []byte, c *tokenkms.Claims) ([]byte, error) {
	b := claimsEncoder{dst: append(dst, '{')}
	b.str(ClaimIssuer, c.Issuer)
	b.str(ClaimSubject, c.Subject)
	switch len(c.Audience) {
	case 0:
	case 1:
		b.str(ClaimAudience, c.Audience[0])
	default:
		b.name(ClaimAudience)
		b.dst = append(b.dst, '[')
		for i, a := range c.Audience {
			if i > 0 {
				b.dst = append(b.dst, ',')
			}
			b.value(a)
		}
		b.dst = append(b.dst, ']')
	}
	b.date(ClaimExpiresAt, c.ExpiresAt)
	b.date(ClaimNotBefore, c.NotBefore)
	b.date(ClaimIssuedAt, c.IssuedAt)
	b.str(ClaimID, c.ID)
	b.str(ClaimClientID, c.ClientID)
	b.str(ClaimPrincipalType, c.PrincipalType)
	if len(c.Scope) > 0 {
		for _, s := range c.Scope {
			if !ValidScopeToken(s) {
				b.fail(fmt.Errorf("%w: scope %q is not an RFC 6749 scope token", ErrEncode, clip(s)))
			}
		}
		b.str(ClaimScope, strings.Join(c.Scope, " "))
	}
	names := make([]string, 0, len(c.Extra))
	for n := range c.Extra {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if IsRegistered(n) {
			b.fail(fmt.Errorf("%w: %q is a registered claim, not an extra one", ErrEncode, n))
			continue
		}
		v, err := json.Marshal(c.Extra[n])
		if err != nil {
			b.fail(fmt.Errorf("%w: claim %q: %v", ErrEncode, clip(n), err))
			continue
		}
		b.name(n)
		b.dst = append(b.dst, v...)
	}
	if b.err != nil {
		return dst, b.err
	}
	return append(b.dst, '}'), nil
}

// claimsEncoder builds a JSON object, keeping the first error.
type claimsEncoder struct {
	dst   []byte
	count int
	err   error
}

func (b *claimsEncoder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *claimsEncoder) name(n string) {
	if b.count > 0 {
		b.dst = append(b.dst, ',')
	}
	b.count++
	b.value(n)
	b.dst = append(b.dst, ':')
}

func (b *claimsEncoder) value(s string) {
	var err error
	if b.dst, err = AppendString(b.dst, s); err != nil {
		b.fail(err)
	}
}

func (b *claimsEncoder) str(name, v string) {
	if v == "" {
		return
	}
	b.name(name)
	b.value(v)
}

func (b *claimsEncoder) date(name string, t time.Time) {
	if t.IsZero() {
		return
	}
	sec := t.Unix()
	if sec < 0 || sec > MaxNumericDate {
		b.fail(fmt.Errorf("%w: claim %q is out of the NumericDate range", ErrEncode, name))
		return
	}
	b.name(name)
	b.dst = strconv.AppendInt(b.dst, sec, 10)
}

// AppendString appends s as a JSON string. Quotes, backslashes and control
// characters are escaped, and so are '<', '>', '&', U+2028 and U+2029, as
// encoding/json does. s must be valid UTF-8 (ErrEncode otherwise).
func AppendString(dst []byte, s string) ([]byte, error) {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return dst, fmt.Errorf("%w: string is not valid UTF-8", ErrEncode)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"'), nil
}
