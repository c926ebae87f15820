// Package telemetry is where tokenkms meets OpenTelemetry, through its API
// only: the host installs an SDK (or none) and hands the library its
// providers, or lets it use the global ones.
//
// With no provider installed, instrumentation costs a few loads and
// compares per call and allocates nothing: Tracer.On is false while the
// global provider is still otel's default delegate or a no-op, and every
// synchronous instrument answers Enabled false. Callers test those before
// reading the clock or building attributes.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"time"
	"weak"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope of every tracer and meter.
const Scope = "github.com/tokenkms/tokenkms"

// defaultTP is otel's global provider before a host installs one: a
// delegate that makes only non-recording spans until then.
var defaultTP = otel.GetTracerProvider()

// CheckProviders refuses a provider that is a nil pointer behind a non-nil
// interface (an SDK provider variable never assigned): calls on it would
// panic. A nil interface means "the global provider" and passes.
func CheckProviders(tp trace.TracerProvider, mp metric.MeterProvider) error {
	if isNilPointer(tp) {
		return fmt.Errorf("TracerProvider is a nil %T (leave it nil for otel's global provider)", tp)
	}
	if isNilPointer(mp) {
		return fmt.Errorf("MeterProvider is a nil %T (leave it nil for otel's global provider)", mp)
	}
	return nil
}

func isNilPointer(v any) bool {
	if v == nil {
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Interface, reflect.Slice, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// Meter returns the library's meter of mp, or of the global provider when
// mp is nil (its instruments start recording when a host installs one).
func Meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(Scope)
}

// Tracer starts the library's spans when something would record them.
type Tracer struct {
	t      trace.Tracer // nil when global
	global bool         // follows otel's global provider
	off    bool         // a no-op provider was given
}

// NewTracer returns the tracer of tp, or of the global provider when tp is
// nil.
func NewTracer(tp trace.TracerProvider) Tracer {
	if tp == nil {
		return Tracer{global: true}
	}
	_, off := tp.(tracenoop.TracerProvider)
	return Tracer{t: tp.Tracer(Scope), off: off}
}

// On reports whether spans may be recorded; when false, Start must not be
// called (it would allocate for nothing).
func (t Tracer) On() bool {
	if t.global {
		tp := otel.GetTracerProvider()
		if tp == defaultTP {
			return false
		}
		_, off := tp.(tracenoop.TracerProvider)
		return !off
	}
	return !t.off && t.t != nil
}

// Start starts a span named name. Call it only when On. A tracer that
// follows the global provider asks it for the library's tracer each time:
// otel's default delegate forwards only to the first provider installed.
func (t Tracer) Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	tr := t.t
	if t.global {
		tr = otel.GetTracerProvider().Tracer(Scope)
	}
	return tr.Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span (nil: nothing to do). A non-nil err marks it failed with
// description desc, which must not carry a secret, a token or a claim
// value.
func End(span trace.Span, err error, desc string) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, desc)
	}
	span.End()
}

// Attribute keys used across the library.
const (
	AttrOutcome   = attribute.Key("tokenkms.outcome")
	AttrReason    = attribute.Key("tokenkms.reason")
	AttrSet       = attribute.Key("tokenkms.key.set")
	AttrKID       = attribute.Key("tokenkms.key.kid")
	AttrState     = attribute.Key("tokenkms.key.state")
	AttrAlgorithm = attribute.Key("tokenkms.key.algorithm")
	AttrBackend   = attribute.Key("tokenkms.backend")
	AttrOperation = attribute.Key("tokenkms.operation")
	AttrAction    = attribute.Key("tokenkms.action")
)

// Seconds returns the time since start in seconds, for a duration
// histogram.
func Seconds(start time.Time) float64 { return time.Since(start).Seconds() }

// Observe registers f as the callback of the observable instruments,
// holding owner weakly: the registration is dropped once owner is garbage
// (so that a discarded Keyring or Verifier is not kept alive by the global
// meter). f must not capture owner; it receives it.
func Observe[T any](m metric.Meter, owner *T, f func(context.Context, *T, metric.Observer) error, insts ...metric.Observable) error {
	wp := weak.Make(owner)
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		p := wp.Value()
		if p == nil {
			return nil
		}
		return f(ctx, p, o)
	}, insts...)
	if err != nil {
		return err
	}
	runtime.AddCleanup(owner, func(r metric.Registration) { r.Unregister() }, reg)
	return nil
}

// Logger returns l, or a logger that discards everything when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Calls measures the calls to one kind of external service (a KMS or HSM,
// a key store): a span per call, a duration histogram and an error
// counter, by backend and operation.
type Calls struct {
	tracer  Tracer
	prefix  string
	latency metric.Float64Histogram
	errors  metric.Int64Counter
}

// NewCalls returns the instruments prefix+".duration" and prefix+".errors";
// spans are named prefix+"."+operation.
func NewCalls(tr Tracer, m metric.Meter, prefix, what string) (*Calls, error) {
	lat, err := m.Float64Histogram(prefix+".duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of "+what+" calls."))
	if err != nil {
		return nil, err
	}
	errs, err := m.Int64Counter(prefix+".errors", metric.WithUnit("{call}"),
		metric.WithDescription("Failed "+what+" calls."))
	if err != nil {
		return nil, err
	}
	return &Calls{tracer: tr, prefix: prefix, latency: lat, errors: errs}, nil
}

// Call is one measured call, begun by Begin and ended by End.
type Call struct {
	c       *Calls
	span    trace.Span
	start   time.Time
	backend string
	op      string
}

// Begin starts measuring a call when anything records it; otherwise it
// returns ctx and a Call whose End does nothing.
func (c *Calls) Begin(ctx context.Context, backend, op string) (context.Context, Call) {
	if c == nil {
		return ctx, Call{}
	}
	tracing := c.tracer.On()
	if !tracing && !c.latency.Enabled(ctx) && !c.errors.Enabled(ctx) {
		return ctx, Call{}
	}
	call := Call{c: c, start: time.Now(), backend: backend, op: op}
	if tracing {
		ctx, call.span = c.tracer.Start(ctx, c.prefix+"."+op, AttrBackend.String(backend), AttrOperation.String(op))
	}
	return ctx, call
}

// End records the call's outcome. The span's status carries err's text:
// errors of backends and stores never hold key material.
func (call Call) End(ctx context.Context, err error) {
	if call.c == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	attrs := metric.WithAttributes(AttrBackend.String(call.backend), AttrOperation.String(call.op), AttrOutcome.String(outcome))
	call.c.latency.Record(ctx, Seconds(call.start), attrs)
	if err != nil {
		call.c.errors.Add(ctx, 1, metric.WithAttributes(AttrBackend.String(call.backend), AttrOperation.String(call.op)))
	}
	if call.span != nil {
		if err != nil {
			call.span.SetStatus(codes.Error, err.Error())
		}
		call.span.End()
	}
}
