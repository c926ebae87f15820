package jose_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms/internal/jose"
)

func TestScanObject(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []jose.Member
	}{
		{name: "empty", in: `{}`, want: nil},
		{name: "whitespace", in: " \t\r\n{ \"a\" : 1 }\n", want: []jose.Member{{Name: "a", Raw: "1", Kind: jose.JSONNumber}}},
		{name: "every kind", in: `{"s":"x","n":-1.5e+3,"o":{"a":[1,{}]},"a":[],"t":true,"f":false,"z":null}`, want: []jose.Member{
			{Name: "s", Raw: `"x"`, Kind: jose.JSONString},
			{Name: "n", Raw: `-1.5e+3`, Kind: jose.JSONNumber},
			{Name: "o", Raw: `{"a":[1,{}]}`, Kind: jose.JSONObject},
			{Name: "a", Raw: `[]`, Kind: jose.JSONArray},
			{Name: "t", Raw: `true`, Kind: jose.JSONTrue},
			{Name: "f", Raw: `false`, Kind: jose.JSONFalse},
			{Name: "z", Raw: `null`, Kind: jose.JSONNull},
		}},
		{name: "escaped name", in: `{"a\u0062\n":"\"q\""}`, want: []jose.Member{{Name: "ab\n", Raw: `"\"q\""`, Kind: jose.JSONString, Escaped: true}}},
		{name: "surrogate pair", in: `{"e":"\ud83d\ude00"}`, want: []jose.Member{{Name: "e", Raw: `"\ud83d\ude00"`, Kind: jose.JSONString, Escaped: true}}},
		{name: "UTF-8", in: `{"é":"日本"}`, want: []jose.Member{{Name: "é", Raw: `"日本"`, Kind: jose.JSONString}}},
		{name: "nested duplicates are allowed", in: `{"o":{"a":1,"a":2}}`, want: []jose.Member{{Name: "o", Raw: `{"a":1,"a":2}`, Kind: jose.JSONObject}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jose.ScanObject(tt.in, nil)
			if err != nil {
				t.Fatalf("ScanObject(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ScanObject(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestScanObjectRefuses(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf(`"m%d":%d`, i, i)
	}
	manyDup := "{" + strings.Join(many, ",") + `,"m3":0}`
	tests := []struct {
		name string
		in   string
		want error
	}{
		{name: "duplicate", in: `{"a":1,"a":2}`, want: jose.ErrDuplicate},
		{name: "duplicate after unescaping", in: `{"alg":"ES256","al\u0067":"none"}`, want: jose.ErrDuplicate},
		{name: "duplicate in a long object", in: manyDup, want: jose.ErrDuplicate},
		{name: "empty input", in: ``, want: jose.ErrSyntax},
		{name: "array", in: `[1]`, want: jose.ErrSyntax},
		{name: "string", in: `"a"`, want: jose.ErrSyntax},
		{name: "trailing data", in: `{}{}`, want: jose.ErrSyntax},
		{name: "trailing comma", in: `{"a":1,}`, want: jose.ErrSyntax},
		{name: "trailing comma in array", in: `{"a":[1,]}`, want: jose.ErrSyntax},
		{name: "unquoted name", in: `{a:1}`, want: jose.ErrSyntax},
		{name: "single quotes", in: `{'a':1}`, want: jose.ErrSyntax},
		{name: "missing colon", in: `{"a" 1}`, want: jose.ErrSyntax},
		{name: "unterminated", in: `{"a":1`, want: jose.ErrSyntax},
		{name: "unterminated string", in: `{"a":"x}`, want: jose.ErrSyntax},
		{name: "leading zero", in: `{"a":01}`, want: jose.ErrSyntax},
		{name: "plus sign", in: `{"a":+1}`, want: jose.ErrSyntax},
		{name: "bare dot", in: `{"a":1.}`, want: jose.ErrSyntax},
		{name: "bare exponent", in: `{"a":1e}`, want: jose.ErrSyntax},
		{name: "NaN", in: `{"a":NaN}`, want: jose.ErrSyntax},
		{name: "Infinity", in: `{"a":-Infinity}`, want: jose.ErrSyntax},
		{name: "hex", in: `{"a":0x10}`, want: jose.ErrSyntax},
		{name: "bad literal", in: `{"a":tru}`, want: jose.ErrSyntax},
		{name: "control character", in: "{\"a\":\"x\x01\"}", want: jose.ErrSyntax},
		{name: "bad escape", in: `{"a":"\x"}`, want: jose.ErrSyntax},
		{name: "short unicode escape", in: `{"a":"\u12"}`, want: jose.ErrSyntax},
		{name: "lone high surrogate in name", in: `{"\ud800":1}`, want: jose.ErrSyntax},
		{name: "lone low surrogate in name", in: `{"\udc00":1}`, want: jose.ErrSyntax},
		{name: "lone high surrogate value", in: `{"a":"\ud800"}`, want: jose.ErrSyntax},
		{name: "lone low surrogate value", in: `{"a":"x\udfff"}`, want: jose.ErrSyntax},
		{name: "high surrogate then letter", in: `{"a":"\ud800\u0041"}`, want: jose.ErrSyntax},
		{name: "two high surrogates", in: `{"a":"\ud800\ud800"}`, want: jose.ErrSyntax},
		{name: "reversed pair", in: `{"a":"\ude00\ud83d"}`, want: jose.ErrSyntax},
		{name: "high surrogate at end", in: `{"a":"\ud83d"}`, want: jose.ErrSyntax},
		{name: "lone surrogate in array", in: `{"a":["ok","\ud800"]}`, want: jose.ErrSyntax},
		{name: "lone surrogate in nested name", in: `{"a":{"\udc00":1}}`, want: jose.ErrSyntax},
		{name: "lone surrogate in nested value", in: `{"a":{"b":[{"c":"\ud800"}]}}`, want: jose.ErrSyntax},
		{name: "invalid UTF-8", in: "{\"a\":\"\xff\"}", want: jose.ErrSyntax},
		{name: "overlong UTF-8", in: "{\"a\":\"\xc0\xaf\"}", want: jose.ErrSyntax},
		{name: "too deep", in: `{"a":` + strings.Repeat("[", jose.MaxDepth+1) + strings.Repeat("]", jose.MaxDepth+1) + `}`, want: jose.ErrSyntax},
		{name: "comment", in: `{"a":1 /* x */}`, want: jose.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jose.ScanObject(tt.in, nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("ScanObject(%q) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestScanObjectDepthLimit(t *testing.T) {
	in := `{"a":` + strings.Repeat("[", jose.MaxDepth) + strings.Repeat("]", jose.MaxDepth) + `}`
	if _, err := jose.ScanObject(in, nil); err != nil {
		t.Errorf("ScanObject at MaxDepth: %v, want nil", err)
	}
}

func TestMemberStringValue(t *testing.T) {
	ms, err := jose.ScanObject(`{"a":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00<","b":"plain"}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"x\"\\/\b\f\n\r\t\u00e9\U0001F600<", "plain"} {
		if got := ms[i].StringValue(); got != want {
			t.Errorf("StringValue(%s) = %q; want %q", ms[i].Raw, got, want)
		}
	}
}

// FuzzScanObject checks that ScanObject never accepts what encoding/json
// calls invalid, that its members decode as encoding/json decodes them, and
// that it never panics.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"\u00e9","b":[true,null,{"c":-1.5e3}]}`, `{"a":1,"a":2}`, `{"\ud800":1}`, "{\"a\":\"\xff\"}", `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := jose.ScanObject(in, nil)
		if err != nil {
			return
		}
		if !json.Valid([]byte(in)) {
			t.Fatalf("ScanObject accepted %q, which encoding/json says is invalid", in)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &obj); err != nil {
			t.Fatalf("encoding/json cannot decode %q: %v", in, err)
		}
		if len(obj) != len(ms) {
			t.Fatalf("ScanObject found %d members in %q, encoding/json %d", len(ms), in, len(obj))
		}
		for _, m := range ms {
			raw, ok := obj[m.Name]
			if !ok {
				t.Fatalf("member %q of %q unknown to encoding/json", m.Name, in)
			}
			if string(raw) != m.Raw {
				t.Fatalf("member %q raw = %q, encoding/json %q", m.Name, m.Raw, raw)
			}
			if m.Kind == jose.JSONString {
				got := m.StringValue()
				var want string
				if werr := json.Unmarshal(raw, &want); werr != nil || got != want {
					t.Fatalf("member %q value = %q, encoding/json %q (%v)", m.Name, got, want, werr)
				}
			}
		}
	})
}
