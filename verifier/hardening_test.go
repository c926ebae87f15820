package verifier_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tokenkms/tokenkms/verifier"
)

// TestLoneSurrogateRefused: a claim holding a lone UTF-16 surrogate escape,
// anywhere in the claims set, is malformed (it used to decode as U+FFFD).
func TestLoneSurrogateRefused(t *testing.T) {
	f := newFixture(t, "ES256")
	s := testSigner(t, "ES256")
	v := f.verifier(t, basePolicy())
	tests := []struct {
		name  string
		extra string
	}{
		{name: "high", extra: `"note":"\ud800"`},
		{name: "low", extra: `"note":"a\udc00b"`},
		{name: "high then letter", extra: `"note":"\ud83dA"`},
		{name: "in an array", extra: `"roles":["admin","\ud800"]`},
		{name: "in a nested name", extra: `"ctx":{"\udfff":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := craft(t, s, hdr(s), claimsJSON(nil, tt.extra))
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrMalformed) {
				t.Errorf("Verify with %s: error = %v, want ErrMalformed", tt.extra, err)
			}
		})
	}
	t.Run("pair accepted", func(t *testing.T) {
		tok := craft(t, s, hdr(s), claimsJSON(nil, `"note":"\ud83d\ude00"`))
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify with a surrogate pair: %v", err)
		}
		if got, want := c.Extra["note"], "\U0001F600"; got != want {
			t.Errorf("note = %q, want %q", got, want)
		}
	})
}
