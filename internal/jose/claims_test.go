package jose_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/jose"
)

func TestClaimsRoundTrip(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0).UTC()
	tests := []struct {
		name string
		in   tokenkms.Claims
		json string
	}{
		{name: "empty", in: tokenkms.Claims{}, json: `{}`},
		{name: "one audience", in: tokenkms.Claims{Issuer: "i", Audience: []string{"a"}}, json: `{"iss":"i","aud":"a"}`},
		{name: "full", in: tokenkms.Claims{
			Issuer: "https://i", Subject: "s<&>\u2028", Audience: []string{"a", "b"},
			ExpiresAt: t0.Add(time.Hour), NotBefore: t0, IssuedAt: t0, ID: "j",
			Scope: []string{"r", "w"}, ClientID: "c", PrincipalType: "user",
			Extra: map[string]any{"z": []any{1.0, "x"}, "a": map[string]any{"k": true}},
		}, json: `{"iss":"https://i","sub":"s\u003c\u0026\u003e\u2028","aud":["a","b"],"exp":1700003600,"nbf":1700000000,"iat":1700000000,"jti":"j","client_id":"c","principal_type":"user","scope":"r w","a":{"k":true},"z":[1,"x"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := jose.AppendClaims(nil, &tt.in)
			if err != nil {
				t.Fatalf("AppendClaims: %v", err)
			}
			if string(b) != tt.json {
				t.Errorf("AppendClaims = %s, want %s", b, tt.json)
			}
			var got tokenkms.Claims
			if err := jose.DecodeClaims(string(b), &got); err != nil {
				t.Fatalf("DecodeClaims: %v", err)
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeClaimsValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want tokenkms.Claims
	}{
		{name: "fraction", in: `{"exp":1700000000.5}`, want: tokenkms.Claims{ExpiresAt: time.Unix(1700000000, 5e8).UTC()}},
		{name: "exponent", in: `{"iat":1.7e9}`, want: tokenkms.Claims{IssuedAt: time.Unix(1700000000, 0).UTC()}},
		{name: "zero", in: `{"nbf":0}`, want: tokenkms.Claims{NotBefore: time.Unix(0, 0).UTC()}},
		{name: "max", in: `{"exp":253402300799}`, want: tokenkms.Claims{ExpiresAt: time.Unix(253402300799, 0).UTC()}},
		{name: "escaped strings", in: `{"sub":"a\u0062","aud":["\u0063"],"scope":"x\u0020y"}`, want: tokenkms.Claims{Subject: "ab", Audience: []string{"c"}, Scope: []string{"x", "y"}}},
		{name: "empty scope", in: `{"scope":""}`, want: tokenkms.Claims{}},
		{name: "empty aud array", in: `{"aud":[ ]}`, want: tokenkms.Claims{Audience: []string{}}},
		{name: "extra null", in: `{"x":null}`, want: tokenkms.Claims{Extra: map[string]any{"x": nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got tokenkms.Claims
			if err := jose.DecodeClaims(tt.in, &got); err != nil {
				t.Fatalf("DecodeClaims(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeClaims(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestDecodeClaimsRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{name: "exp string", in: `{"exp":"1"}`, want: jose.ErrType},
		{name: "exp negative", in: `{"exp":-1}`, want: jose.ErrType},
		{name: "exp over year 9999", in: `{"exp":253402300800}`, want: jose.ErrType},
		{name: "exp overflow", in: `{"exp":1e400}`, want: jose.ErrType},
		{name: "iat array", in: `{"iat":[1]}`, want: jose.ErrType},
		{name: "nbf null", in: `{"nbf":null}`, want: jose.ErrType},
		{name: "aud object", in: `{"aud":{}}`, want: jose.ErrType},
		{name: "aud nested array", in: `{"aud":[["a"]]}`, want: jose.ErrType},
		{name: "aud with null", in: `{"aud":["a",null]}`, want: jose.ErrType},
		{name: "sub number", in: `{"sub":1}`, want: jose.ErrType},
		{name: "jti bool", in: `{"jti":true}`, want: jose.ErrType},
		{name: "client_id null", in: `{"client_id":null}`, want: jose.ErrType},
		{name: "principal_type array", in: `{"principal_type":["user"]}`, want: jose.ErrType},
		{name: "scope array", in: `{"scope":["a"]}`, want: jose.ErrType},
		{name: "scope leading space", in: `{"scope":" a"}`, want: jose.ErrType},
		{name: "scope trailing space", in: `{"scope":"a "}`, want: jose.ErrType},
		{name: "scope tab", in: `{"scope":"a\tb"}`, want: jose.ErrType},
		{name: "scope quote", in: `{"scope":"a\"b"}`, want: jose.ErrType},
		{name: "duplicate", in: `{"sub":"a","sub":"b"}`, want: jose.ErrDuplicate},
		{name: "syntax", in: `{"sub":"a"`, want: jose.ErrSyntax},
		{name: "lone surrogate value", in: `{"sub":"\udc00"}`, want: jose.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c tokenkms.Claims
			if err := jose.DecodeClaims(tt.in, &c); !errors.Is(err, tt.want) {
				t.Errorf("DecodeClaims(%s) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestAppendClaimsRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   tokenkms.Claims
	}{
		{name: "registered name in Extra", in: tokenkms.Claims{Extra: map[string]any{"scope": "x"}}},
		{name: "invalid UTF-8", in: tokenkms.Claims{Subject: "\xff"}},
		{name: "invalid UTF-8 in Extra name", in: tokenkms.Claims{Extra: map[string]any{"\xff": 1}}},
		{name: "bad scope", in: tokenkms.Claims{Scope: []string{"a b"}}},
		{name: "negative time", in: tokenkms.Claims{ExpiresAt: time.Unix(-5, 0)}},
		{name: "unencodable Extra", in: tokenkms.Claims{Extra: map[string]any{"c": make(chan int)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := jose.AppendClaims(nil, &tt.in); !errors.Is(err, jose.ErrEncode) {
				t.Errorf("AppendClaims error = %v, want ErrEncode", err)
			}
		})
	}
}

// TestAppendStringMatchesEncodingJSON compares the string encoder with
// encoding/json on valid UTF-8.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		all.WriteRune(r)
	}
	for _, s := range []string{"", "plain", `"\/`, "\x00\x1f\x7f", "<>&", "\u2028\u2029", "😀", all.String()} {
		got, err := jose.AppendString(nil, s)
		if err != nil {
			t.Fatalf("AppendString: %v", err)
		}
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Errorf("AppendString of a %d-byte string differs from encoding/json at byte %d: %q, want %q",
				len(s), i, got[i:min(i+12, len(got))], want[i:min(i+12, len(want))])
		}
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want jose.Header
		err  error
	}{
		{name: "plain", in: `{"alg":"ES256","kid":"k","typ":"at+jwt"}`, want: jose.Header{Alg: "ES256", KID: "k", Typ: "at+jwt"}},
		{name: "refused params", in: `{"alg":"ES256","jku":"u","x5u":1,"x5c":[],"jwk":{},"b64":false,"crit":["b64"]}`, want: jose.Header{Alg: "ES256",
			Refused: jose.ParamJKU | jose.ParamX5U | jose.ParamX5C | jose.ParamJWK | jose.ParamB64 | jose.ParamCrit}},
		{name: "escaped refused param", in: `{"j\u006bu":"u"}`, want: jose.Header{Refused: jose.ParamJKU}},
		{name: "kid number", in: `{"kid":1}`, err: jose.ErrType},
		{name: "typ null", in: `{"typ":null}`, err: jose.ErrType},
		{name: "duplicate", in: `{"alg":"a","alg":"b"}`, err: jose.ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jose.ParseHeader(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseHeader error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseHeader = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if got, want := (jose.ParamX5C | jose.ParamCrit).First(), "x5c"; got != want {
		t.Errorf("First = %q, want %q", got, want)
	}
}

func TestSplitCompact(t *testing.T) {
	tests := []struct {
		in  string
		ok  bool
		sig string
	}{
		{in: "a.b.c", ok: true, sig: "c"},
		{in: "a.b.", ok: true, sig: ""},
		{in: "a.b", ok: false},
		{in: "abc", ok: false},
		{in: "a.b.c.d", ok: false},
		{in: "a.b.c.d.e", ok: false},
		{in: ".b.c", ok: false},
		{in: "a..c", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := jose.SplitCompact([]byte(tt.in))
			if !tt.ok {
				if !errors.Is(err, jose.ErrSyntax) {
					t.Errorf("SplitCompact(%q) error = %v, want ErrSyntax", tt.in, err)
				}
				return
			}
			if err != nil || string(c.Signature) != tt.sig || string(c.SigningInput) != "a.b" {
				t.Errorf("SplitCompact(%q) = %q %q, %v", tt.in, c.SigningInput, c.Signature, err)
			}
		})
	}
}
