package keyring_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/keyring"
)

// host is what a host service might keep: a secret and a key record in
// unexported fields (which fmt prints field by field without calling
// their methods), behind pointers, in containers and in exported fields.
type host struct {
	name     string
	secret   keyring.SecretValue
	key      keyring.Key
	secPtr   *keyring.SecretValue
	keyPtr   *keyring.Key
	keys     []keyring.Key
	byName   map[string]keyring.SecretValue
	boxed    any
	Secret   keyring.SecretValue
	Key      keyring.Key
	Embedded struct{ ref keyring.Hidden }
}

// shows lists the forms in which material could appear in output: as
// text, hex, base64 and fmt's list of decimal bytes.
func shows(material string) []string {
	b := []byte(material)
	dec := fmt.Sprint(b[:4])
	return []string{
		material, fmt.Sprintf("%x", material), fmt.Sprintf("%X", material),
		base64.StdEncoding.EncodeToString(b), strings.TrimSuffix(dec, "]"),
	}
}

// TestMaterialUnreachableFromHostStructs: the value of a SecretValue and a
// Key's BackendRef show in no fmt verb, at any depth, nor through slog's
// text and JSON handlers, when the host holds them in unexported fields
// (issue 14, item 1).
func TestMaterialUnreachableFromHostStructs(t *testing.T) {
	const value = "hunter2-Sup3r-S3cret-a6f1"
	e, _, _ := newSecretEnv(t)
	k := e.bootstrap(t)
	if k.BackendRef.IsZero() {
		t.Fatal("key has no backend reference: the test would prove nothing")
	}
	if _, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte(value), ""); err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	sv, err := e.ring.Secret(ctx(t, core), dbPassword)
	if err != nil || string(sv.Reveal()) != value {
		t.Fatalf("Secret: %v", err)
	}
	h := host{
		name: "h", secret: sv, key: k, secPtr: &sv, keyPtr: &k, keys: []keyring.Key{k},
		byName: map[string]keyring.SecretValue{"db": sv}, boxed: k, Secret: sv, Key: k,
	}
	h.Embedded.ref = k.BackendRef

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%c", "%U", "%e", "%f", "%g", "%t", "%p", "%T", "%10.3v", "%-+#v"} {
		for _, arg := range []any{h, &h, []host{h}, []*host{&h}, map[string]host{"h": h}, struct{ h *host }{&h}} {
			outputs = append(outputs, fmt.Sprintf(verb, arg))
		}
	}
	outputs = append(outputs, fmt.Sprint(h, &h), fmt.Sprintln(h, &h))
	var logs bytes.Buffer
	for _, l := range []*slog.Logger{
		slog.New(slog.NewTextHandler(&logs, nil)),
		slog.New(slog.NewJSONHandler(&logs, nil)),
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{AddSource: true})).With("host", h),
	} {
		l.Info("state", "host", h, "ptr", &h, "list", []host{h}, slog.Group("g", "host", h), "key", k, "secret", sv)
	}
	outputs = append(outputs, logs.String())
	if j, err := json.Marshal(h); err == nil {
		outputs = append(outputs, string(j))
	} else {
		t.Errorf("json.Marshal(host): %v", err)
	}

	material := map[string]string{"secret value": value, "backend reference": k.BackendRef.Reveal()}
	for what, m := range material {
		for _, form := range shows(m) {
			for i, o := range outputs {
				if strings.Contains(o, form) {
					t.Errorf("output %d shows the %s as %q: %.300s", i, what, form, o)
				}
			}
		}
	}
}

// TestHidden: Hide and Reveal round-trip; every encoding redacts.
func TestHidden(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantZero bool
		wantStr  string
	}{
		{name: "empty", in: "", wantZero: true, wantStr: ""},
		{name: "set", in: "wrapped-key-material", wantZero: false, wantStr: "REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := keyring.Hide(tt.in)
			if got := h.Reveal(); got != tt.in {
				t.Errorf("Reveal = %q, want %q", got, tt.in)
			}
			if got := h.IsZero(); got != tt.wantZero {
				t.Errorf("IsZero = %t, want %t", got, tt.wantZero)
			}
			if !h.Equal(keyring.Hide(tt.in)) || h.Equal(keyring.Hide(tt.in+"x")) {
				t.Errorf("Equal: want true for the same string only")
			}
			j, err := json.Marshal(h)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			txt, err := h.MarshalText()
			if err != nil {
				t.Fatalf("MarshalText: %v", err)
			}
			for _, got := range []string{h.String(), h.GoString(), fmt.Sprintf("%v", h), fmt.Sprintf("%#v", h), fmt.Sprintf("%x", h), string(txt), h.LogValue().String()} {
				if got != tt.wantStr {
					t.Errorf("form = %q, want %q", got, tt.wantStr)
				}
			}
			if want, _ := json.Marshal(tt.wantStr); string(j) != string(want) {
				t.Errorf("JSON = %s, want %s", j, want)
			}
		})
	}
}
