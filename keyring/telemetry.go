package keyring

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// keyringTelemetry holds the Keyring's tracer, instruments and logger.
type keyringTelemetry struct {
	tracer  telemetry.Tracer
	log     *slog.Logger
	backend *telemetry.Calls // KMS, HSM and local key backends
	store   *telemetry.Calls // the KeyStore
	events  metric.Int64Counter
}

func newKeyringTelemetry(cfg *Config) (*keyringTelemetry, error) {
	if err := telemetry.CheckProviders(cfg.TracerProvider, cfg.MeterProvider); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	t := &keyringTelemetry{tracer: telemetry.NewTracer(cfg.TracerProvider), log: telemetry.Logger(cfg.Logger)}
	m := telemetry.Meter(cfg.MeterProvider)
	var err error
	if t.backend, err = telemetry.NewCalls(t.tracer, m, "tokenkms.backend", "key backend (KMS, HSM, local)"); err != nil {
		return nil, err
	}
	if t.store, err = telemetry.NewCalls(t.tracer, m, "tokenkms.store", "key store"); err != nil {
		return nil, err
	}
	if t.events, err = m.Int64Counter("tokenkms.audit.events", metric.WithUnit("{event}"),
		metric.WithDescription("Audit events the keyring emitted, by type and outcome.")); err != nil {
		return nil, err
	}
	return t, nil
}

// trace starts the span of an administrative action, named
// "tokenkms.keyring."+action, and returns the function that ends it with
// the action's error; a failure is also logged. It is used as
//
//	defer r.trace(&ctx, "create", set, "")(&err)
func (r *Keyring) trace(ctx *context.Context, action, set, kid string) func(*error) {
	var span trace.Span
	if r.tel.tracer.On() {
		*ctx, span = r.tel.tracer.Start(*ctx, "tokenkms.keyring."+action,
			telemetry.AttrAction.String(action), telemetry.AttrSet.String(set), telemetry.AttrKID.String(kid))
	}
	return func(errp *error) {
		err := *errp
		if err != nil {
			r.tel.log.Warn("keyring: "+action+" failed", "set", set, "kid", kid, "err", err)
			telemetry.End(span, err, err.Error())
			return
		}
		telemetry.End(span, nil, "")
	}
}

// observeEvent records an audit event the keyring emitted (or failed to):
// a span event on the action's span, a count, and a log line for what an
// operator acts on: an event the sink refused (the action did not
// happen), a failed step (an incident or secret hook, a backend, an
// overdue key), and the transitions the scheduler made.
func (r *Keyring) observeEvent(ctx context.Context, e audit.Event, err error) {
	outcome := string(e.Outcome)
	attrs := []any{"type", string(e.Type), "set", e.Set, "kid", e.KID}
	switch {
	case err != nil:
		outcome = "unaudited"
		r.tel.log.Error("keyring: audit sink refused an event; the action does not happen", append(attrs, "err", err)...)
	case e.Outcome == audit.Failure:
		r.tel.log.Warn("keyring: "+string(e.Type), append(attrs, "outcome", outcome, "reason", e.Reason)...)
	case e.Outcome == audit.Success && e.Actor == SystemPrincipal.ID:
		r.tel.log.Info("keyring: scheduled "+string(e.Type), attrs...)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("audit."+string(e.Type), trace.WithAttributes(
			telemetry.AttrOutcome.String(outcome), telemetry.AttrSet.String(e.Set), telemetry.AttrKID.String(e.KID)))
	}
	if r.tel.events.Enabled(ctx) {
		r.tel.events.Add(ctx, 1, metric.WithAttributes(attribute.String("tokenkms.audit.type", string(e.Type)),
			telemetry.AttrOutcome.String(outcome)))
	}
}

// RevocationList returns the list the Keyring revokes into and answers
// from (verifier.RevocationSource: a Verifier built on the Keyring
// exports that list's size and staleness).
func (r *Keyring) RevocationList() verifier.RevocationList { return r.revocations }

// observeKeys exports the state of the keys, read from the snapshot at
// collection time:
//   - tokenkms.key.age (s) and tokenkms.key.rotate_by.remaining (s, negative
//     once overdue) for every Pending, Active and Retiring key, by kid, set
//     and state;
//   - tokenkms.keys.active and tokenkms.keys.overdue (Active or Pending keys
//     past their RotateBy) per set.
func observeKeys(m metric.Meter, r *Keyring) error {
	age, err := m.Float64ObservableGauge("tokenkms.key.age", metric.WithUnit("s"),
		metric.WithDescription("Time since the key was created."))
	if err != nil {
		return err
	}
	left, err := m.Float64ObservableGauge("tokenkms.key.rotate_by.remaining", metric.WithUnit("s"),
		metric.WithDescription("Time until the key's RotateBy; negative once overdue."))
	if err != nil {
		return err
	}
	active, err := m.Int64ObservableGauge("tokenkms.keys.active", metric.WithUnit("{key}"),
		metric.WithDescription("Active keys per set (1 when healthy)."))
	if err != nil {
		return err
	}
	overdue, err := m.Int64ObservableGauge("tokenkms.keys.overdue", metric.WithUnit("{key}"),
		metric.WithDescription("Active or Pending keys past their RotateBy, per set."))
	if err != nil {
		return err
	}
	return telemetry.Observe(m, r, func(_ context.Context, r *Keyring, o metric.Observer) error {
		now := r.now()
		nActive := make(map[string]int64)
		nOverdue := make(map[string]int64)
		for _, set := range r.setOrder {
			nActive[set], nOverdue[set] = 0, 0
		}
		for _, k := range r.snap.Load().keys {
			if !k.State.Published() {
				continue
			}
			attrs := metric.WithAttributes(telemetry.AttrKID.String(k.KID), telemetry.AttrSet.String(k.Set),
				telemetry.AttrState.String(k.State.String()))
			o.ObserveFloat64(age, now.Sub(k.CreatedAt).Seconds(), attrs)
			o.ObserveFloat64(left, k.RotateBy.Sub(now).Seconds(), attrs)
			if k.State == Active {
				nActive[k.Set]++
			}
			if k.State != Retiring && now.After(k.RotateBy) {
				nOverdue[k.Set]++
			}
		}
		for set, n := range nActive {
			o.ObserveInt64(active, n, metric.WithAttributes(telemetry.AttrSet.String(set)))
			o.ObserveInt64(overdue, nOverdue[set], metric.WithAttributes(telemetry.AttrSet.String(set)))
		}
		return nil
	}, age, left, active, overdue)
}

// measuredStore measures every call to the KeyStore. It keeps the one
// optional interface the keyring asks r.store for (BatchUpdater); another
// one would have to be forwarded here too. New reads Durable and
// RevocationStore from Config.Store itself, before the store is wrapped.
type measuredStore struct {
	inner KeyStore
	calls *telemetry.Calls
	name  string
}

// measuredBatchStore is a measuredStore over a BatchUpdater.
type measuredBatchStore struct{ measuredStore }

func measureStore(s KeyStore, calls *telemetry.Calls) KeyStore {
	m := measuredStore{inner: s, calls: calls, name: fmt.Sprintf("%T", s)}
	if _, ok := s.(BatchUpdater); ok {
		return &measuredBatchStore{m}
	}
	return &m
}

func (s *measuredStore) Get(ctx context.Context, kid string) (k Key, err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "Get")
	defer func() { c.End(ctx, err) }()
	return s.inner.Get(ctx, kid)
}

func (s *measuredStore) List(ctx context.Context, f Filter) (ks []Key, err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "List")
	defer func() { c.End(ctx, err) }()
	return s.inner.List(ctx, f)
}

func (s *measuredStore) Put(ctx context.Context, k Key) (err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "Put")
	defer func() { c.End(ctx, err) }()
	return s.inner.Put(ctx, k)
}

func (s *measuredStore) Update(ctx context.Context, k Key, expectVersion int64) (err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "Update")
	defer func() { c.End(ctx, err) }()
	return s.inner.Update(ctx, k, expectVersion)
}

func (s *measuredStore) PutApproval(ctx context.Context, a Approval) (err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "PutApproval")
	defer func() { c.End(ctx, err) }()
	return s.inner.PutApproval(ctx, a)
}

func (s *measuredStore) DeleteApproval(ctx context.Context, kind ApprovalKind, subject string) (err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "DeleteApproval")
	defer func() { c.End(ctx, err) }()
	return s.inner.DeleteApproval(ctx, kind, subject)
}

func (s *measuredStore) Approvals(ctx context.Context) (as []Approval, err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "Approvals")
	defer func() { c.End(ctx, err) }()
	return s.inner.Approvals(ctx)
}

func (s *measuredBatchStore) UpdateBatch(ctx context.Context, updates []KeyUpdate) (err error) {
	ctx, c := s.calls.Begin(ctx, s.name, "UpdateBatch")
	defer func() { c.End(ctx, err) }()
	return s.inner.(BatchUpdater).UpdateBatch(ctx, updates)
}

// generate creates a key in backend, measured.
func (r *Keyring) generate(ctx context.Context, backend, kid, alg string) (signer.Signer, string, error) {
	ctx, call := r.tel.backend.Begin(ctx, backend, "Generate")
	s, ref, err := r.providers[backend].Generate(ctx, kid, alg)
	call.End(ctx, err)
	return s, ref, err
}

// destroyBackend destroys k's key in its backend through d, measured.
func (r *Keyring) destroyBackend(ctx context.Context, d Destroyer, k Key) error {
	ctx, call := r.tel.backend.Begin(ctx, k.Backend, "Destroy")
	err := d.Destroy(ctx, k.KID, k.BackendRef.Reveal())
	call.End(ctx, err)
	return err
}

// measuredWrapper measures the calls to a key-encryption backend.
type measuredWrapper struct {
	inner   signer.KeyWrapper
	calls   *telemetry.Calls
	backend string
}

// Durable answers for the wrapper it measures, so that New's restart
// checks see through the measurement.
func (w *measuredWrapper) Durable() bool { return isDurable(w.inner) }

func (w *measuredWrapper) Wrap(ctx context.Context, plaintext, aad []byte) (out []byte, err error) {
	ctx, c := w.calls.Begin(ctx, w.backend, "Wrap")
	defer func() { c.End(ctx, err) }()
	return w.inner.Wrap(ctx, plaintext, aad)
}

func (w *measuredWrapper) Unwrap(ctx context.Context, wrapped, aad []byte) (out []byte, err error) {
	ctx, c := w.calls.Begin(ctx, w.backend, "Unwrap")
	defer func() { c.End(ctx, err) }()
	return w.inner.Unwrap(ctx, wrapped, aad)
}

// instrument wraps the Keyring's store and key wrappers so that their
// calls are measured, and registers the key gauges. Providers are not
// wrapped (the keyring asks them for optional interfaces: Destroyer,
// signer.Importer, signer.Adopter): their calls are measured where they
// are made.
func (r *Keyring) instrument(m metric.Meter) error {
	r.store = measureStore(r.store, r.tel.store)
	wrappers := make(map[string]signer.KeyWrapper, len(r.wrappers))
	for name, w := range r.wrappers {
		if w != nil {
			wrappers[name] = &measuredWrapper{inner: w, calls: r.tel.backend, backend: name}
		}
	}
	r.wrappers = wrappers
	return observeKeys(m, r)
}
