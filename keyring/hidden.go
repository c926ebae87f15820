package keyring

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Hidden holds a string that is never shown: String, GoString, every fmt
// verb, JSON, text and slog print "REDACTED" (or nothing for an empty
// one). Reveal is the one way to read it. Key.BackendRef is a Hidden, and
// so is the value of a SecretValue.
//
// The string sits behind a pointer to a string, which fmt prints as an
// address under every verb and at every depth: a Key or a SecretValue held
// in an unexported field of the host's own struct, where fmt cannot call
// their methods, still prints no material with %v, %+v, %#v or %s, nor
// through slog's text and JSON handlers.
type Hidden struct {
	s *string
}

// Hide returns a Hidden holding s.
func Hide(s string) Hidden {
	if s == "" {
		return Hidden{}
	}
	return Hidden{s: &s}
}

// Reveal returns the string; "" for the zero Hidden.
func (h Hidden) Reveal() string {
	if h.s == nil {
		return ""
	}
	return *h.s
}

// IsZero reports whether h holds nothing.
func (h Hidden) IsZero() bool { return h.s == nil }

// Equal reports whether h and o hold the same string, in time that does
// not depend on where they differ; go-cmp uses it to compare Keys.
func (h Hidden) Equal(o Hidden) bool {
	return subtle.ConstantTimeCompare([]byte(h.Reveal()), []byte(o.Reveal())) == 1
}

// String is "REDACTED", or "" when h holds nothing.
func (h Hidden) String() string {
	if h.s == nil {
		return ""
	}
	return "REDACTED"
}

// GoString keeps %#v redacted.
func (h Hidden) GoString() string { return h.String() }

// Format makes every verb print String.
func (h Hidden) Format(f fmt.State, _ rune) { io.WriteString(f, h.String()) }

// MarshalJSON writes String as a JSON string.
func (h Hidden) MarshalJSON() ([]byte, error) { return json.Marshal(h.String()) }

// MarshalText writes String.
func (h Hidden) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// LogValue keeps slog attributes redacted.
func (h Hidden) LogValue() slog.Value { return slog.StringValue(h.String()) }
