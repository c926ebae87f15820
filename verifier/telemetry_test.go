package verifier_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/internal/telemetry/telemetrytest"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

func TestVerifyTelemetry(t *testing.T) {
	rec := telemetrytest.New(t)
	f, err := keyringtest.New(keyringtest.Options{TracerProvider: rec.TP, MeterProvider: rec.MP})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const subject = "subject-never-in-telemetry"
	good, err := f.Token(subject)
	if err != nil {
		t.Fatal(err)
	}
	const foreignIss = "https://issuer-never-in-telemetry"
	foreign := craftForeignIssuer(t, f, foreignIss)
	tampered := good[:len(good)-4] + "AAAA"
	if tampered == good {
		t.Fatal("tampering changed nothing")
	}
	calls := []struct {
		name  string
		token string
		want  error
	}{
		{name: "good", token: good},
		{name: "bad signature", token: tampered, want: verifier.ErrSignature},
		{name: "malformed", token: "x", want: verifier.ErrMalformed},
		{name: "wrong issuer", token: foreign, want: verifier.ErrIssuer},
	}
	for _, c := range calls {
		if _, err := f.Verifier.Verify(ctx, c.token); !errors.Is(err, c.want) && (c.want != nil || err != nil) {
			t.Fatalf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
	f.Clock.Advance(time.Hour)
	if _, err := f.Verifier.Verify(ctx, good); !errors.Is(err, verifier.ErrExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrExpired", err)
	}

	spans := rec.Spans("tokenkms.verify")
	wantReasons := []string{"", "signature", "malformed", "issuer", "expired"}
	if len(spans) != len(wantReasons) {
		t.Fatalf("verify spans = %d, want %d", len(spans), len(wantReasons))
	}
	for i, s := range spans {
		if got := telemetrytest.Attr(s, telemetry.AttrReason); got != wantReasons[i] {
			t.Errorf("span %d reason = %q, want %q", i, got, wantReasons[i])
		}
		wantOutcome := "rejected"
		if wantReasons[i] == "" {
			wantOutcome = "ok"
		}
		if got := telemetrytest.Attr(s, telemetry.AttrOutcome); got != wantOutcome {
			t.Errorf("span %d outcome = %q, want %q", i, got, wantOutcome)
		}
		if wantReasons[i] != "" && s.Status().Description != wantReasons[i] {
			t.Errorf("span %d status = %q, want the reason label %q", i, s.Status().Description, wantReasons[i])
		}
	}
	rm := rec.Collect(t)
	for _, r := range []string{"signature", "malformed", "issuer", "expired"} {
		if got, _ := telemetrytest.Value(rm, "tokenkms.verify.rejections", telemetry.AttrReason.String(r)); got != 1 {
			t.Errorf("rejections{reason=%s} = %v, want 1", r, got)
		}
	}
	if got, _ := telemetrytest.Value(rm, "tokenkms.verify.duration", telemetry.AttrOutcome.String("rejected")); got != 4 {
		t.Errorf("rejected Verify calls measured = %v, want 4", got)
	}
	text := rec.Text(t)
	for _, leak := range []string{good, subject, foreignIss, foreign} {
		if strings.Contains(text, leak) {
			t.Errorf("telemetry carries a token or claim value %.24q", leak)
		}
	}
}

// craftForeignIssuer mints a token with the fixture's Active key for
// another issuer.
func craftForeignIssuer(t *testing.T, f *keyringtest.Fixture, iss string) string {
	t.Helper()
	is, err := signer.NewIssuer(f.Ring, signer.IssuerConfig{
		Set: f.Set, Issuer: iss, Audience: f.Audience, DefaultLifetime: time.Minute, MaxLifetime: time.Minute, Now: f.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := is.Issue(context.Background(), tokenkms.Claims{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyCacheAndRevocationMetrics(t *testing.T) {
	rec := telemetrytest.New(t)
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := verifier.New(f.Ring, verifier.Policy{Issuer: "https://core.test", Audience: f.Audience},
		verifier.WithNow(f.Clock.Now), verifier.WithCache(64), verifier.WithMeterProvider(rec.MP))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.Token("alice")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	for _, jti := range []string{"j1", "j2"} {
		if err := f.Revocations.RevokeJTI(ctx, jti, f.Clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	rm := rec.Collect(t)
	checks := []struct {
		name string
		want float64
	}{
		{"tokenkms.verify.cache.hits", 2},
		{"tokenkms.verify.cache.misses", 1},
		{"tokenkms.verify.cache.size", 1},
		{"tokenkms.revocation.jtis", 2},
		{"tokenkms.revocation.kid_policies", 0},
	}
	for _, c := range checks {
		if got, ok := telemetrytest.Value(rm, c.name); !ok || got != c.want {
			t.Errorf("%s = %v (found %v), want %v", c.name, got, ok, c.want)
		}
	}
	if _, ok := telemetrytest.Value(rm, "tokenkms.revocation.staleness"); ok {
		t.Errorf("staleness reported for an in-memory list")
	}
}

// feedList is a RevocationList fed from elsewhere, last complete at
// updated.
type feedList struct {
	verifier.RevocationList
	updated time.Time
}

func (l feedList) RevocationUpdatedAt() time.Time { return l.updated }

func TestRevocationStalenessMetric(t *testing.T) {
	rec := telemetrytest.New(t)
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list := feedList{RevocationList: f.Revocations, updated: f.Clock.Now().Add(-90 * time.Second)}
	if _, err := verifier.New(f.Ring, verifier.Policy{Issuer: "https://core.test", Audience: f.Audience},
		verifier.WithNow(f.Clock.Now), verifier.WithRevocationList(list), verifier.WithMeterProvider(rec.MP)); err != nil {
		t.Fatal(err)
	}
	if got, ok := telemetrytest.Value(rec.Collect(t), "tokenkms.revocation.staleness"); !ok || got != 90 {
		t.Errorf("staleness = %v (found %v), want 90 s", got, ok)
	}
}

func TestNewRefusesNilProviders(t *testing.T) {
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tp *sdktrace.TracerProvider
	var mp *sdkmetric.MeterProvider
	tests := []struct {
		name string
		opt  verifier.Option
	}{
		{name: "WithTracerProvider(nil)", opt: verifier.WithTracerProvider(nil)},
		{name: "WithMeterProvider(nil)", opt: verifier.WithMeterProvider(nil)},
		{name: "nil *sdktrace.TracerProvider", opt: verifier.WithTracerProvider(tp)},
		{name: "nil *sdkmetric.MeterProvider", opt: verifier.WithMeterProvider(mp)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifier.New(f.Ring, verifier.Policy{Issuer: "https://core.test", Audience: f.Audience}, tt.opt)
			if !errors.Is(err, verifier.ErrPolicy) {
				t.Errorf("New = %v, want ErrPolicy", err)
			}
		})
	}
}
