package jose_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/tokenkms/tokenkms/internal/jose"
)

func TestAppendDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" with wantErr
		err  bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "one byte", in: "YQ", want: "a"},
		{name: "two bytes", in: "YWI", want: "ab"},
		{name: "three bytes", in: "YWJj", want: "abc"},
		{name: "url alphabet", in: "-_8", want: "\xfb\xff"},
		{name: "padding", in: "YQ==", err: true},
		{name: "one pad", in: "YWI=", err: true},
		{name: "std alphabet plus", in: "+_8", err: true},
		{name: "std alphabet slash", in: "-/8", err: true},
		{name: "newline", in: "YW\nJj", err: true},
		{name: "carriage return", in: "YWJj\r", err: true},
		{name: "space", in: "YW Jj", err: true},
		{name: "length 1 mod 4", in: "YWJjZ", err: true},
		{name: "non-zero trailing bits, 2 chars", in: "YR", err: true},
		{name: "non-zero trailing bits, 3 chars", in: "YWJ", err: true},
		{name: "NUL", in: "YW\x00j", err: true},
		{name: "high byte", in: "YW\xc3j", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jose.AppendDecode([]byte("prefix"), []byte(tt.in))
			if tt.err {
				if !errors.Is(err, jose.ErrBase64) {
					t.Fatalf("AppendDecode(%q) error = %v, want ErrBase64", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("AppendDecode(%q): %v", tt.in, err)
			}
			if string(got) != "prefix"+tt.want {
				t.Errorf("AppendDecode(%q) = %q, want %q", tt.in, got, "prefix"+tt.want)
			}
		})
	}
}

func TestDecodedLen(t *testing.T) {
	for n, want := range []int{0, -1, 1, 2, 3, -1, 4, 5, 6} {
		if got := jose.DecodedLen(n); got != want {
			t.Errorf("DecodedLen(%d) = %d, want %d", n, got, want)
		}
	}
}

// FuzzAppendDecode checks the decoder against encoding/base64's strict
// unpadded base64url, which also ignores CR and LF (this decoder refuses
// them), and the round trip through AppendEncode.
func FuzzAppendDecode(f *testing.F) {
	for _, s := range []string{"", "YQ", "YR", "YWJj", "-_8", "YQ==", "YW\nJj", "AAAA"} {
		f.Add([]byte(s))
	}
	strict := base64.RawURLEncoding.Strict()
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := jose.AppendDecode(nil, in)
		want, werr := strict.DecodeString(string(in))
		if bytes.ContainsAny(in, "\r\n") {
			if err == nil {
				t.Fatalf("AppendDecode(%q) accepted a line break", in)
			}
			return
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("AppendDecode(%q) error = %v, encoding/base64 says %v", in, err, werr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendDecode(%q) = %x, want %x", in, got, want)
		}
		if enc := jose.AppendEncode(nil, got); !bytes.Equal(enc, in) {
			t.Fatalf("AppendEncode(AppendDecode(%q)) = %q: not canonical", in, enc)
		}
	})
}
