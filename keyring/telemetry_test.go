package keyring_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/internal/telemetry/telemetrytest"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
)

// TestTelemetryOfARotation runs a rotation under recording providers and
// checks its spans (admin actions, backend and store calls, Issue and
// Verify), the key gauges, the log, and that no token or claim value
// reaches any of them.
func TestTelemetryOfARotation(t *testing.T) {
	rec := telemetrytest.New(t)
	var logs bytes.Buffer
	f, err := keyringtest.New(keyringtest.Options{
		TracerProvider: rec.TP, MeterProvider: rec.MP, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	const subject = "subject-never-in-telemetry"
	tok, err := f.Token(subject, "orders:read")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Verifier.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	first, err := f.ActiveKID()
	if err != nil {
		t.Fatal(err)
	}
	next, err := f.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Ring.Create(f.As(keyringtest.Core), f.Set); !errors.Is(err, keyring.ErrForbidden) {
		t.Fatalf("Create as core: %v, want ErrForbidden", err)
	}

	for _, name := range []string{
		"tokenkms.keyring.create", "tokenkms.keyring.approve", "tokenkms.keyring.activate", "tokenkms.keyring.rotate",
		"tokenkms.keyring.tick", "tokenkms.keyring.approve_schedule", "tokenkms.backend.Generate", "tokenkms.backend.Sign",
		"tokenkms.store.Put", "tokenkms.store.List", "tokenkms.issue", "tokenkms.verify",
	} {
		if len(rec.Spans(name)) == 0 {
			t.Errorf("no span %s; got %v", name, rec.SpanNames())
		}
	}
	rotate := rec.Spans("tokenkms.keyring.rotate")[0]
	if got := telemetrytest.Attr(rotate, telemetry.AttrSet); got != f.Set {
		t.Errorf("rotate span set = %q, want %q", got, f.Set)
	}
	var audited bool
	for _, e := range rotate.Events() {
		audited = audited || e.Name == "audit.key.rotated"
	}
	if !audited {
		t.Errorf("rotate span has no audit.key.rotated event: %v", rotate.Events())
	}
	var generateUnderCreate bool
	for _, g := range rec.Spans("tokenkms.backend.Generate") {
		for _, c := range rec.Spans("tokenkms.keyring.create") {
			generateUnderCreate = generateUnderCreate || g.Parent().SpanID() == c.SpanContext().SpanID()
		}
		if got := telemetrytest.Attr(g, telemetry.AttrBackend); got != keyring.DefaultBackend {
			t.Errorf("Generate span backend = %q, want %q", got, keyring.DefaultBackend)
		}
	}
	if !generateUnderCreate {
		t.Errorf("no Generate span is a child of a create span")
	}
	issue := rec.Spans("tokenkms.issue")[0]
	if got := telemetrytest.Attr(issue, telemetry.AttrKID); got != first {
		t.Errorf("issue span kid = %q, want %q", got, first)
	}
	denied := rec.Spans("tokenkms.keyring.create")
	if last := denied[len(denied)-1]; last.Status().Description == "" || !strings.Contains(logs.String(), "keyring: create failed") {
		t.Errorf("denied create: span status %q, log %q; want both to record the failure", last.Status().Description, logs.String())
	}

	rm := rec.Collect(t)
	set := telemetry.AttrSet.String(f.Set)
	checks := []struct {
		name   string
		attrs  []attribute.KeyValue
		wantOK func(float64) bool
		want   string
	}{
		{"tokenkms.keys.active", []attribute.KeyValue{set}, func(v float64) bool { return v == 1 }, "1"},
		{"tokenkms.keys.overdue", []attribute.KeyValue{set}, func(v float64) bool { return v == 0 }, "0"},
		{"tokenkms.key.age", []attribute.KeyValue{telemetry.AttrKID.String(next.KID)}, func(v float64) bool { return v > 0 }, "> 0"},
		{"tokenkms.key.rotate_by.remaining", []attribute.KeyValue{telemetry.AttrKID.String(next.KID), telemetry.AttrState.String("active")}, func(v float64) bool { return v > 0 }, "> 0"},
		{"tokenkms.key.age", []attribute.KeyValue{telemetry.AttrKID.String(first), telemetry.AttrState.String("retiring")}, func(v float64) bool { return v > 0 }, "> 0"},
		{"tokenkms.backend.duration", []attribute.KeyValue{telemetry.AttrOperation.String("Sign"), telemetry.AttrOutcome.String("ok")}, func(v float64) bool { return v >= 1 }, ">= 1 call"},
		{"tokenkms.store.duration", []attribute.KeyValue{telemetry.AttrOperation.String("UpdateBatch")}, func(v float64) bool { return v >= 1 }, ">= 1 call"},
		{"tokenkms.audit.events", []attribute.KeyValue{attribute.String("tokenkms.audit.type", "access.denied"), telemetry.AttrOutcome.String("denied")}, func(v float64) bool { return v == 1 }, "1"},
		{"tokenkms.issue.duration", []attribute.KeyValue{set, telemetry.AttrOutcome.String("ok")}, func(v float64) bool { return v == 1 }, "1 call"},
		{"tokenkms.verify.duration", []attribute.KeyValue{telemetry.AttrOutcome.String("ok")}, func(v float64) bool { return v == 1 }, "1 call"},
	}
	for _, c := range checks {
		got, ok := telemetrytest.Value(rm, c.name, c.attrs...)
		if !ok || !c.wantOK(got) {
			t.Errorf("%s%v = %v (found %v), want %s", c.name, c.attrs, got, ok, c.want)
		}
	}

	// Past the Active key's RotateBy, with no tick: the gauges say so.
	f.Clock.Advance(next.RotateBy.Sub(f.Clock.Now()) + keyring.Day)
	report, err := f.Ring.Report(f.As(keyringtest.Core))
	if err != nil {
		t.Fatal(err)
	}
	wantOverdue := 0 // as the compliance report counts them (the standby key too)
	for _, kr := range report {
		if kr.Set == f.Set && kr.DaysOverdue > 0 {
			wantOverdue++
		}
	}
	rm = rec.Collect(t)
	if got, _ := telemetrytest.Value(rm, "tokenkms.keys.overdue", set); wantOverdue == 0 || got != float64(wantOverdue) {
		t.Errorf("overdue keys past RotateBy = %v, want %d as the report says (at least 1)", got, wantOverdue)
	}
	if got, _ := telemetrytest.Value(rm, "tokenkms.key.rotate_by.remaining", telemetry.AttrKID.String(next.KID)); got >= 0 {
		t.Errorf("time to RotateBy of an overdue key = %v, want < 0", got)
	}
	logs.Reset()
	if err := f.Ring.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"level":"WARN","msg":"keyring: key.overdue"`, `"msg":"keyring: scheduled key.rotated"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("tick past RotateBy: log lacks %s:\n%s", want, logs.String())
		}
	}

	all := rec.Text(t) + logs.String()
	for _, secret := range []string{tok, subject, strings.Split(tok, ".")[2]} {
		if strings.Contains(all, secret) {
			t.Errorf("telemetry or log carries a token or claim value %.20q", secret)
		}
	}
}

// failingOpen is a provider whose keys cannot be reopened.
type failingOpen struct{ signer.Provider }

var errOpen = errors.New("backend: no such key")

func (failingOpen) Open(context.Context, string, string) (signer.Signer, error) { return nil, errOpen }

func TestTelemetryCountsBackendErrors(t *testing.T) {
	rec := telemetrytest.New(t)
	local, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ring, err := keyring.New(ctx, keyring.Config{
		Providers:      map[string]signer.Provider{"hsm": failingOpen{local}},
		Sets:           []keyring.SetPolicy{{Name: "s", Owner: "o", Backend: "hsm"}},
		TracerProvider: rec.TP, MeterProvider: rec.MP,
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := ring.Create(keyring.WithPrincipal(ctx, keyringtest.Issuer), "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Approve(keyring.WithPrincipal(ctx, keyringtest.Approver), k.KID); err != nil {
		t.Fatal(err)
	}
	if err := ring.Activate(keyring.WithPrincipal(ctx, keyringtest.Deployer), k.KID); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Signer(ctx, "s"); !errors.Is(err, errOpen) {
		t.Fatalf("Signer: %v, want the backend's error", err)
	}
	rm := rec.Collect(t)
	op := []attribute.KeyValue{telemetry.AttrBackend.String("hsm"), telemetry.AttrOperation.String("Open")}
	if got, _ := telemetrytest.Value(rm, "tokenkms.backend.errors", op...); got != 1 {
		t.Errorf("backend errors for Open = %v, want 1", got)
	}
	if got, _ := telemetrytest.Value(rm, "tokenkms.backend.duration", append(op, telemetry.AttrOutcome.String("error"))...); got != 1 {
		t.Errorf("failed Open calls measured = %v, want 1", got)
	}
	spans := rec.Spans("tokenkms.backend.Open")
	if len(spans) != 1 || spans[0].Status().Description != errOpen.Error() {
		t.Errorf("Open spans = %d, want one with status %q", len(spans), errOpen)
	}
}

func TestTelemetryRefusesNilProviders(t *testing.T) {
	var tp *sdktrace.TracerProvider
	var mp *sdkmetric.MeterProvider
	sets := []keyring.SetPolicy{{Name: "s", Owner: "o"}}
	tests := []struct {
		name string
		cfg  keyring.Config
	}{
		{name: "nil *sdktrace.TracerProvider", cfg: keyring.Config{Sets: sets, TracerProvider: tp}},
		{name: "nil *sdkmetric.MeterProvider", cfg: keyring.Config{Sets: sets, MeterProvider: mp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := keyring.New(context.Background(), tt.cfg); !errors.Is(err, keyring.ErrPolicy) {
				t.Errorf("keyring.New: %v, want ErrPolicy", err)
			}
		})
	}
	ring, err := keyring.New(context.Background(), keyring.Config{Sets: sets})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.NewIssuer(ring, signer.IssuerConfig{Set: "s", Issuer: "i", DefaultLifetime: 1, MaxLifetime: 1, TracerProvider: tp}); !errors.Is(err, signer.ErrConfig) {
		t.Errorf("NewIssuer with a nil *sdktrace.TracerProvider: %v, want ErrConfig", err)
	}
}

// TestTelemetryReleasesKeyring: the global meter does not keep a
// discarded keyring alive, and its gauges stop once it is collected.
func TestTelemetryReleasesKeyring(t *testing.T) {
	rec := telemetrytest.New(t)
	func() {
		if _, err := keyringtest.New(keyringtest.Options{Set: "gone", MeterProvider: rec.MP}); err != nil {
			t.Fatal(err)
		}
	}()
	runtime.GC()
	runtime.GC()
	if v, ok := telemetrytest.Value(rec.Collect(t), "tokenkms.keys.active", telemetry.AttrSet.String("gone")); ok {
		t.Errorf("a collected keyring still reports %v active keys", v)
	}
}

func TestIssueSpanHidesRefusedClaims(t *testing.T) {
	rec := telemetrytest.New(t)
	f, err := keyringtest.New(keyringtest.Options{TracerProvider: rec.TP})
	if err != nil {
		t.Fatal(err)
	}
	const iss = "https://issuer-never-in-telemetry"
	_, err = f.Issuer.Issue(context.Background(), tokenkms.Claims{Issuer: iss, Subject: "s", ClientID: "c"})
	if !errors.Is(err, signer.ErrClaims) {
		t.Fatalf("Issue with a foreign iss: %v, want ErrClaims", err)
	}
	spans := rec.Spans("tokenkms.issue")
	if len(spans) != 1 || spans[0].Status().Description != signer.ErrClaims.Error() {
		t.Fatalf("issue spans = %d, want one failed with %q", len(spans), signer.ErrClaims)
	}
	if strings.Contains(rec.Text(t), iss) {
		t.Errorf("a refused claim value reached telemetry")
	}
}

// lockedBuffer is a log destination written by Run's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunLogsLeaseFailure: a replica that cannot take the tick lease says
// so in the log, besides OnTickError.
func TestRunLogsLeaseFailure(t *testing.T) {
	errLease := errors.New("lease store down")
	var logs lockedBuffer
	failures := make(chan error, 1)
	e := newEnv(t, func(c *keyring.Config) {
		c.TickInterval = time.Millisecond
		c.TickLease = func(context.Context) (func(), bool, error) { return func() {}, false, errLease }
		c.OnTickError = func(err error) {
			select {
			case failures <- err:
			default:
			}
		}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ring.Run(c) }()
	select {
	case err := <-failures:
		if !errors.Is(err, errLease) {
			t.Errorf("OnTickError got %v, want the lease's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tick failure within 10 s")
	}
	cancel()
	<-done
	if got := logs.String(); !strings.Contains(got, "cannot take the tick lease") || !strings.Contains(got, errLease.Error()) {
		t.Errorf("log = %q, want the lease failure", got)
	}
}

// TestImportTraced: an import under recording providers works (the
// provider keeps its optional interfaces) and is traced with its backend
// call.
func TestImportTraced(t *testing.T) {
	rec := telemetrytest.New(t)
	f, err := keyringtest.New(keyringtest.Options{TracerProvider: rec.TP, MeterProvider: rec.MP})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.Ring.Import(f.As(keyringtest.Issuer), f.Set, keyring.KeyImport{KID: "legacy-1", Private: priv})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	imports := rec.Spans("tokenkms.keyring.import")
	if len(imports) != 1 || telemetrytest.Attr(imports[0], telemetry.AttrKID) != k.KID {
		t.Fatalf("import spans = %d, want one for %s", len(imports), k.KID)
	}
	calls := rec.Spans("tokenkms.backend.Import")
	if len(calls) != 1 || calls[0].Parent().SpanID() != imports[0].SpanContext().SpanID() {
		t.Errorf("backend Import spans = %d, want one under the import span", len(calls))
	}
}
