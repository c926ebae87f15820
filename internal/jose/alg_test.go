package jose_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
)

func TestDigest(t *testing.T) {
	msg := []byte("header.payload")
	s256, s384, s512 := sha256.Sum256(msg), sha512.Sum384(msg), sha512.Sum512(msg)
	tests := []struct {
		alg  string
		want []byte
	}{
		{"ES256", s256[:]}, {"RS256", s256[:]}, {"PS256", s256[:]},
		{"ES384", s384[:]}, {"RS384", s384[:]},
		{"ES512", s512[:]}, {"PS512", s512[:]},
		{"EdDSA", msg},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			a, ok := jose.Lookup(tt.alg)
			if !ok {
				t.Fatalf("Lookup(%s) failed", tt.alg)
			}
			if got := a.Digest(msg); !bytes.Equal(got, tt.want) {
				t.Errorf("Digest = %x, want %x", got, tt.want)
			}
		})
	}
}

func TestToP1363(t *testing.T) {
	a, _ := jose.Lookup("ES256")
	r := bytes.Repeat([]byte{0x11}, 32)
	s := bytes.Repeat([]byte{0x22}, 32)
	der := func(parts ...[]byte) []byte {
		var body []byte
		for _, p := range parts {
			body = append(body, 0x02, byte(len(p)))
			body = append(body, p...)
		}
		return append([]byte{0x30, byte(len(body))}, body...)
	}
	high := append([]byte{0x00}, bytes.Repeat([]byte{0x99}, 32)...) // a leading zero keeps it positive
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte // nil: an error
	}{
		{"plain", der(r, s), append(append([]byte{}, r...), s...)},
		{"short r is left-padded", der([]byte{0x05}, s), append(append(make([]byte, 31), 0x05), s...)},
		{"high bit with leading zero", der(high, s), append(bytes.Repeat([]byte{0x99}, 32), s...)},
		{"negative r", der([]byte{0x80}, s), nil},
		{"zero r", der([]byte{0x00}, s), nil},
		{"non-minimal leading zero", der([]byte{0x00, 0x05}, s), nil},
		{"r longer than the curve", der(bytes.Repeat([]byte{0x11}, 33), s), nil},
		{"trailing data", append(der(r, s), 0x00), nil},
		{"three integers", der(r, s, s), nil},
		{"raw r||s", append(append([]byte{}, r...), s...), nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.ToP1363(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ToP1363 = %x, want an error", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("ToP1363 = %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}
