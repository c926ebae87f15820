package telemetry_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/internal/telemetry/telemetrytest"
)

// offPath is what an instrumented hot path runs: the tracer's gate and
// one measured backend call.
func offPath(tr telemetry.Tracer, calls *telemetry.Calls, h metric.Float64Histogram) {
	ctx := context.Background()
	_ = tr.On() || h.Enabled(ctx)
	cctx, c := calls.Begin(ctx, "local", "Sign")
	c.End(cctx, nil)
}

// TestGlobalProviders checks, in order (otel's globals cannot be unset):
// with no provider installed nothing is recorded and nothing allocated;
// once the host installs providers, instruments and tracers made before
// record.
func TestGlobalProviders(t *testing.T) {
	tr := telemetry.NewTracer(nil)
	m := telemetry.Meter(nil)
	calls, err := telemetry.NewCalls(tr, m, "tokenkms.test", "test")
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.Float64Histogram("tokenkms.test.h")
	if err != nil {
		t.Fatal(err)
	}
	if tr.On() {
		t.Fatal("tracer on before any provider is installed")
	}
	if allocs := testing.AllocsPerRun(1000, func() { offPath(tr, calls, h) }); allocs != 0 {
		t.Errorf("instrumented path with no provider: %v allocations, want 0", allocs)
	}

	// A no-op tracer provider installed first: still off. (Not so for
	// meters: otel's global meter forwards to the first provider only.)
	otel.SetTracerProvider(tracenoop.NewTracerProvider())
	if tr.On() {
		t.Error("tracer on under a no-op global provider")
	}

	rec := telemetrytest.New(t)
	otel.SetTracerProvider(rec.TP)
	otel.SetMeterProvider(rec.MP)
	if !tr.On() {
		t.Fatal("tracer off after the host installed a provider")
	}
	ctx, c := calls.Begin(context.Background(), "local", "Sign")
	c.End(ctx, errors.New("refused"))
	if n := len(rec.Spans("tokenkms.test.Sign")); n != 1 {
		t.Errorf("spans after install = %d, want 1", n)
	}
	if got, _ := telemetrytest.Value(rec.Collect(t), "tokenkms.test.errors"); got != 1 {
		t.Errorf("errors counted after install = %v, want 1", got)
	}
}

func TestCheckProviders(t *testing.T) {
	var nilTP *sdktrace.TracerProvider
	var nilMP *sdkmetric.MeterProvider
	tests := []struct {
		name    string
		tp      trace.TracerProvider
		mp      metric.MeterProvider
		wantErr bool
	}{
		{name: "nil interfaces: the globals"},
		{name: "no-op providers", tp: tracenoop.NewTracerProvider(), mp: metricnoop.NewMeterProvider()},
		{name: "nil *sdktrace.TracerProvider", tp: nilTP, wantErr: true},
		{name: "nil *sdkmetric.MeterProvider", mp: nilMP, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := telemetry.CheckProviders(tt.tp, tt.mp); (err != nil) != tt.wantErr {
				t.Errorf("CheckProviders = %v, want an error: %v", err, tt.wantErr)
			}
		})
	}
}

// TestLibraryImportsNoSDK: outside tests, the examples and telemetrytest,
// no package of the module imports the OpenTelemetry SDK or an exporter:
// the host chooses them.
func TestLibraryImportsNoSDK(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case "examples", filepath.Join("internal", "bench"), filepath.Join("internal", "tools"), filepath.Join("internal", "telemetry", "telemetrytest"):
				return filepath.SkipDir
			}
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(p, "go.opentelemetry.io/otel/exporters") {
				t.Errorf("%s imports %s: library code uses the OpenTelemetry API only", rel, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no Go file walked")
	}
}

// BenchmarkOffPath is the cost the instrumentation adds to Verify, Issue
// and each backend call while no provider is installed. Run it alone
// (-run '^$'): TestGlobalProviders installs one.
func BenchmarkOffPath(b *testing.B) {
	tr := telemetry.NewTracer(nil)
	m := telemetry.Meter(nil)
	calls, err := telemetry.NewCalls(tr, m, "tokenkms.bench", "bench")
	if err != nil {
		b.Fatal(err)
	}
	h, err := m.Float64Histogram("tokenkms.bench.h")
	if err != nil {
		b.Fatal(err)
	}
	if tr.On() {
		b.Skip("a global provider is installed; run with -run '^$'")
	}
	b.ReportAllocs()
	for b.Loop() {
		offPath(tr, calls, h)
	}
}
