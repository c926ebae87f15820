// Package telemetrytest records what the library sends to OpenTelemetry,
// for tests: it is the only package besides the examples that imports the
// OpenTelemetry SDK, and only test binaries import it.
package telemetrytest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Recorder holds SDK providers that record every span and metric.
type Recorder struct {
	TP     *sdktrace.TracerProvider
	MP     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

// New returns a Recorder; its providers are shut down with the test.
func New(t testing.TB) *Recorder {
	r := &Recorder{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.TP = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.MP = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		r.TP.Shutdown(context.Background())
		r.MP.Shutdown(context.Background())
	})
	return r
}

// Spans returns the ended spans named name.
func (r *Recorder) Spans(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// SpanNames returns the names of the ended spans, in order.
func (r *Recorder) SpanNames() []string {
	var out []string
	for _, s := range r.spans.Ended() {
		out = append(out, s.Name())
	}
	return out
}

// Attr returns the value of attribute key on span s, "" if absent.
func Attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// Collect reads the metrics now.
func (r *Recorder) Collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// Value returns, from rm, the sum over the metric name's data points whose
// attributes include every attr of their values (sums, gauges) or counts
// (histograms); ok is false when no point matches.
func Value(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) (v float64, ok bool) {
	match := func(set attribute.Set) bool {
		for _, a := range attrs {
			if got, has := set.Value(a.Key); !has || got != a.Value {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						v, ok = v+float64(p.Value), true
					}
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						v, ok = v+p.Value, true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						v, ok = v+float64(p.Value), true
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						v, ok = v+p.Value, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						v, ok = v+float64(p.Count), true
					}
				}
			}
		}
	}
	return v, ok
}

// Text is everything recorded as text (span names, statuses, attributes,
// events; metric names and attributes), for tests that check what never
// appears in telemetry.
func (r *Recorder) Text(t testing.TB) string {
	var b strings.Builder
	for _, s := range r.spans.Ended() {
		fmt.Fprintf(&b, "%s %s %v\n", s.Name(), s.Status().Description, s.Attributes())
		for _, e := range s.Events() {
			fmt.Fprintf(&b, "  %s %v\n", e.Name, e.Attributes)
		}
	}
	for _, sm := range r.Collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&b, "%s %+v\n", m.Name, m.Data)
		}
	}
	return b.String()
}
