package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms/audit"
)

// Runtime secrets: defaults and limits.
const (
	DefaultSecretRotation = 90 * Day
	DefaultSecretWindow   = time.Hour
	// MaxSecretSize is the largest secret value, in bytes: what every
	// KeyWrapper can seal in one call (AWS KMS Encrypt's limit).
	MaxSecretSize = 4096
	// ReasonLeak is the RotateSecret reason for a suspected leak (R3.3):
	// the previous version is revoked at once instead of staying readable.
	ReasonLeak = "leak"
	// SecretSetPrefix prefixes the Set of a secret's key records.
	SecretSetPrefix = "secret:"
	secretAlgPrefix = "secret/v"
)

// SecretPolicy declares one runtime secret (R1.3): a database password,
// an API key. Its versions are KeyStore records of Purpose Secret, Set
// SecretSetPrefix+Name and Algorithm "secret/vN" (N the version), whose
// BackendRef is the value sealed by the Backend's KeyWrapper (base64).
type SecretPolicy struct {
	Name    string // e.g. "db-password"
	Owner   string // who answers for the secret (R2.4); required
	Backend string // KeyWrapper name in Config.Wrappers; default "local"
	// RotationPeriod sets each version's RotateBy; default
	// DefaultSecretRotation.
	RotationPeriod time.Duration
	// PreviousWindow is how long the previous version stays readable after
	// a routine rotation, for clients that must switch over; default
	// DefaultSecretWindow, at most RotationPeriod. After a leak it is zero.
	PreviousWindow time.Duration
}

// SecretHook is called after each rotation of a secret with its new
// version, so the host can push it to the system that uses it (set the
// database password, update the API gateway). A failing hook is audited
// and reported (ErrSecretHook, whose message leaves out the hook's error
// text); it undoes nothing.
type SecretHook func(ctx context.Context, v SecretValue) error

// SecretValue is one version of a secret. Its value shows only through
// Reveal: String, GoString, every fmt verb, JSON, text and slog print the
// name and version with the value redacted. The value is a Hidden, so a
// SecretValue in an unexported field of the host's struct, which fmt
// prints field by field, shows no more than an address.
type SecretValue struct {
	name      string
	version   int
	kid       string
	createdAt time.Time
	rotateBy  time.Time
	value     Hidden
}

// Name is the secret's name.
func (v SecretValue) Name() string { return v.name }

// Version is the version number, from 1.
func (v SecretValue) Version() int { return v.version }

// KID is the kid of the version's key record.
func (v SecretValue) KID() string { return v.kid }

// CreatedAt is when the version was created.
func (v SecretValue) CreatedAt() time.Time { return v.createdAt }

// RotateBy is the version's target rotation date.
func (v SecretValue) RotateBy() time.Time { return v.rotateBy }

// Reveal returns a copy of the value: the one way to read it.
func (v SecretValue) Reveal() []byte { return []byte(v.value.Reveal()) }

// String names the secret and version, never the value.
func (v SecretValue) String() string {
	if v.name == "" {
		return "secret(none)"
	}
	return fmt.Sprintf("secret(name=%s version=%d value=REDACTED)", v.name, v.version)
}

// GoString keeps %#v redacted.
func (v SecretValue) GoString() string { return v.String() }

// Format makes every verb (%v, %+v, %s, %q, %x...) print String.
func (v SecretValue) Format(f fmt.State, _ rune) { io.WriteString(f, v.String()) }

// MarshalJSON writes the name and version, and "REDACTED" for the value.
func (v SecretValue) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
		Value   string `json:"value"`
	}{v.name, v.version, "REDACTED"})
}

// MarshalText writes String.
func (v SecretValue) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// LogValue keeps slog attributes redacted.
func (v SecretValue) LogValue() slog.Value { return slog.StringValue(v.String()) }

func secretSet(name string) string { return SecretSetPrefix + name }

func secretAlg(version int) string { return secretAlgPrefix + strconv.Itoa(version) }

// secretVersion reads the version of a secret record; 0 if it has none.
func secretVersion(k Key) int {
	s, ok := strings.CutPrefix(k.Algorithm, secretAlgPrefix)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// secretAAD binds a sealed value to its record: kid, secret and version.
func secretAAD(kid, name string, version int) []byte {
	return boundAAD("tokenkms/secret/v1", kid, name, strconv.Itoa(version))
}

// secretPolicies fills defaults and checks the secret policies.
func (r *Keyring) secretPolicies(in []SecretPolicy) (map[string]SecretPolicy, error) {
	out := make(map[string]SecretPolicy, len(in))
	for _, p := range in {
		bad := func(rule string, args ...any) (map[string]SecretPolicy, error) {
			return nil, fmt.Errorf("%w: secret %q: %s", ErrPolicy, p.Name, fmt.Sprintf(rule, args...))
		}
		switch {
		case p.Name == "":
			return bad("a secret needs a name")
		case p.Owner == "":
			return nil, fmt.Errorf("%w: %w: secret %q (R2.4)", ErrPolicy, ErrNoOwner, p.Name)
		case out[p.Name].Name != "":
			return bad("defined twice")
		case r.sets[secretSet(p.Name)].Name != "":
			return bad("a key set has the name %q", secretSet(p.Name))
		}
		if p.Backend == "" {
			p.Backend = DefaultBackend
		}
		if r.wrappers[p.Backend] == nil {
			return bad("no key wrapper for backend %q", p.Backend)
		}
		if p.RotationPeriod == 0 {
			p.RotationPeriod = DefaultSecretRotation
		}
		if p.PreviousWindow == 0 {
			p.PreviousWindow = DefaultSecretWindow
		}
		if p.RotationPeriod < 0 || p.PreviousWindow < 0 {
			return bad("negative duration")
		}
		if p.PreviousWindow > p.RotationPeriod {
			return bad("previous-version window %v longer than the rotation period %v", p.PreviousWindow, p.RotationPeriod)
		}
		out[p.Name] = p
	}
	return out, nil
}

// SecretPolicyOf returns the effective policy (defaults filled) of a secret.
func (r *Keyring) SecretPolicyOf(name string) (SecretPolicy, error) {
	p, ok := r.secrets[name]
	if !ok {
		return SecretPolicy{}, fmt.Errorf("%w: %q", ErrUnknownSecret, name)
	}
	return p, nil
}

// RotateSecret makes value the secret's new current version, at once
// (R3.3); the first call creates version 1. The previous version stays
// readable (PreviousSecret, SecretVersion) for the policy's
// PreviousWindow, then is revoked; with reason ReasonLeak it is revoked at
// once (state Compromised), as is any older version still in its window.
// Each change is audited before it takes effect; the value never is. Then
// the SecretHooks run with the new version. Needs the issuer role (create,
// rotate), or security-officer for a leak.
func (r *Keyring) RotateSecret(ctx context.Context, name string, value []byte, reason string) (SecretValue, error) {
	return r.RotateSecretFunc(ctx, name, func() ([]byte, error) { return bytes.Clone(value), nil }, reason)
}

// RotateSecretFunc is RotateSecret with a value produced by gen (for
// example 32 random bytes), called once the caller is authorised. The
// returned SecretValue is the only way to learn a generated value.
func (r *Keyring) RotateSecretFunc(ctx context.Context, name string, gen func() ([]byte, error), reason string) (_ SecretValue, err error) {
	defer r.trace(&ctx, "rotate_secret", secretSet(name), "")(&err)
	pol, err := r.SecretPolicyOf(name)
	if err != nil {
		return SecretValue{}, err
	}
	action := ActionRotate
	if reason == ReasonLeak {
		action = ActionEmergency
	}
	if _, exists := r.snap.Load().active[secretSet(name)]; !exists && reason != ReasonLeak {
		action = ActionCreate
	}
	p, err := r.principalFor(ctx, action, secretSet(name), "")
	if err != nil {
		return SecretValue{}, err
	}
	if gen == nil {
		return SecretValue{}, fmt.Errorf("%w: no value generator", ErrSecretValue)
	}
	value, err := gen()
	if err != nil {
		return SecretValue{}, fmt.Errorf("%w: generator: %w", ErrSecretValue, err)
	}
	defer clear(value)
	if len(value) == 0 || len(value) > MaxSecretSize {
		return SecretValue{}, fmt.Errorf("%w: %d bytes, want 1 to %d", ErrSecretValue, len(value), MaxSecretSize)
	}
	if reason == "" {
		reason = "routine"
	}
	r.mu.Lock()
	sv, err := r.rotateSecretLocked(ctx, p, pol, value, reason)
	r.mu.Unlock()
	if err != nil {
		return SecretValue{}, err
	}
	return sv, r.runSecretHooks(ctx, p, sv)
}

func (r *Keyring) rotateSecretLocked(ctx context.Context, p Principal, pol SecretPolicy, value []byte, reason string) (SecretValue, error) {
	set := secretSet(pol.Name)
	now := r.now().UTC()
	leak := reason == ReasonLeak
	versions := r.snapshotKeys(set)
	next, hasCurrent := 1, false
	for _, v := range versions {
		next = max(next, secretVersion(v)+1)
		hasCurrent = hasCurrent || v.State == Active
	}
	if leak && !hasCurrent {
		return SecretValue{}, fmt.Errorf("%w: %q has no current version to revoke", ErrSecretUnset, pol.Name)
	}
	k := Key{
		KID: newKID(), Set: set, Purpose: Secret, Algorithm: secretAlg(next), State: Pending,
		Owner: pol.Owner, CreatedBy: p.ID, CreatedAt: now, RotateBy: now.Add(pol.RotationPeriod), Backend: pol.Backend,
	}
	ref, err := r.sealRef(ctx, pol.Backend, fmt.Sprintf("secret %q version %d", pol.Name, next), value, secretAAD(k.KID, pol.Name, next))
	if err != nil {
		return SecretValue{}, err
	}
	k.BackendRef = ref

	typ := audit.SecretRotated
	if !hasCurrent {
		typ = audit.SecretCreated
	}
	ev := r.event(typ, p, set, k.KID, "")
	ev.Reason = reason
	ev.Details = map[string]string{
		"secret": pol.Name, "version": strconv.Itoa(next), "owner": pol.Owner, "backend": pol.Backend,
		"rotate_by": k.RotateBy.Format(time.RFC3339),
	}
	events := []audit.Event{ev}
	var olds, news []Key
	for _, v := range versions {
		old := v
		switch {
		case v.State == Active && !leak:
			v.State, v.RetiringAt, v.GraceUntil = Retiring, now, now.Add(pol.PreviousWindow)
			ev.Details["previous_version"] = strconv.Itoa(secretVersion(v))
			ev.Details["previous_readable_until"] = v.GraceUntil.Format(time.RFC3339)
		case (v.State == Active || v.State == Retiring) && leak:
			v.State, v.CompromisedAt = Compromised, now
		case v.State == Retiring:
			v.State, v.RetiredAt = Retired, now
		default:
			continue
		}
		if v.State != Retiring {
			rev := r.event(audit.SecretRevoked, p, set, v.KID, "")
			rev.Reason = reason
			rev.Details = map[string]string{"secret": pol.Name, "version": strconv.Itoa(secretVersion(v)), "superseded_by": strconv.Itoa(next)}
			events = append(events, rev)
		}
		olds, news = append(olds, old), append(news, v)
	}
	for _, e := range events {
		if err := r.emit(ctx, e); err != nil {
			return SecretValue{}, err
		}
	}
	if err := r.store.Put(ctx, k); err != nil {
		return SecretValue{}, r.failed(ctx, ev, err)
	}
	k.Version = 1
	current := k
	current.State, current.ActivatedAt = Active, now
	// The previous versions change before the new one becomes current:
	// never two current versions, even between the two writes.
	if err := r.write(ctx, append(olds, k), append(news, current)); err != nil {
		return SecretValue{}, r.failed(ctx, ev, err)
	}
	if err := r.refreshLocked(ctx); err != nil {
		return SecretValue{}, err
	}
	return newSecretValue(pol.Name, current, value), nil
}

func newSecretValue(name string, k Key, value []byte) SecretValue {
	return SecretValue{
		name: name, version: secretVersion(k), kid: k.KID, createdAt: k.CreatedAt, rotateBy: k.RotateBy,
		value: Hide(string(value)),
	}
}

// runSecretHooks calls every SecretHook and audits each call.
func (r *Keyring) runSecretHooks(ctx context.Context, p Principal, sv SecretValue) error {
	var errs []error
	for i, h := range r.secretHooks {
		err := h(ctx, sv)
		ev := r.event(audit.SecretRotated, p, secretSet(sv.name), sv.kid, "")
		ev.Reason = "secret hook"
		ev.Details = map[string]string{"secret": sv.name, "version": strconv.Itoa(sv.version), "hook": strconv.Itoa(i)}
		if err != nil {
			he := &secretHookError{hook: i, err: err}
			ev.Outcome, ev.Reason = audit.Failure, he.Error()
			errs = append(errs, he)
		}
		if aerr := r.emit(ctx, ev); aerr != nil {
			errs = append(errs, aerr)
		}
	}
	return errors.Join(errs...)
}

// secretHookError reports a failed SecretHook. Its message names the hook
// and the type of its error but not the error's text, which could quote a
// value; errors.Is and errors.As reach the hook's error.
type secretHookError struct {
	hook int
	err  error
}

func (e *secretHookError) Error() string {
	return fmt.Sprintf("%s: hook %d (%T)", ErrSecretHook.Error(), e.hook, e.err)
}

func (e *secretHookError) Unwrap() []error { return []error{ErrSecretHook, e.err} }

// Secret returns the current version of a secret. It needs a principal
// allowed to read.
func (r *Keyring) Secret(ctx context.Context, name string) (SecretValue, error) {
	if err := r.secretRead(ctx, name); err != nil {
		return SecretValue{}, err
	}
	k := r.snap.Load().active[secretSet(name)]
	if k == nil {
		return SecretValue{}, fmt.Errorf("%w: %q has no current version", ErrSecretUnset, name)
	}
	return r.openSecret(ctx, name, *k)
}

// SecretVersion returns one version of a secret: the current one, or a
// previous one still within its window (else ErrSecretRevoked). It needs
// a principal allowed to read.
func (r *Keyring) SecretVersion(ctx context.Context, name string, version int) (SecretValue, error) {
	if err := r.secretRead(ctx, name); err != nil {
		return SecretValue{}, err
	}
	for _, k := range r.snapshotKeys(secretSet(name)) {
		if secretVersion(k) == version && k.State != Pending {
			return r.openSecret(ctx, name, k)
		}
	}
	return SecretValue{}, fmt.Errorf("%w: %q version %d", ErrSecretUnset, name, version)
}

// PreviousSecret returns the version before the current one while it is
// within its window (else ErrSecretRevoked), for clients that must switch
// over. It needs a principal allowed to read.
func (r *Keyring) PreviousSecret(ctx context.Context, name string) (SecretValue, error) {
	if err := r.secretRead(ctx, name); err != nil {
		return SecretValue{}, err
	}
	var prev *Key
	for _, k := range r.snapshotKeys(secretSet(name)) {
		if k.State == Pending || k.State == Active {
			continue
		}
		if prev == nil || secretVersion(k) > secretVersion(*prev) {
			prev = &k
		}
	}
	if prev == nil {
		return SecretValue{}, fmt.Errorf("%w: %q has no previous version", ErrSecretUnset, name)
	}
	return r.openSecret(ctx, name, *prev)
}

func (r *Keyring) secretRead(ctx context.Context, name string) error {
	if _, err := r.SecretPolicyOf(name); err != nil {
		return err
	}
	return r.authorize(ctx, ActionRead, secretSet(name), "")
}

// openSecret checks that version k may be read and unseals it.
func (r *Keyring) openSecret(ctx context.Context, name string, k Key) (SecretValue, error) {
	v := secretVersion(k)
	switch {
	case k.State == Active:
	case k.State == Retiring && !k.graceEnded(r.now()):
	case k.State == Retiring:
		return SecretValue{}, fmt.Errorf("%w: %q version %d: its window ended at %s", ErrSecretRevoked, name, v, k.GraceUntil.UTC().Format(time.RFC3339))
	default:
		return SecretValue{}, fmt.Errorf("%w: %q version %d is %v", ErrSecretRevoked, name, v, k.State)
	}
	value, err := r.openRef(ctx, &k, fmt.Sprintf("secret %q version %d", name, v), secretAAD(k.KID, name, v))
	if err != nil {
		return SecretValue{}, err
	}
	defer clear(value)
	return newSecretValue(name, k, value), nil
}

// TickSecrets does for secrets what Tick does for key sets, as
// SystemPrincipal: a previous version whose window is over is revoked
// (Retired, audited), and a current version past its RotateBy is reported
// (audit event and OnOverdue). Reads refuse an expired version whether or
// not TickSecrets has run; it brings the records in line. It returns every
// failure, joined.
func (r *Keyring) TickSecrets(ctx context.Context) (err error) {
	defer r.trace(&ctx, "tick_secrets", "", "")(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.refreshLocked(ctx); err != nil {
		return err
	}
	return r.tickSecretsLocked(ctx)
}

func (r *Keyring) tickSecretsLocked(ctx context.Context) error {
	now := r.now()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(r.secrets)) {
		for _, k := range r.snapshotKeys(secretSet(name)) {
			switch {
			case k.graceEnded(now):
				old := k
				k.State, k.RetiredAt = Retired, now.UTC()
				ev := r.event(audit.SecretRevoked, SystemPrincipal, k.Set, k.KID, "")
				ev.Reason = "previous-version window over"
				ev.Details = map[string]string{"secret": name, "version": strconv.Itoa(secretVersion(k))}
				if err := r.apply(ctx, []audit.Event{ev}, []Key{old}, []Key{k}); err != nil {
					errs = append(errs, err)
				}
			case k.State == Active && !now.Before(k.RotateBy):
				errs = append(errs, r.overdue(ctx, k, now))
			}
		}
	}
	return errors.Join(errs...)
}
