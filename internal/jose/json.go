package jose

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ValueKind is the JSON type of a member's value.
type ValueKind uint8

// The JSON value kinds.
const (
	JSONString ValueKind = iota + 1
	JSONNumber
	JSONObject
	JSONArray
	JSONTrue
	JSONFalse
	JSONNull
)

var kindNames = [...]string{"", "string", "number", "object", "array", "true", "false", "null"}

func (k ValueKind) String() string {
	if k < JSONString || k > JSONNull {
		return fmt.Sprintf("ValueKind(%d)", int(k))
	}
	return kindNames[k]
}

// Member is one top-level member of a JSON object.
type Member struct {
	Name    string    // unescaped
	Raw     string    // the value's JSON text, validated; quotes included for a string
	Kind    ValueKind //
	Escaped bool      // a string value holds escape sequences: use Unescape
}

// MaxDepth bounds the nesting of arrays and objects inside a member value.
const MaxDepth = 32

// dupMapAt is the member count from which duplicates are found with a map
// instead of by comparing with every earlier name.
const dupMapAt = 16

// ScanObject parses s, which must be exactly one JSON object (RFC 8259, with
// optional surrounding whitespace), in a single pass, and appends its
// top-level members to dst in order. Every value is fully validated: string
// escapes, UTF-8 (no invalid sequence, no lone surrogate escape), number
// grammar, literals, nesting up to MaxDepth. A repeated member name (compared
// after unescaping) gives ErrDuplicate; anything else that is not one valid
// object, trailing data included, gives ErrSyntax.
func ScanObject(s string, dst []Member) ([]Member, error) {
	sc := scanner{s: s}
	sc.ws()
	if !sc.eat('{') {
		return dst, sc.fail("object expected")
	}
	first := len(dst)
	var seen map[string]struct{}
	sc.ws()
	if !sc.eat('}') {
		for {
			sc.ws()
			start := sc.i
			esc, err := sc.str()
			if err != nil {
				return dst, err
			}
			name := s[start+1 : sc.i-1]
			if esc {
				name = unescape(name)
			}
			if seen != nil {
				if _, dup := seen[name]; dup {
					return dst, fmt.Errorf("%w: %q", ErrDuplicate, clip(name))
				}
				seen[name] = struct{}{}
			} else {
				for _, m := range dst[first:] {
					if m.Name == name {
						return dst, fmt.Errorf("%w: %q", ErrDuplicate, clip(name))
					}
				}
				if len(dst)-first+1 >= dupMapAt {
					seen = make(map[string]struct{}, 2*dupMapAt)
					for _, m := range dst[first:] {
						seen[m.Name] = struct{}{}
					}
					seen[name] = struct{}{}
				}
			}
			sc.ws()
			if !sc.eat(':') {
				return dst, sc.fail("':' expected")
			}
			sc.ws()
			vstart := sc.i
			kind, vesc, err := sc.value(0)
			if err != nil {
				return dst, err
			}
			dst = append(dst, Member{Name: name, Raw: s[vstart:sc.i], Kind: kind, Escaped: vesc})
			sc.ws()
			if sc.eat(',') {
				continue
			}
			if sc.eat('}') {
				break
			}
			return dst, sc.fail("',' or '}' expected")
		}
	}
	sc.ws()
	if sc.i != len(s) {
		return dst, sc.fail("trailing data")
	}
	return dst, nil
}

// StringValue returns the text of a string member, unescaped. It is only
// meaningful for m.Kind == JSONString.
func (m Member) StringValue() string {
	raw := m.Raw[1 : len(m.Raw)-1]
	if !m.Escaped {
		return raw
	}
	return unescape(raw)
}

// Clip shortens attacker-controlled text (a kid, an alg, a claim value)
// quoted in an error or a log line to 64 bytes.
func Clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// clip shortens attacker-controlled text quoted in an error.
func clip(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

type scanner struct {
	s string
	i int
}

func (sc *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, sc.i)
}

func (sc *scanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

func (sc *scanner) eat(c byte) bool {
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// value scans one JSON value at sc.i and reports its kind and, for a
// string, whether it holds escapes.
func (sc *scanner) value(depth int) (ValueKind, bool, error) {
	if sc.i >= len(sc.s) {
		return 0, false, sc.fail("value expected")
	}
	switch c := sc.s[sc.i]; {
	case c == '"':
		esc, err := sc.str()
		return JSONString, esc, err
	case c == '-' || c >= '0' && c <= '9':
		return JSONNumber, false, sc.number()
	case c == '{':
		return JSONObject, false, sc.object(depth + 1)
	case c == '[':
		return JSONArray, false, sc.array(depth + 1)
	case c == 't':
		return JSONTrue, false, sc.literal("true")
	case c == 'f':
		return JSONFalse, false, sc.literal("false")
	case c == 'n':
		return JSONNull, false, sc.literal("null")
	}
	return 0, false, sc.fail("value expected")
}

func (sc *scanner) literal(lit string) error {
	if !strings.HasPrefix(sc.s[sc.i:], lit) {
		return sc.fail("invalid literal")
	}
	sc.i += len(lit)
	return nil
}

func (sc *scanner) object(depth int) error {
	if depth > MaxDepth {
		return sc.fail("nesting too deep")
	}
	sc.i++ // '{'
	sc.ws()
	if sc.eat('}') {
		return nil
	}
	for {
		sc.ws()
		if _, err := sc.str(); err != nil {
			return err
		}
		sc.ws()
		if !sc.eat(':') {
			return sc.fail("':' expected")
		}
		sc.ws()
		if _, _, err := sc.value(depth); err != nil {
			return err
		}
		sc.ws()
		if sc.eat(',') {
			continue
		}
		if sc.eat('}') {
			return nil
		}
		return sc.fail("',' or '}' expected")
	}
}

func (sc *scanner) array(depth int) error {
	if depth > MaxDepth {
		return sc.fail("nesting too deep")
	}
	sc.i++ // '['
	sc.ws()
	if sc.eat(']') {
		return nil
	}
	for {
		sc.ws()
		if _, _, err := sc.value(depth); err != nil {
			return err
		}
		sc.ws()
		if sc.eat(',') {
			continue
		}
		if sc.eat(']') {
			return nil
		}
		return sc.fail("',' or ']' expected")
	}
}

// str scans a string at sc.i (which must be '"') up to and including its
// closing quote, and reports whether it holds escapes.
func (sc *scanner) str() (bool, error) {
	if !sc.eat('"') {
		return false, sc.fail("string expected")
	}
	esc := false
	s := sc.s
	for sc.i < len(s) {
		c := s[sc.i]
		switch {
		case c == '"':
			sc.i++
			return esc, nil
		case c == '\\':
			esc = true
			if sc.i+1 >= len(s) {
				return false, sc.fail("unterminated escape")
			}
			switch s[sc.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				sc.i += 2
			case 'u':
				r, ok := sc.hexEscape()
				if !ok {
					return false, sc.fail("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					if lo, ok := sc.hexEscape(); r >= 0xdc00 || !ok || utf16.DecodeRune(r, lo) == utf8.RuneError {
						return false, sc.fail("lone surrogate escape")
					}
				}
			default:
				return false, sc.fail("invalid escape")
			}
		case c < 0x20:
			return false, sc.fail("control character in string")
		case c < utf8.RuneSelf:
			sc.i++
		default:
			r, size := utf8.DecodeRuneInString(s[sc.i:])
			if r == utf8.RuneError && size == 1 {
				return false, sc.fail("invalid UTF-8")
			}
			sc.i += size
		}
	}
	return false, sc.fail("unterminated string")
}

func (sc *scanner) number() error {
	s := sc.s
	i := sc.i
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i)
	default:
		sc.i = i
		return sc.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			sc.i = j
			return sc.fail("invalid number")
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			sc.i = j
			return sc.fail("invalid number")
		}
		i = j
	}
	sc.i = i
	return nil
}

func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// hexEscape consumes a \uXXXX escape at sc.i and returns its code unit;
// it consumes nothing and reports false if there is none.
func (sc *scanner) hexEscape() (rune, bool) {
	s := sc.s[sc.i:]
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' || !isHex4(s[2:6]) {
		return 0, false
	}
	sc.i += 6
	return hex4(s[2:]), true
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		if hexVal(s[i]) < 0 {
			return false
		}
	}
	return true
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

func hex4(s string) rune {
	return hexVal(s[0])<<12 | hexVal(s[1])<<8 | hexVal(s[2])<<4 | hexVal(s[3])
}

// unescape decodes the escapes of a string's content (without its quotes)
// that str has validated: every surrogate escape is half of a pair.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		e := s[i+1]
		i += 2
		switch e {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(s[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				r = utf16.DecodeRune(r, hex4(s[i+2:]))
				i += 6
			}
			b.WriteRune(r)
		default: // '"', '\\', '/'
			b.WriteByte(e)
		}
	}
	return b.String()
}
