package keyring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
)

const dbPassword = "db-password"

var dbPolicy = keyring.SecretPolicy{Name: dbPassword, Owner: "team-db", RotationPeriod: 30 * keyring.Day, PreviousWindow: 2 * time.Hour}

// hookLog records the values the SecretHooks were given.
type hookLog struct {
	mu   sync.Mutex
	got  []keyring.SecretValue
	fail error
}

func (h *hookLog) hook(_ context.Context, v keyring.SecretValue) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, v)
	return h.fail
}

func newSecretEnv(t *testing.T, mutate ...func(*keyring.Config)) (*env, *hookLog, *countingWrapper) {
	t.Helper()
	h := &hookLog{}
	w := newCountingWrapper()
	e := newEnv(t, append([]func(*keyring.Config){func(c *keyring.Config) {
		c.Secrets = []keyring.SecretPolicy{dbPolicy}
		c.SecretHooks = []keyring.SecretHook{h.hook}
		c.Wrappers = map[string]signer.KeyWrapper{"local": w}
	}}, mutate...)...)
	return e, h, w
}

// reveal returns a function that fails t on a read error and returns the
// value read.
func reveal(t *testing.T) func(keyring.SecretValue, error) string {
	return func(v keyring.SecretValue, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("read secret: %v", err)
		}
		return string(v.Reveal())
	}
}

func TestSecretRotation(t *testing.T) {
	e, h, _ := newSecretEnv(t)
	v1, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte("first-pw"), "")
	if err != nil {
		t.Fatalf("RotateSecret (create): %v", err)
	}
	if v1.Version() != 1 || v1.Name() != dbPassword || !v1.RotateBy().Equal(t0.Add(dbPolicy.RotationPeriod)) {
		t.Errorf("v1: %v rotate-by %v, want version 1 rotate-by %v", v1, v1.RotateBy(), t0.Add(dbPolicy.RotationPeriod))
	}
	if got := reveal(t)(e.ring.Secret(ctx(t, core), dbPassword)); got != "first-pw" {
		t.Errorf("Secret: %q, want first-pw", got)
	}
	e.clock.Advance(time.Hour)
	v2, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte("second-pw"), "scheduled")
	if err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	if v2.Version() != 2 {
		t.Errorf("second version: %d, want 2", v2.Version())
	}
	if got := reveal(t)(e.ring.Secret(ctx(t, core), dbPassword)); got != "second-pw" {
		t.Errorf("Secret after rotation: %q, want second-pw (immediate, R3.3)", got)
	}
	if got := reveal(t)(e.ring.PreviousSecret(ctx(t, core), dbPassword)); got != "first-pw" {
		t.Errorf("PreviousSecret within the window: %q, want first-pw", got)
	}
	if got := reveal(t)(e.ring.SecretVersion(ctx(t, core), dbPassword, 1)); got != "first-pw" {
		t.Errorf("SecretVersion(1) within the window: %q, want first-pw", got)
	}
	rec, err := e.ring.Key(ctx(t, core), v1.KID())
	if err != nil || rec.Purpose != keyring.Secret || rec.Owner != "team-db" || rec.State != keyring.Retiring || strings.Contains(rec.BackendRef.Reveal(), "first-pw") {
		t.Errorf("v1 record: %v purpose %v owner %q (err %v), want a retiring, wrapped Secret record owned by team-db", rec, rec.Purpose, rec.Owner, err)
	}

	e.clock.Advance(dbPolicy.PreviousWindow)
	for name, read := range map[string]func() (keyring.SecretValue, error){
		"PreviousSecret": func() (keyring.SecretValue, error) { return e.ring.PreviousSecret(ctx(t, core), dbPassword) },
		"SecretVersion":  func() (keyring.SecretValue, error) { return e.ring.SecretVersion(ctx(t, core), dbPassword, 1) },
	} {
		if v, err := read(); !errors.Is(err, keyring.ErrSecretRevoked) {
			t.Errorf("%s after the window: got (%v, %v), want %v", name, v, err, keyring.ErrSecretRevoked)
		}
	}
	if err := e.ring.TickSecrets(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("TickSecrets: %v", err)
	}
	if rec, _ := e.ring.Key(ctx(t, core), v1.KID()); rec.State != keyring.Retired {
		t.Errorf("after TickSecrets: v1 is %v, want retired", rec.State)
	}
	if len(h.got) != 2 || h.got[1].Version() != 2 || string(h.got[1].Reveal()) != "second-pw" {
		t.Errorf("hooks saw %v, want versions 1 and 2 with their values", h.got)
	}
	var types []audit.Type
	for _, ev := range e.rec.Events() {
		if strings.HasPrefix(string(ev.Type), "secret.") && ev.Details["hook"] == "" {
			types = append(types, ev.Type)
		}
	}
	if want := []audit.Type{audit.SecretCreated, audit.SecretRotated, audit.SecretRevoked}; fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("secret audit events %v, want %v", types, want)
	}
}

func TestSecretLeakRevokesAtOnce(t *testing.T) {
	e, _, _ := newSecretEnv(t)
	if _, err := e.ring.RotateSecret(ctx(t, dave), dbPassword, []byte("x"), keyring.ReasonLeak); !errors.Is(err, keyring.ErrSecretUnset) {
		t.Errorf("leak rotation of a secret never set: got %v, want %v", err, keyring.ErrSecretUnset)
	}
	for i, pw := range []string{"pw-1", "pw-2"} {
		if _, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte(pw), ""); err != nil {
			t.Fatalf("RotateSecret %d: %v", i, err)
		}
	}
	if _, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte("pw-3"), keyring.ReasonLeak); !errors.Is(err, keyring.ErrForbidden) {
		t.Errorf("leak rotation by an issuer: got %v, want %v (security officer)", err, keyring.ErrForbidden)
	}
	v, err := e.ring.RotateSecretFunc(ctx(t, dave), dbPassword, func() ([]byte, error) { return []byte("generated-pw-3"), nil }, keyring.ReasonLeak)
	if err != nil {
		t.Fatalf("leak rotation: %v", err)
	}
	if got := reveal(t)(e.ring.Secret(ctx(t, core), dbPassword)); got != "generated-pw-3" || v.Version() != 3 {
		t.Errorf("current after leak: %q v%d, want generated-pw-3 v3", got, v.Version())
	}
	for version := 1; version <= 2; version++ {
		if _, err := e.ring.SecretVersion(ctx(t, core), dbPassword, version); !errors.Is(err, keyring.ErrSecretRevoked) {
			t.Errorf("version %d after a leak: got %v, want %v at once", version, err, keyring.ErrSecretRevoked)
		}
	}
	if _, err := e.ring.PreviousSecret(ctx(t, core), dbPassword); !errors.Is(err, keyring.ErrSecretRevoked) {
		t.Errorf("PreviousSecret after a leak: got %v, want %v", err, keyring.ErrSecretRevoked)
	}
	revoked := 0
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.SecretRevoked && ev.Reason == keyring.ReasonLeak && ev.Actor == dave.ID {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("%d secret.revoked events for the leak, want 2 (the leaked and the one still in its window)", revoked)
	}
}

func TestSecretRefusals(t *testing.T) {
	e, h, w := newSecretEnv(t)
	errGen := errors.New("entropy source down")
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"unknown secret", func() error { _, err := e.ring.Secret(ctx(t, core), "nope"); return err }, keyring.ErrUnknownSecret},
		{"unknown secret rotate", func() error { _, err := e.ring.RotateSecret(ctx(t, alice), "nope", []byte("v"), ""); return err }, keyring.ErrUnknownSecret},
		{"never set", func() error { _, err := e.ring.Secret(ctx(t, core), dbPassword); return err }, keyring.ErrSecretUnset},
		{"no previous", func() error { _, err := e.ring.PreviousSecret(ctx(t, core), dbPassword); return err }, keyring.ErrSecretUnset},
		{"no principal read", func() error { _, err := e.ring.Secret(ctx(t, keyring.Principal{}), dbPassword); return err }, keyring.ErrNoPrincipal},
		{"no principal rotate", func() error {
			_, err := e.ring.RotateSecret(ctx(t, keyring.Principal{}), dbPassword, []byte("v"), "")
			return err
		}, keyring.ErrNoPrincipal},
		{"core may not rotate", func() error { _, err := e.ring.RotateSecret(ctx(t, core), dbPassword, []byte("v"), ""); return err }, keyring.ErrForbidden},
		{"empty value", func() error { _, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, nil, ""); return err }, keyring.ErrSecretValue},
		{"too large", func() error {
			_, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, make([]byte, keyring.MaxSecretSize+1), "")
			return err
		}, keyring.ErrSecretValue},
		{"nil generator", func() error { _, err := e.ring.RotateSecretFunc(ctx(t, alice), dbPassword, nil, ""); return err }, keyring.ErrSecretValue},
		{"generator fails", func() error {
			_, err := e.ring.RotateSecretFunc(ctx(t, alice), dbPassword, func() ([]byte, error) { return nil, errGen }, "")
			return err
		}, errGen},
		{"wrapper fails", func() error {
			w.fail.Store(true)
			defer w.fail.Store(false)
			_, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte("v"), "")
			return err
		}, keyring.ErrBackend},
		{"secret without owner (R2.4)", func() error {
			_, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{
				Sets:    []keyring.SetPolicy{{Name: set, Owner: "team-identity"}},
				Secrets: []keyring.SecretPolicy{{Name: "api-key"}},
			})
			return err
		}, keyring.ErrNoOwner},
		{"audit down", func() error {
			e.rec.FailAfter(0)
			defer e.rec.FailAfter(-1)
			_, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte("v"), "")
			return err
		}, keyring.ErrAudit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if ks, _ := e.ring.Keys(ctx(t, core), keyring.Filter{Set: keyring.SecretSetPrefix + dbPassword}); len(ks) != 0 {
		t.Errorf("%d secret records after only refused rotations, want 0", len(ks))
	}
	if len(h.got) != 0 {
		t.Errorf("hooks ran %d times for refused rotations, want 0", len(h.got))
	}
	t.Run("unset version", func(t *testing.T) {
		if _, err := e.ring.SecretVersion(ctx(t, core), dbPassword, 9); !errors.Is(err, keyring.ErrSecretUnset) {
			t.Errorf("got %v, want %v", err, keyring.ErrSecretUnset)
		}
	})
	t.Run("policies", func(t *testing.T) {
		for _, sp := range []keyring.SecretPolicy{
			{Owner: "o"},
			{Name: "s"},
			{Name: "s", Owner: "o", Backend: "hsm"},
			{Name: "s", Owner: "o", RotationPeriod: time.Hour, PreviousWindow: 2 * time.Hour},
			{Name: "s", Owner: "o", PreviousWindow: -time.Second},
		} {
			_, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{
				Audit: e.rec, Revocations: e.revs, Sets: []keyring.SetPolicy{{Name: set, Owner: "o"}}, Secrets: []keyring.SecretPolicy{sp},
			})
			if !errors.Is(err, keyring.ErrPolicy) {
				t.Errorf("policy %+v: got %v, want %v", sp, err, keyring.ErrPolicy)
			}
		}
	})
}

func TestSecretHookFailure(t *testing.T) {
	e, h, _ := newSecretEnv(t)
	h.fail = errors.New("push failed for value hook-pw")
	// The hook quotes the value: neither the error text nor the audit may.
	_, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte("hook-pw"), "")
	if !errors.Is(err, keyring.ErrSecretHook) || !errors.Is(err, h.fail) {
		t.Fatalf("RotateSecret with a failing hook: got %v, want %v wrapping the hook's error", err, keyring.ErrSecretHook)
	}
	if strings.Contains(err.Error(), "hook-pw") {
		t.Errorf("hook error shows the value: %v", err)
	}
	if got := reveal(t)(e.ring.Secret(ctx(t, core), dbPassword)); got != "hook-pw" {
		t.Errorf("a failing hook undid the rotation: current %q", got)
	}
	failed := false
	for _, ev := range e.rec.Events() {
		failed = failed || (ev.Details["hook"] == "0" && ev.Outcome == audit.Failure)
	}
	if !failed {
		t.Error("the hook failure was not audited")
	}
}

// TestSecretNeverShown: no value in an error, a log line, an audit event,
// fmt output or JSON.
func TestSecretNeverShown(t *testing.T) {
	const value = "Sup3r-S3cret-Value-9d41"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	textLogger := slog.New(slog.NewTextHandler(&logs, nil))
	rec := audit.NewRecorder()
	h := &hookLog{fail: errors.New("rejected " + value)}
	w := newCountingWrapper()
	e := newEnv(t, func(c *keyring.Config) {
		c.Audit = audit.Fanout(rec, audit.NewSlog(logger))
		c.Secrets = []keyring.SecretPolicy{dbPolicy}
		c.SecretHooks = []keyring.SecretHook{h.hook}
		c.Wrappers = map[string]signer.KeyWrapper{"local": w}
	})
	var outputs []string
	add := func(s string) { outputs = append(outputs, s) }
	v, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte(value), "")
	add(fmt.Sprint(err))
	if string(v.Reveal()) != value {
		t.Fatalf("Reveal: %q", v.Reveal())
	}
	_, err = e.ring.RotateSecret(ctx(t, dave), dbPassword, []byte(value+"-2"), keyring.ReasonLeak)
	add(fmt.Sprint(err))
	w.fail.Store(true)
	_, err = e.ring.Secret(ctx(t, core), dbPassword)
	add(fmt.Sprint(err))
	w.fail.Store(false)
	cur, err := e.ring.Secret(ctx(t, core), dbPassword)
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		add(fmt.Sprintf(f, cur))
		add(fmt.Sprintf(f, &cur))
	}
	add(fmt.Sprintf("%v", []keyring.SecretValue{cur}))
	add(fmt.Sprintf("%+v", struct{ V keyring.SecretValue }{cur}))
	j, err := json.Marshal(map[string]any{"v": cur, "p": &cur})
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	add(string(j))
	logger.Info("read", "secret", cur)
	textLogger.Info("read", "secret", cur, "ptr", &cur)
	add(logs.String())
	for _, ev := range rec.Events() {
		b, _ := json.Marshal(ev)
		add(string(b))
		add(fmt.Sprintf("%+v", ev))
	}
	for _, k := range mustKeys(t, e) {
		add(fmt.Sprintf("%+v %#v %s", k, k, k.BackendRef))
	}
	if len(rec.Events()) == 0 || logs.Len() == 0 {
		t.Fatal("nothing was audited or logged: the test would prove nothing")
	}
	for i, o := range outputs {
		if strings.Contains(o, value) || strings.Contains(o, fmt.Sprintf("%x", value)) {
			t.Errorf("output %d shows the value: %s", i, o)
		}
	}
	if !strings.Contains(fmt.Sprint(cur), "REDACTED") || !strings.Contains(string(j), `"version":2`) {
		t.Errorf("redacted forms lost the metadata: %v %s", cur, j)
	}
}

func mustKeys(t *testing.T, e *env) []keyring.Key {
	t.Helper()
	ks, err := e.ring.Keys(ctx(t, core), keyring.Filter{})
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	return ks
}

func TestTickSecretsOverdue(t *testing.T) {
	var overdue []string
	e, _, _ := newSecretEnv(t, func(c *keyring.Config) {
		c.OnOverdue = func(_ context.Context, k keyring.Key) { overdue = append(overdue, k.Set) }
	})
	if _, err := e.ring.RotateSecret(ctx(t, alice), dbPassword, []byte("pw"), ""); err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	if err := e.ring.TickSecrets(ctx(t, keyring.Principal{})); err != nil || len(overdue) != 0 {
		t.Fatalf("TickSecrets before RotateBy: err %v, overdue %v; want none", err, overdue)
	}
	e.clock.Advance(dbPolicy.RotationPeriod)
	if err := e.ring.TickSecrets(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("TickSecrets: %v", err)
	}
	if want := keyring.SecretSetPrefix + dbPassword; len(overdue) != 1 || overdue[0] != want {
		t.Errorf("overdue: %v, want [%s]", overdue, want)
	}
}
