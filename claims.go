package tokenkms

import "time"

// Claims is the vocabulary shared by issuance and verification: the claims of
// an RFC 9068 access token.
//
// On the wire, times are NumericDate seconds, Audience is a string when it
// holds one value and an array otherwise, and Scope is one space-separated
// string. Extra carries any further claim; it may not repeat a registered
// name.
type Claims struct {
	Issuer    string    // "iss"
	Subject   string    // "sub"
	Audience  []string  // "aud"
	ExpiresAt time.Time // "exp"
	NotBefore time.Time // "nbf"
	IssuedAt  time.Time // "iat"
	// ID is "jti": the token's identity. Key replay checks and
	// revocations on it, never on the token's bytes, which are not unique
	// (an ECDSA signature (r, s) has a twin (r, n−s) that verifies too).
	ID string

	Scope         []string // "scope": space-separated on the wire (RFC 9068 §2.2.3)
	ClientID      string   // "client_id"
	PrincipalType string   // "principal_type"

	// Extra holds every other claim, decoded as encoding/json would into an
	// any. Registered names above are refused here by the Issuer.
	Extra map[string]any
}

// HasScope reports whether the token grants scope s.
func (c *Claims) HasScope(s string) bool {
	for _, have := range c.Scope {
		if have == s {
			return true
		}
	}
	return false
}

// HasAudience reports whether aud is one of the token's audiences.
func (c *Claims) HasAudience(aud string) bool {
	for _, have := range c.Audience {
		if have == aud {
			return true
		}
	}
	return false
}
