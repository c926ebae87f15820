package jose

import (
	"bytes"
	"fmt"
)

// HeaderParam is a bit set of the JOSE header parameters that a strict
// verifier refuses to honour.
type HeaderParam uint8

// The refused header parameters.
const (
	ParamJKU  HeaderParam = 1 << iota // "jku": key from a URL
	ParamX5U                          // "x5u": certificate from a URL
	ParamX5C                          // "x5c": embedded certificate chain
	ParamJWK                          // "jwk": embedded key
	ParamB64                          // "b64": unencoded payload (RFC 7797)
	ParamCrit                         // "crit": extensions that must be understood
)

var paramNames = [...]struct {
	p    HeaderParam
	name string
}{
	{ParamJKU, "jku"}, {ParamX5U, "x5u"}, {ParamX5C, "x5c"},
	{ParamJWK, "jwk"}, {ParamB64, "b64"}, {ParamCrit, "crit"},
}

// First names the first parameter of the set, in the order above, or "".
func (p HeaderParam) First() string {
	for _, n := range paramNames {
		if p&n.p != 0 {
			return n.name
		}
	}
	return ""
}

// Header is the decoded protected header of a compact JWS.
type Header struct {
	Alg     string
	KID     string
	Typ     string
	Refused HeaderParam // refused parameters that are present, whatever their value
}

// maxHeaderMembers is the room ParseHeader keeps on the stack; a longer
// header still parses.
const maxHeaderMembers = 8

// ParseHeader decodes a JOSE header object. "alg", "kid" and "typ" must be
// strings (ErrType otherwise); other members are validated JSON and ignored,
// except those listed in HeaderParam, which are reported in Refused.
func ParseHeader(s string) (Header, error) {
	var h Header
	var room [maxHeaderMembers]Member
	ms, err := ScanObject(s, room[:0])
	if err != nil {
		return h, err
	}
	for _, m := range ms {
		var dst *string
		switch m.Name {
		case "alg":
			dst = &h.Alg
		case "kid":
			dst = &h.KID
		case "typ":
			dst = &h.Typ
		default:
			for _, n := range paramNames {
				if m.Name == n.name {
					h.Refused |= n.p
				}
			}
			continue
		}
		if m.Kind != JSONString {
			return h, fmt.Errorf("%w: header %q is a %s, not a string", ErrType, m.Name, m.Kind)
		}
		*dst = m.StringValue()
	}
	return h, nil
}

// AppendHeader appends the JSON of a protected header {"alg","kid","typ"}
// to dst.
func AppendHeader(dst []byte, alg, kid, typ string) ([]byte, error) {
	var err error
	dst = append(dst, `{"alg":`...)
	if dst, err = AppendString(dst, alg); err != nil {
		return dst, err
	}
	dst = append(dst, `,"kid":`...)
	if dst, err = AppendString(dst, kid); err != nil {
		return dst, err
	}
	dst = append(dst, `,"typ":`...)
	if dst, err = AppendString(dst, typ); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// Compact is a compact JWS split into its parts. All slices alias the
// input.
type Compact struct {
	Header       []byte // base64url
	Payload      []byte // base64url
	Signature    []byte // base64url
	SigningInput []byte // Header "." Payload
}

// SplitCompact splits a compact JWS serialization: exactly three segments
// separated by '.', the header and payload non-empty. Anything else, the
// JSON serialization included, gives ErrSyntax. An empty signature (as
// "alg":"none" tokens have) is left for the algorithm and signature checks
// to refuse.
func SplitCompact(tok []byte) (Compact, error) {
	var c Compact
	if len(tok) > 0 && tok[0] == '{' {
		return c, fmt.Errorf("%w: JSON serialization; only the compact form is accepted", ErrSyntax)
	}
	i := bytes.IndexByte(tok, '.')
	if i < 0 {
		return c, fmt.Errorf("%w: not a compact JWS", ErrSyntax)
	}
	j := bytes.IndexByte(tok[i+1:], '.')
	if j < 0 {
		return c, fmt.Errorf("%w: compact JWS has 2 segments, 3 required", ErrSyntax)
	}
	j += i + 1
	if n := bytes.Count(tok[j+1:], []byte{'.'}); n > 0 {
		return c, fmt.Errorf("%w: compact JWS has %d segments, 3 required", ErrSyntax, 3+n)
	}
	c = Compact{Header: tok[:i], Payload: tok[i+1 : j], Signature: tok[j+1:], SigningInput: tok[:j]}
	if len(c.Header) == 0 || len(c.Payload) == 0 {
		return Compact{}, fmt.Errorf("%w: empty compact JWS segment", ErrSyntax)
	}
	return c, nil
}
