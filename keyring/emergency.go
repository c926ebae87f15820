package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenkms/tokenkms/audit"
)

// Incident describes a suspected or confirmed key compromise (R4.1).
type Incident struct {
	ID         string // the host's incident id; required
	Reason     string
	Severity   string
	DeclaredBy string // filled with the calling principal when empty
	At         time.Time
}

// IncidentHook is called after an emergency rotation with the incident and
// the compromised key (R4.5): open the postmortem ticket, page the team. A
// failing hook is audited and reported; it undoes nothing.
type IncidentHook func(ctx context.Context, inc Incident, compromised Key) error

// JTILister lists the jtis issued with a key and their expiry (the
// Issuer's record); emergency rotation revokes each one in addition to the
// kid policy.
type JTILister interface {
	IssuedJTIs(ctx context.Context, kid string) (map[string]time.Time, error)
}

// ErrIncidentHook reports that one or more incident hooks failed after an
// otherwise complete emergency rotation.
var ErrIncidentHook = errors.New("keyring: incident hook failed")

// revokeAll is the issued-before cutoff of a compromised key: every token
// it ever signed, whatever iat a forger wrote.
var revokeAll = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// EmergencyRotate handles the compromise of key kid (R4). In order, each
// step audited with the incident id: it declares the incident; freezes the
// key (from the start of this call no signature is produced with it, even
// by a Sign already in flight); if it was its set's Active key, activates a
// fresh key at once (no pre-publication, break-glass: flagged for review);
// revokes every token of the key (kid policy, plus each jti the Issuer
// recorded when a JTILister is configured); and calls the incident hooks.
// It returns the new Active key (zero if the compromised key was not
// Active). If a step fails the freeze still holds: issuance stops rather
// than use the compromised key; if only the fresh key cannot be created,
// the revocation and the hooks still run. Needs the security-officer role.
func (r *Keyring) EmergencyRotate(ctx context.Context, kid string, inc Incident) (Key, error) {
	p, err := r.principalFor(ctx, ActionEmergency, "", kid)
	if err != nil {
		return Key{}, err
	}
	// The freeze comes before any I/O and cannot fail: it only ever stops
	// signatures, so it holds whatever happens next.
	r.freeze(kid)
	if inc.ID == "" {
		return Key{}, fmt.Errorf("%w: an incident needs an id", ErrPolicy)
	}
	if inc.DeclaredBy == "" {
		inc.DeclaredBy = p.ID
	}
	if inc.At.IsZero() {
		inc.At = r.now().UTC()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k, err := r.store.Get(ctx, kid)
	if err != nil {
		return Key{}, err
	}
	if k.Purpose != Signing || !k.State.canMove(Compromised) {
		return Key{}, fmt.Errorf("%w: %s is a %v key in state %v", ErrIllegalState, kid, k.Purpose, k.State)
	}

	ev := r.event(audit.IncidentDeclared, p, k.Set, kid, inc.ID)
	ev.Reason = inc.Reason
	ev.Details = map[string]string{"severity": inc.Severity, "declared_by": inc.DeclaredBy, "break_glass": "true", "review_required": "true"}
	if err := r.emit(ctx, ev); err != nil {
		return Key{}, err
	}

	wasActive := k.State == Active
	old := k
	k.State, k.CompromisedAt, k.Incident = Compromised, r.now().UTC(), inc.ID
	ev = r.event(audit.KeyCompromised, p, k.Set, kid, inc.ID)
	ev.Details = map[string]string{"previous_state": old.State.String(), "frozen": "true"}
	if err := r.apply(ctx, []audit.Event{ev}, []Key{old}, []Key{k}); err != nil {
		return Key{}, err
	}

	// A failure to create the fresh key stops issuance (the set has no
	// Active key) but not the revocation and the hooks.
	var fresh Key
	var freshErr error
	if wasActive {
		if fresh, err = r.createLocked(ctx, p, k.Set, Active, inc.ID, nil); err != nil {
			freshErr = fmt.Errorf("keyring: emergency rotation of %s: no new key, issuance stopped: %w", kid, err)
		}
	}
	if err := r.revokeCompromised(ctx, p, k, inc); err != nil {
		return fresh, errors.Join(freshErr, err)
	}
	return fresh, errors.Join(freshErr, r.runHooks(ctx, p, inc, k))
}

// freeze stops every signature with kid in this process, including by a
// signer opened later.
func (r *Keyring) freeze(kid string) {
	r.signersMu.Lock()
	defer r.signersMu.Unlock()
	r.frozen[kid] = true
	if g, ok := r.signers[kid]; ok {
		g.freeze()
	}
}

func (r *Keyring) revokeCompromised(ctx context.Context, p Principal, k Key, inc Incident) error {
	ev := r.event(audit.RevokedKID, p, k.Set, k.KID, inc.ID)
	ev.Details = map[string]string{"issued_before": "all"}
	if err := r.emit(ctx, ev); err != nil {
		return err
	}
	if err := r.revocations.RevokeKID(ctx, k.KID, revokeAll); err != nil {
		return r.failed(ctx, ev, fmt.Errorf("keyring: revoke kid %s: %w", k.KID, err))
	}
	if r.issued == nil {
		return nil
	}
	jtis, err := r.issued.IssuedJTIs(ctx, k.KID)
	if err != nil {
		return fmt.Errorf("keyring: list jtis of %s: %w", k.KID, err)
	}
	for jti, exp := range jtis {
		if err := r.revokeJTI(ctx, jti, exp, inc.ID); err != nil {
			return err
		}
	}
	return nil
}

func (r *Keyring) runHooks(ctx context.Context, p Principal, inc Incident, k Key) error {
	var errs []error
	for i, h := range r.hooks {
		err := h(ctx, inc, k)
		ev := r.event(audit.IncidentHook, p, k.Set, k.KID, inc.ID)
		ev.Details = map[string]string{"hook": fmt.Sprint(i)}
		if err != nil {
			ev.Outcome, ev.Reason = audit.Failure, err.Error()
			errs = append(errs, fmt.Errorf("%w: hook %d: %w", ErrIncidentHook, i, err))
		}
		if aerr := r.emit(ctx, ev); aerr != nil {
			errs = append(errs, aerr)
		}
	}
	return errors.Join(errs...)
}
