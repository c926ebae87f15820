package verifier

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/internal/telemetry"
)

// WithTracerProvider traces every Verify with tp (a span
// "tokenkms.verify": its outcome, and for a rejection the sentinel's
// label, never the token or a claim value). Without it, otel's global
// provider is used, which records nothing until the host installs one.
// A nil tp is refused by New.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp, o.tpSet = tp, true }
}

// WithMeterProvider records the Verifier's metrics with mp (otel's global
// provider without it). A nil mp is refused by New. The metrics:
//   - tokenkms.verify.duration (s): every Verify, by tokenkms.outcome
//     (ok, rejected) and tokenkms.reason;
//   - tokenkms.verify.rejections: by tokenkms.reason, the sentinel's label
//     (expired, signature, revoked, key_source, ...);
//   - tokenkms.verify.cache.hits, .misses, .size (with WithCache);
//   - tokenkms.revocation.jtis and .kid_policies, when the RevocationList
//     (or the list a RevocationSource such as the keyring answers from) has
//     Stats; tokenkms.revocation.staleness (s) when it is a
//     RevocationFreshness.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.mp, o.mpSet = mp, true }
}

// RevocationSource is implemented by a RevocationList that answers from
// another one (the keyring, from the list it was configured with): the
// Verifier's metrics describe that list.
type RevocationSource interface {
	RevocationList() RevocationList
}

// RevocationSizer is a RevocationList that knows its size
// (MemoryRevocationList, pgstore's RevocationCache).
type RevocationSizer interface {
	Stats() RevocationStats
}

// RevocationFreshness is a RevocationList fed from elsewhere (a database,
// a revocation feed): RevocationUpdatedAt is the time at which its content
// was last known complete, zero before the first load. The Verifier
// exports now minus that time as tokenkms.revocation.staleness.
type RevocationFreshness interface {
	RevocationUpdatedAt() time.Time
}

// verifyTelemetry holds the Verifier's instruments.
type verifyTelemetry struct {
	tracer   telemetry.Tracer
	latency  metric.Float64Histogram
	rejected metric.Int64Counter
}

// on reports whether anything records a Verify.
func (t *verifyTelemetry) on(ctx context.Context) bool {
	return t.tracer.On() || t.latency.Enabled(ctx) || t.rejected.Enabled(ctx)
}

func newVerifyTelemetry(v *Verifier, o *options) (*verifyTelemetry, error) {
	if (o.tpSet && o.tp == nil) || (o.mpSet && o.mp == nil) {
		return nil, fmt.Errorf("%w: nil TracerProvider or MeterProvider option (omit the option for otel's global provider)", ErrPolicy)
	}
	if err := telemetry.CheckProviders(o.tp, o.mp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	m := telemetry.Meter(o.mp)
	t := &verifyTelemetry{tracer: telemetry.NewTracer(o.tp)}
	var err error
	if t.latency, err = m.Float64Histogram("tokenkms.verify.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of Verify calls.")); err != nil {
		return nil, err
	}
	if t.rejected, err = m.Int64Counter("tokenkms.verify.rejections", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens refused by Verify, by reason.")); err != nil {
		return nil, err
	}
	if err := observeCache(m, v); err != nil {
		return nil, err
	}
	if err := observeRevocations(m, v); err != nil {
		return nil, err
	}
	return t, nil
}

// observeCache exports the token cache's counters, read at collection time.
func observeCache(m metric.Meter, v *Verifier) error {
	if v.cache == nil {
		return nil
	}
	hits, err := m.Int64ObservableCounter("tokenkms.verify.cache.hits", metric.WithUnit("{call}"),
		metric.WithDescription("Verify calls answered from the verified-token cache."))
	if err != nil {
		return err
	}
	misses, err := m.Int64ObservableCounter("tokenkms.verify.cache.misses", metric.WithUnit("{call}"),
		metric.WithDescription("Verify calls that found no entry in the verified-token cache."))
	if err != nil {
		return err
	}
	size, err := m.Int64ObservableGauge("tokenkms.verify.cache.size", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens held by the verified-token cache."))
	if err != nil {
		return err
	}
	return telemetry.Observe(m, v.cache, func(_ context.Context, c *tokenCache, o metric.Observer) error {
		st := c.stats()
		o.ObserveInt64(hits, int64(st.Hits))
		o.ObserveInt64(misses, int64(st.Misses))
		o.ObserveInt64(size, int64(st.Len))
		return nil
	}, hits, misses, size)
}

// revocationHolder carries the list the callback reads, so that the
// registration is tied to the Verifier's lifetime.
type revocationHolder struct {
	list RevocationList
	now  func() time.Time
}

// observeRevocations exports the size and staleness of the list the
// Verifier checks, when it knows them.
func observeRevocations(m metric.Meter, v *Verifier) error {
	l := v.revocation
	if s, ok := l.(RevocationSource); ok {
		l = s.RevocationList()
	}
	_, sized := l.(RevocationSizer)
	_, timed := l.(RevocationFreshness)
	if !sized && !timed {
		return nil
	}
	jtis, err := m.Int64ObservableGauge("tokenkms.revocation.jtis", metric.WithUnit("{jti}"),
		metric.WithDescription("Revoked jtis held by the revocation list."))
	if err != nil {
		return err
	}
	kids, err := m.Int64ObservableGauge("tokenkms.revocation.kid_policies", metric.WithUnit("{kid}"),
		metric.WithDescription("Kid revocation policies held by the revocation list."))
	if err != nil {
		return err
	}
	stale, err := m.Float64ObservableGauge("tokenkms.revocation.staleness", metric.WithUnit("s"),
		metric.WithDescription("Time since the revocation list was last known complete."))
	if err != nil {
		return err
	}
	v.revHolder = &revocationHolder{list: l, now: v.now}
	return telemetry.Observe(m, v.revHolder, func(_ context.Context, h *revocationHolder, o metric.Observer) error {
		if sized {
			st := h.list.(RevocationSizer).Stats()
			o.ObserveInt64(jtis, int64(st.JTIs))
			o.ObserveInt64(kids, int64(st.KIDPolicies))
		}
		if timed {
			if at := h.list.(RevocationFreshness).RevocationUpdatedAt(); !at.IsZero() {
				o.ObserveFloat64(stale, h.now().Sub(at).Seconds())
			}
		}
		return nil
	}, jtis, kids, stale)
}

// verifyObserved is Verify with a span and metrics.
func (v *Verifier) verifyObserved(ctx context.Context, token string) (*tokenkms.Claims, error) {
	t := v.tel
	start := time.Now()
	var span trace.Span
	if t.tracer.On() {
		ctx, span = t.tracer.Start(ctx, "tokenkms.verify")
	}
	c, err := v.verify(ctx, token)
	attrs := []attribute.KeyValue{telemetry.AttrOutcome.String("ok")}
	label := ""
	if err != nil {
		label = reason(err)
		attrs = []attribute.KeyValue{telemetry.AttrOutcome.String("rejected"), telemetry.AttrReason.String(label)}
		t.rejected.Add(ctx, 1, metric.WithAttributes(attrs[1]))
	}
	t.latency.Record(ctx, telemetry.Seconds(start), metric.WithAttributes(attrs...))
	if span != nil {
		span.SetAttributes(attrs...)
		telemetry.End(span, err, label)
	}
	return c, err
}
