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
