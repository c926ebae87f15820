package keyring

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/telemetry"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// Config assembles a Keyring.
type Config struct {
	// Store keeps key records and standing approvals; default an empty
	// MemStore. With a durable store (filestore, pgstore), New refuses
	// parts that would not survive a restart: an in-memory revocation
	// list (unless UnsafeEphemeralRevocations), and providers or key
	// wrappers under a key-encryption key that dies with the process
	// (the defaults).
	Store KeyStore
	// Providers are the key backends by name ("local", "awskms", ...).
	// Default: {"local": a LocalProvider under an ephemeral AES key}.
	Providers map[string]signer.Provider
	// Audit receives an event for every action (R2.5, R6.2); an action
	// whose event it refuses does not happen. Default: an in-memory
	// audit.Recorder (AuditSink returns it); a production host gives a
	// durable sink (audit.OpenChain, pgstore).
	Audit audit.Sink
	// Revocations is where emergency rotation records revoked kids and
	// jtis, and what the Keyring answers as a verifier.RevocationList.
	// Default: the store's own durable list when it keeps one
	// (RevocationStore: filestore), an in-memory list next to a MemStore;
	// replicas share one (pgstore's RevocationCache). A durable store
	// with neither is refused.
	Revocations verifier.RevocationList
	// UnsafeEphemeralRevocations accepts a revocation list that forgets
	// everything at a restart (verifier.MemoryRevocationList) next to a
	// durable store: revoked tokens verify again after a restart. It is
	// audited when the keyring starts.
	UnsafeEphemeralRevocations bool
	// Sets are the key sets and their policies. At least one.
	Sets []SetPolicy
	// Authorizer decides who may do what; default RoleAuthorizer.
	Authorizer Authorizer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// IssuedJTIs, when set, lists the jtis issued per kid: emergency
	// rotation revokes them one by one as well as by kid (R4.4).
	IssuedJTIs JTILister
	// IncidentHooks run after an emergency rotation (R4.5).
	IncidentHooks []IncidentHook
	// TickInterval is how often Run calls Tick (default one minute, with
	// ±10% jitter); OnTickError receives Tick's failures (may be nil).
	TickInterval time.Duration
	OnTickError  func(error)
	// TickLease, when set, is asked before each of Run's ticks; Run ticks
	// only when it returns ok, and calls release after the tick. Replicas
	// sharing one store pass the same lease (pgstore's TryLead) so that one
	// of them performs the scheduled transitions; the others pick up the
	// result on Refresh. A failure to take the lease goes to OnTickError.
	TickLease func(ctx context.Context) (release func(), ok bool, err error)
	// OnOverdue is called by Tick for each key past its RotateBy.
	OnOverdue func(ctx context.Context, k Key)
	// UnsafeAllowOverdue lets a signing key past its RotateBy go on
	// signing, and a data key past it go on encrypting. By default they
	// refuse (ErrOverdue; data still decrypts): the deadline of R3.1 and
	// R3.2 holds. It is audited when the keyring starts and shown in
	// Report.
	UnsafeAllowOverdue bool
	// Wrappers seal data-encryption keys and secret values, by backend
	// name (SetPolicy.Backend of Encryption sets, SecretPolicy.Backend).
	// Default: {"local": an ephemeral AES-256-GCM wrapper}.
	Wrappers map[string]signer.KeyWrapper
	// DEKCacheTTL is how long an unwrapped data key stays in memory after
	// its unwrap; default DefaultDEKCacheTTL, negative: no cache.
	DEKCacheTTL time.Duration
	// DEKCacheSize is the most unwrapped data keys held at once (least
	// recently used evicted first); default DefaultDEKCacheSize.
	DEKCacheSize int
	// Secrets are the runtime secrets the Keyring keeps (R1.3).
	Secrets []SecretPolicy
	// SecretHooks run after every secret rotation, with the new value, so
	// the host can push it to the system that uses it.
	SecretHooks []SecretHook
	// TracerProvider traces every administrative action (a span
	// "tokenkms.keyring.<action>" with each audit event as a span event),
	// every call to a key backend ("tokenkms.backend.<op>": Generate, Open,
	// Sign, Destroy, Wrap, Unwrap) and to the store ("tokenkms.store.<op>").
	// Nil: otel's global provider, which records nothing until the host
	// installs one.
	TracerProvider trace.TracerProvider
	// MeterProvider records the keyring's metrics (otel's global provider
	// when nil): tokenkms.backend.duration and .errors (KMS/HSM calls, by
	// backend and operation), tokenkms.store.duration and .errors,
	// tokenkms.audit.events, and, read from the snapshot at collection,
	// tokenkms.key.age and tokenkms.key.rotate_by.remaining per kid,
	// tokenkms.keys.active and tokenkms.keys.overdue per set.
	MeterProvider metric.MeterProvider
	// Logger receives operational events: failed actions and ticks (with
	// their error, Warn), audit events the sink refused (Error), failed
	// steps such as incident or secret hooks and overdue keys (Warn), the
	// transitions the scheduler made (Info). Never a secret, a token or key
	// material. Nil: nothing is logged.
	Logger *slog.Logger
}

// Keyring manages the keys of its sets through their life. Its lookups
// (Signer, VerificationKey, PublicKeys) answer from an immutable snapshot
// without locks; administrative calls are serialised and each is audited
// before it takes effect.
type Keyring struct {
	store       KeyStore
	providers   map[string]signer.Provider
	audit       audit.Sink
	revocations verifier.RevocationList
	sets        map[string]SetPolicy
	setOrder    []string
	authz       Authorizer
	now         func() time.Time
	hooks       []IncidentHook
	issued      JTILister
	onOverdue   func(context.Context, Key)
	interval    time.Duration
	onTickErr   func(error)
	lease       func(context.Context) (func(), bool, error)
	unsafeOver  bool
	wrappers    map[string]signer.KeyWrapper
	deks        *dekCache
	secrets     map[string]SecretPolicy
	secretHooks []SecretHook
	tel         *keyringTelemetry

	mu        sync.Mutex // serialises administrative calls and Refresh
	tickMu    sync.Mutex // one Tick at a time
	snap      atomic.Pointer[snapshot]
	signersMu sync.Mutex
	signers   map[string]*guardedSigner // opened signers by kid
	frozen    map[string]bool           // kids frozen by emergency rotation
	// unapproved is when Tick last reported, per set, a rotation due
	// without a standing approval; under mu.
	unapproved map[string]time.Time
}

type snapshot struct {
	keys      map[string]*Key     // every key by kid
	active    map[string]*Key     // set -> the Active key
	approvals map[string]Approval // standing approvals by ApprovalID
}

// New builds a Keyring and loads the store's keys.
func New(ctx context.Context, cfg Config) (*Keyring, error) {
	if cfg.Audit == nil {
		cfg.Audit = audit.NewRecorder()
	}
	if cfg.Store == nil {
		cfg.Store = NewMemStore()
	}
	durable := isDurable(cfg.Store)
	if cfg.Revocations == nil {
		if rs, ok := cfg.Store.(RevocationStore); ok && durable {
			cfg.Revocations = rs.RevocationList()
		} else if !durable {
			cfg.Revocations = verifier.NewMemoryRevocationList(cfg.Now)
		} else {
			return nil, fmt.Errorf("%w: Config.Revocations: the store %v is durable and keeps no revocation list; give a durable list (pgstore: store.RevocationCache)", ErrConfig, cfg.Store)
		}
	}
	if durable && !isDurable(cfg.Revocations) && !cfg.UnsafeEphemeralRevocations {
		return nil, fmt.Errorf("%w: Config.Revocations: %v forgets every revocation at a restart while the store %v keeps the keys; use the store's durable list (leave Revocations nil with filestore; pgstore: store.RevocationCache), or set UnsafeEphemeralRevocations", ErrConfig, cfg.Revocations, cfg.Store)
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.TickInterval < 0 {
		return nil, fmt.Errorf("%w: negative tick interval", ErrPolicy)
	}
	if len(cfg.Sets) == 0 {
		return nil, fmt.Errorf("%w: no key set", ErrPolicy)
	}
	tel, err := newKeyringTelemetry(&cfg)
	if err != nil {
		return nil, err
	}
	r := &Keyring{
		tel:         tel,
		store:       cfg.Store,
		providers:   cfg.Providers,
		audit:       cfg.Audit,
		revocations: cfg.Revocations,
		sets:        make(map[string]SetPolicy, len(cfg.Sets)),
		authz:       cfg.Authorizer,
		now:         cfg.Now,
		hooks:       cfg.IncidentHooks,
		issued:      cfg.IssuedJTIs,
		onOverdue:   cfg.OnOverdue,
		interval:    cfg.TickInterval,
		onTickErr:   cfg.OnTickError,
		lease:       cfg.TickLease,
		unsafeOver:  cfg.UnsafeAllowOverdue,
		signers:     make(map[string]*guardedSigner),
		frozen:      make(map[string]bool),
		unapproved:  make(map[string]time.Time),
		wrappers:    cfg.Wrappers,
		secretHooks: cfg.SecretHooks,
	}
	if r.providers == nil {
		lp, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
		if err != nil {
			return nil, err
		}
		r.providers = map[string]signer.Provider{DefaultBackend: lp}
	}
	if r.wrappers == nil {
		r.wrappers = map[string]signer.KeyWrapper{DefaultBackend: signer.NewEphemeralWrapper()}
	}
	if r.authz == nil {
		r.authz = RoleAuthorizer{}
	}
	if r.now == nil {
		r.now = time.Now
	}
	if err := r.instrument(telemetry.Meter(cfg.MeterProvider)); err != nil {
		return nil, err
	}
	deks, err := newDEKCache(cfg.DEKCacheTTL, cfg.DEKCacheSize, r.now)
	if err != nil {
		return nil, err
	}
	r.deks = deks
	for _, sp := range cfg.Sets {
		p, err := sp.withDefaults()
		if err != nil {
			return nil, err
		}
		if _, dup := r.sets[p.Name]; dup {
			return nil, fmt.Errorf("%w: set %q defined twice", ErrPolicy, p.Name)
		}
		if p.Purpose == Signing && r.providers[p.Backend] == nil {
			return nil, fmt.Errorf("%w: set %q: no provider for backend %q", ErrPolicy, p.Name, p.Backend)
		}
		if p.Purpose == Encryption && r.wrappers[p.Backend] == nil {
			return nil, fmt.Errorf("%w: set %q: no key wrapper for backend %q", ErrPolicy, p.Name, p.Backend)
		}
		r.sets[p.Name] = p
		r.setOrder = append(r.setOrder, p.Name)
	}
	if r.secrets, err = r.secretPolicies(cfg.Secrets); err != nil {
		return nil, err
	}
	if durable {
		if err := r.checkWrapping(); err != nil {
			return nil, err
		}
	}
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	if err := r.auditUnsafe(ctx, cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// checkWrapping refuses, next to a durable store, a provider or key
// wrapper that a set or secret uses and whose key-encryption key dies
// with the process: after a restart the stored keys would not unwrap.
func (r *Keyring) checkWrapping() error {
	const fix = "give signer.NewAESWrapper(a 32-byte key from your secret store), or a KMS"
	for _, name := range r.setOrder {
		p := r.sets[name]
		switch {
		case p.Purpose == Signing && !isDurable(r.providers[p.Backend]):
			return fmt.Errorf("%w: Config.Providers[%q] (set %q) wraps keys under a key that dies with this process, and the store %v keeps them: after a restart they would not unwrap; %s: signer.NewLocalProvider(that wrapper), or a KMS provider", ErrConfig, p.Backend, name, r.store, fix)
		case p.Purpose == Encryption && !isDurable(r.wrappers[p.Backend]):
			return fmt.Errorf("%w: Config.Wrappers[%q] (set %q) wraps data keys under a key that dies with this process, and the store %v keeps them: after a restart they would not unwrap; %s key wrapper", ErrConfig, p.Backend, name, r.store, fix)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.secrets)) {
		if b := r.secrets[name].Backend; !isDurable(r.wrappers[b]) {
			return fmt.Errorf("%w: Config.Wrappers[%q] (secret %q) wraps secrets under a key that dies with this process, and the store %v keeps them: after a restart they would not unwrap; %s key wrapper", ErrConfig, b, name, r.store, fix)
		}
	}
	return nil
}

// auditUnsafe records, when the keyring starts, each Unsafe option it
// runs with.
func (r *Keyring) auditUnsafe(ctx context.Context, cfg Config) error {
	for _, o := range []struct {
		name string
		on   bool
		why  string
	}{
		{"UnsafeAllowOverdue", cfg.UnsafeAllowOverdue, "keys past their rotation date keep signing and encrypting"},
		{"UnsafeEphemeralRevocations", cfg.UnsafeEphemeralRevocations && !isDurable(cfg.Revocations), "revocations are lost at a restart"},
	} {
		if !o.on {
			continue
		}
		ev := r.event(audit.UnsafeConfig, SystemPrincipal, "", "", "")
		ev.Reason = o.why
		ev.Details = map[string]string{"option": o.name}
		if err := r.emit(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// DefaultTickInterval is how often Run ticks when Config.TickInterval is
// zero.
const DefaultTickInterval = time.Minute

// JWKSMaxAge is the largest JWKSMaxAge of the signing sets: the
// Cache-Control max-age that jwks.NewHandler sends for this keyring (the
// pre-publication and grace of every set were checked against their own).
func (r *Keyring) JWKSMaxAge() time.Duration {
	var m time.Duration
	for _, p := range r.sets {
		if p.Purpose == Signing {
			m = max(m, p.JWKSMaxAge)
		}
	}
	return m
}

// MaxTokenLifetime returns the MaxTokenLifetime of a signing set
// (signer.SetLimits: NewIssuer checks an Issuer's lifetimes against it).
func (r *Keyring) MaxTokenLifetime(set string) (time.Duration, error) {
	p, err := r.Policy(set)
	if err != nil {
		return 0, err
	}
	if p.Purpose != Signing {
		return 0, fmt.Errorf("%w: set %q holds %v keys", ErrWrongPurpose, set, p.Purpose)
	}
	return p.MaxTokenLifetime, nil
}

// AuditSink returns the sink the Keyring emits to (the default in-memory
// *audit.Recorder when Config.Audit was nil).
func (r *Keyring) AuditSink() audit.Sink { return r.audit }

// Policy returns the effective policy (defaults filled) of a set.
func (r *Keyring) Policy(set string) (SetPolicy, error) {
	p, ok := r.sets[set]
	if !ok {
		return SetPolicy{}, fmt.Errorf("%w: %q", ErrUnknownSet, set)
	}
	return p, nil
}

// Refresh reloads the snapshot from the store. Administrative calls do it
// themselves; a host whose store is shared by several replicas calls it
// when the store reports a change.
func (r *Keyring) Refresh(ctx context.Context) (err error) {
	defer r.trace(&ctx, "refresh", "", "")(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshLocked(ctx)
}

func (r *Keyring) refreshLocked(ctx context.Context) error {
	keys, err := r.store.List(ctx, Filter{})
	if err != nil {
		return fmt.Errorf("keyring: load keys: %w", err)
	}
	approvals, err := r.store.Approvals(ctx)
	if err != nil {
		return fmt.Errorf("keyring: load approvals: %w", err)
	}
	s := &snapshot{keys: make(map[string]*Key, len(keys)), active: make(map[string]*Key), approvals: make(map[string]Approval, len(approvals))}
	for _, a := range approvals {
		s.approvals[ApprovalID(a.Kind, a.Subject)] = a
	}
	for i := range keys {
		k := &keys[i]
		s.keys[k.KID] = k
		if k.State == Active {
			s.active[k.Set] = k
		}
	}
	r.snap.Store(s)
	r.deks.retain(s)
	r.signersMu.Lock()
	for kid, g := range r.signers {
		k, ok := s.keys[kid]
		switch {
		case !ok:
			delete(r.signers, kid)
		case k.State == Compromised:
			g.freeze()
		case k.State != Active:
			g.deactivate(k.GraceUntil)
		}
	}
	r.signersMu.Unlock()
	return nil
}

// Key returns the record of a key. It needs a principal allowed to read.
func (r *Keyring) Key(ctx context.Context, kid string) (Key, error) {
	_, k, err := r.principalForKey(ctx, ActionRead, kid)
	return k, err
}

// Keys lists key records. It needs a principal allowed to read.
func (r *Keyring) Keys(ctx context.Context, f Filter) ([]Key, error) {
	if err := r.authorize(ctx, ActionRead, f.Set, ""); err != nil {
		return nil, err
	}
	return r.store.List(ctx, f)
}

// SigningSets names the signing sets, in Config order. It implements
// verifier.SetLister: a verifier of a keyring with more than one must name
// the sets it trusts (verifier.Policy.KeySets).
func (r *Keyring) SigningSets() []string {
	var out []string
	for _, name := range r.setOrder {
		if r.sets[name].Purpose == Signing {
			out = append(out, name)
		}
	}
	return out
}

// VerificationKey implements verifier.KeySource from the snapshot. Only
// an allow-list of states verifies: approved Pending, Active and Retiring
// (within grace) signing keys. A retired or destroyed key gives
// verifier.ErrKeyRetired, a compromised one verifier.ErrKeyCompromised,
// anything else (an unapproved Pending key, a record in an unknown state)
// verifier.ErrUnknownKID.
func (r *Keyring) VerificationKey(_ context.Context, kid string) (verifier.Key, error) {
	k, ok := r.snap.Load().keys[kid]
	if !ok || k.Purpose != Signing {
		return verifier.Key{}, verifier.ErrUnknownKID
	}
	if r.trusted(k, r.now()) {
		return k.verifierKey(), nil
	}
	switch k.State {
	case Compromised:
		return verifier.Key{}, verifier.ErrKeyCompromised
	case Retiring, Retired, Destroyed:
		return verifier.Key{}, verifier.ErrKeyRetired
	}
	return verifier.Key{}, verifier.ErrUnknownKID
}

// trusted reports whether signing key k verifies tokens and is published
// at now: Pending once approved (or under UnsafeSkipApproval), Active, and
// Retiring within its grace. Every other state, known or not, is refused.
func (r *Keyring) trusted(k *Key, now time.Time) bool {
	switch k.State {
	case Pending:
		return k.approved() || r.sets[k.Set].UnsafeSkipApproval
	case Active:
		return true
	case Retiring:
		return !k.graceEnded(now)
	}
	return false
}

// PublicKeys returns the keys the JWKS publishes (R5.1): the approved
// Pending, Active and Retiring (within grace) signing keys of every set.
func (r *Keyring) PublicKeys(ctx context.Context) ([]verifier.Key, error) {
	s := r.snap.Load()
	out := make([]verifier.Key, 0, len(s.keys))
	for _, name := range r.setOrder {
		for _, k := range r.published(s, name) {
			out = append(out, k.verifierKey())
		}
	}
	return out, nil
}

func (r *Keyring) published(s *snapshot, set string) []Key {
	now := r.now()
	var out []Key
	for _, k := range s.keys {
		if k.Set == set && k.Purpose == Signing && r.trusted(k, now) {
			out = append(out, *k)
		}
	}
	SortKeys(out)
	return out
}

// RevokeJTI implements verifier.RevocationList over the configured list.
// It is authorized on every set (the empty set): a principal confined to
// some sets uses RevokeJTIInSet.
func (r *Keyring) RevokeJTI(ctx context.Context, jti string, until time.Time) error {
	return r.RevokeJTIInSet(ctx, "", jti, until)
}

// RevokeJTIInSet revokes the token with this jti, issued with a key of set
// (the empty set: of any set), until the given time. It needs the
// security-officer role on set; the event names the set. The revocation
// list keys jtis alone: the set scopes who may revoke, not what matches.
func (r *Keyring) RevokeJTIInSet(ctx context.Context, set, jti string, until time.Time) (err error) {
	defer r.trace(&ctx, "revoke_jti", set, "")(&err)
	p, err := r.principalFor(ctx, ActionRevoke, set, "")
	if err != nil {
		return err
	}
	if set != "" {
		if _, err := r.Policy(set); err != nil {
			return err
		}
	}
	if jti == "" {
		return fmt.Errorf("keyring: empty jti")
	}
	ev := r.event(audit.RevokedJTI, p, set, "", "")
	ev.Details = map[string]string{"jti": jti, "until": until.UTC().Format(time.RFC3339)}
	if err := r.emit(ctx, ev); err != nil {
		return err
	}
	if err := r.revocations.RevokeJTI(ctx, jti, until); err != nil {
		return r.failed(ctx, ev, err)
	}
	return nil
}

// RevokeKID implements verifier.RevocationList over the configured list.
// It is authorized on the key's set; an unknown kid is refused as
// principalForKey says.
func (r *Keyring) RevokeKID(ctx context.Context, kid string, issuedBefore time.Time) (err error) {
	defer r.trace(&ctx, "revoke_kid", "", kid)(&err)
	p, k, err := r.principalForKey(ctx, ActionRevoke, kid)
	if err != nil {
		return err
	}
	ev := r.event(audit.RevokedKID, p, k.Set, kid, "")
	ev.Details = map[string]string{"issued_before": issuedBefore.UTC().Format(time.RFC3339)}
	if err := r.emit(ctx, ev); err != nil {
		return err
	}
	if err := r.revocations.RevokeKID(ctx, kid, issuedBefore); err != nil {
		return r.failed(ctx, ev, err)
	}
	return nil
}

// Revoked implements verifier.RevocationList over the configured list.
func (r *Keyring) Revoked(ctx context.Context, kid, jti string, issuedAt time.Time) (bool, error) {
	return r.revocations.Revoked(ctx, kid, jti, issuedAt)
}

// Signer returns the Signer of the set's Active key (signer.ActiveKeys).
// It needs no principal: signing is Core's everyday work, not
// administration. The signer refuses to sign once its key is frozen by an
// emergency rotation or stops being Active.
func (r *Keyring) Signer(ctx context.Context, set string) (signer.Signer, error) {
	k, err := r.activeKey(set, Signing)
	if err != nil {
		return nil, err
	}
	return r.openSigner(ctx, *k)
}

// activeKey returns the Active key of a set of the given purpose, refusing
// one past its RotateBy unless Config.UnsafeAllowOverdue.
func (r *Keyring) activeKey(set string, purpose Purpose) (*Key, error) {
	p, ok := r.sets[set]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSet, set)
	}
	if p.Purpose != purpose {
		return nil, fmt.Errorf("%w: set %q holds %v keys", ErrWrongPurpose, set, p.Purpose)
	}
	k := r.snap.Load().active[set]
	if k == nil {
		return nil, fmt.Errorf("%w: set %q", ErrNoActiveKey, set)
	}
	if purpose == Encryption && r.isFrozen(k.KID) {
		return nil, fmt.Errorf("%w: %s", ErrFrozen, k.KID)
	}
	if !r.unsafeOver && !r.now().Before(k.RotateBy) {
		return nil, fmt.Errorf("%w: %s was due for rotation on %s", ErrOverdue, k.KID, k.RotateBy.UTC().Format(time.RFC3339))
	}
	return k, nil
}

func (r *Keyring) openSigner(ctx context.Context, k Key) (*guardedSigner, error) {
	r.signersMu.Lock()
	g, ok := r.signers[k.KID]
	r.signersMu.Unlock()
	if ok {
		return g, nil
	}
	prov := r.providers[k.Backend]
	if prov == nil {
		return nil, fmt.Errorf("%w: no provider for backend %q", ErrBackend, k.Backend)
	}
	bctx, call := r.tel.backend.Begin(ctx, k.Backend, "Open")
	s, err := prov.Open(bctx, k.KID, k.BackendRef.Reveal())
	call.End(bctx, err)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrBackend, k.KID, err)
	}
	if s.KID() != k.KID || s.Algorithm() != k.Algorithm {
		return nil, fmt.Errorf("%w: backend key %s/%s does not match record %s/%s", ErrBackend, s.KID(), s.Algorithm(), k.KID, k.Algorithm)
	}
	return r.adoptSigner(k.KID, s), nil
}

// adoptSigner registers an opened signer, keeping the first one opened. It
// guards it by the key's record in the current snapshot, not the record
// the caller opened it from: a refresh that ran in between (a rotation, a
// compromise) walked the registered signers before this one was there.
func (r *Keyring) adoptSigner(kid string, s signer.Signer) *guardedSigner {
	r.signersMu.Lock()
	defer r.signersMu.Unlock()
	if g, ok := r.signers[kid]; ok {
		return g
	}
	g := &guardedSigner{inner: s, calls: r.tel.backend}
	k, ok := r.snap.Load().keys[kid]
	if ok {
		g.backend = k.Backend
	}
	switch {
	case !ok || k.State == Compromised || r.frozen[kid]:
		g.frozen = true
	case k.State != Active:
		g.deactivate(k.GraceUntil)
	}
	r.signers[kid] = g
	return g
}

// guardedSigner is what Signer hands out: it refuses to sign once its key
// is frozen (compromise) or no longer Active. Sign holds the read lock for
// the whole signature, freeze takes the write lock: once freeze returns,
// no signature is in flight and none will be produced.
type guardedSigner struct {
	inner   signer.Signer
	calls   *telemetry.Calls
	backend string
	mu      sync.RWMutex
	frozen  bool
	ended   bool
	until   atomic.Int64 // unix nanoseconds of the verification horizon, 0 while Active
}

func (g *guardedSigner) KID() string              { return g.inner.KID() }
func (g *guardedSigner) Algorithm() string        { return g.inner.Algorithm() }
func (g *guardedSigner) Public() crypto.PublicKey { return g.inner.Public() }
func (g *guardedSigner) String() string           { return fmt.Sprint(g.inner) }

// VerifiableUntil is the end of the key's verification horizon, zero while
// it is Active (it then lasts at least until rotation plus grace).
func (g *guardedSigner) VerifiableUntil() time.Time {
	if n := g.until.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (g *guardedSigner) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.frozen {
		// Also ErrKeyNotActive: an Issuer asks for the new Active key.
		return nil, fmt.Errorf("%w: %s: %w", ErrFrozen, g.inner.KID(), signer.ErrKeyNotActive)
	}
	if g.ended {
		return nil, fmt.Errorf("%w: %s", signer.ErrKeyNotActive, g.inner.KID())
	}
	ctx, call := g.calls.Begin(ctx, g.backend, "Sign")
	sig, err := g.inner.Sign(ctx, signingInput)
	call.End(ctx, err)
	return sig, err
}

func (g *guardedSigner) freeze() {
	g.mu.Lock()
	g.frozen = true
	g.mu.Unlock()
}

func (g *guardedSigner) deactivate(graceUntil time.Time) {
	g.mu.Lock()
	g.ended = true
	g.mu.Unlock()
	if !graceUntil.IsZero() {
		g.until.Store(graceUntil.UnixNano())
	}
}

// newKID returns 128 random bits, base64url: at least what R2.1 needs to
// be unique without coordination.
func newKID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newEventID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *Keyring) event(t audit.Type, p Principal, set, kid, incident string) audit.Event {
	return audit.Event{
		ID: newEventID(), Time: r.now().UTC(), Type: t, Set: set, KID: kid,
		Actor: p.ID, Outcome: audit.Success, Incident: incident,
	}
}

// emit sends an event; a failure vetoes the action.
func (r *Keyring) emit(ctx context.Context, e audit.Event) error {
	err := r.audit.Emit(ctx, e)
	r.observeEvent(ctx, e, err)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrAudit, e.Type, err)
	}
	return nil
}

// principalFor checks that ctx carries a principal allowed to do a on set,
// and audits a denial.
func (r *Keyring) principalFor(ctx context.Context, a Action, set, kid string) (Principal, error) {
	p, err := r.caller(ctx, a, set, kid)
	if err != nil {
		return p, err
	}
	if err := r.authorizeSet(ctx, p, a, set, r.purposeOf(set)); err != nil {
		return p, r.denied(ctx, p, a, set, kid, err)
	}
	return p, nil
}

// caller returns the valid principal ctx carries, and audits its absence
// ("anonymous") or its invalidity as a denial of a.
func (r *Keyring) caller(ctx context.Context, a Action, set, kid string) (Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		p = Principal{ID: "anonymous"}
		return p, r.denied(ctx, p, a, set, kid, fmt.Errorf("%w: %s", ErrNoPrincipal, a))
	}
	if err := p.Validate(); err != nil {
		return p, r.denied(ctx, p, a, set, kid, err)
	}
	return p, nil
}

func (r *Keyring) authorize(ctx context.Context, a Action, set, kid string) error {
	_, err := r.principalFor(ctx, a, set, kid)
	return err
}

// denied audits a refused attempt and returns err (joined with the audit
// failure if the event could not be written).
func (r *Keyring) denied(ctx context.Context, p Principal, a Action, set, kid string, err error) error {
	return r.refuse(ctx, p, a, set, kid, err, err)
}

// refuse audits a refused attempt for reason and returns ret, which may
// say less than the audit event does.
func (r *Keyring) refuse(ctx context.Context, p Principal, a Action, set, kid string, reason, ret error) error {
	ev := r.event(audit.AccessDenied, p, set, kid, "")
	ev.Outcome = audit.Denied
	ev.Reason = reason.Error()
	ev.Details = map[string]string{"action": string(a)}
	if aerr := r.emit(ctx, ev); aerr != nil {
		return errors.Join(ret, aerr)
	}
	return ret
}
