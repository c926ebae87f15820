package keyring

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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
// failing hook is audited and reported; it undoes nothing. Hooks run
// without the keyring's administrative lock held.
type IncidentHook func(ctx context.Context, inc Incident, compromised Key) error

// JTILister lists the jtis issued with a key and their expiry (the
// Issuer's record); emergency rotation revokes each one in addition to the
// kid policy.
type JTILister interface {
	IssuedJTIs(ctx context.Context, kid string) (map[string]time.Time, error)
}

// JTIBatchRevoker is implemented by revocation lists that record many jti
// revocations in one write (one transaction, one fsync); emergency
// rotation uses it for the recorded jtis of a compromised key, and calls
// RevokeJTI once per jti on a list without it.
type JTIBatchRevoker interface {
	RevokeJTIs(ctx context.Context, jtis map[string]time.Time) error
}

// ErrIncidentHook reports that one or more incident hooks failed after an
// otherwise complete emergency rotation.
var ErrIncidentHook = errors.New("keyring: incident hook failed")

// revokeAll is the issued-before cutoff of a compromised key: every token
// it ever signed, whatever iat a forger wrote.
var revokeAll = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// The replacement an emergency rotation activates, as its events name it.
const (
	viaStandby    = "standby"
	viaBreakGlass = "break-glass"
	viaNone       = "none" // the compromised key was not Active: the Active key stays
)

// EmergencyRotate handles the compromise of key kid (R4), a signing key or
// a data-encryption key. It first authorizes the call on the key's set and
// validates it (the key exists and can be compromised, the incident has an
// id): a refused call changes and freezes nothing. Then, in this order,
// each step audited with the incident id as it happens:
//
//  1. incident.declared;
//  2. key.frozen: from here no signature (even one in flight) and no
//     encryption is produced with the key in this process;
//  3. key.compromised: the record says so, every replica stops trusting it;
//  4. if it was its set's Active key, key.activated: the set's standby key
//     (approved by two people and published ahead of time), or without
//     one a break-glass key generated now, Active at once and flagged
//     until a second principal calls Review; the event names the kid it
//     replaces and which of the two it is;
//  5. key.rotated, linking the old kid to the new one;
//  6. for a signing key, revocation.kid (every token of the kid), then,
//     with a JTILister, the recorded jtis as one revocation.jti event and
//     one batched write where the list allows it;
//  7. incident.hook: one event per hook called, or one saying that no
//     hook is configured.
//
// Steps 6 and 7 run without the administrative lock. A step that fails
// after the freeze leaves an incident.failed event and the freeze holds
// (fail closed: issuance stops rather than use the key); the later steps
// still run where they can (the revocation and the hooks run even when the
// store refuses the compromise or no fresh key could be activated). An
// audit event that the sink refuses stops the call there. It returns the new Active key (zero if
// the compromised key was not Active). Needs the security-officer role on
// the key's set.
func (r *Keyring) EmergencyRotate(ctx context.Context, kid string, inc Incident) (_ Key, err error) {
	defer r.trace(&ctx, "emergency_rotate", "", kid)(&err)
	p, k, err := r.principalForKey(ctx, ActionEmergency, kid)
	if err != nil {
		return Key{}, err
	}
	if inc.ID == "" {
		return Key{}, fmt.Errorf("%w: an incident needs an id", ErrPolicy)
	}
	if err := compromisable(k); err != nil {
		return Key{}, err
	}
	if inc.DeclaredBy == "" {
		inc.DeclaredBy = p.ID
	}
	if inc.At.IsZero() {
		inc.At = r.now().UTC()
	}
	ev := r.event(audit.IncidentDeclared, p, k.Set, kid, inc.ID)
	ev.Reason = inc.Reason
	ev.Details = map[string]string{"severity": inc.Severity, "declared_by": inc.DeclaredBy,
		"purpose": k.Purpose.String(), "state": k.State.String()}
	if err := r.emit(ctx, ev); err != nil {
		return Key{}, err
	}
	// The freeze does not wait for the administrative lock (a Create may
	// hold it across a slow backend call): it only ever stops signatures.
	r.freeze(kid)
	fail := func(step string, err error) error { return r.incidentFailed(ctx, p, k, inc.ID, step, err) }
	ev = r.event(audit.KeyFrozen, p, k.Set, kid, inc.ID)
	if err := r.emit(ctx, ev); err != nil {
		return Key{}, fail("freeze", err)
	}

	r.mu.Lock()
	locked := true
	defer func() {
		if locked {
			r.mu.Unlock()
		}
	}()
	// Read the record again under the lock: it may have moved since.
	cur, err := r.store.Get(ctx, kid)
	if err == nil {
		err = compromisable(cur)
	}
	if err != nil {
		return Key{}, fail("compromise", err)
	}
	k = cur
	via := viaNone
	if k.State == Active {
		via = viaBreakGlass
		if r.standbyOf(k.Set) != nil {
			via = viaStandby
		}
	}
	old := k
	k.State, k.CompromisedAt, k.Incident = Compromised, r.now().UTC(), inc.ID
	ev = r.event(audit.KeyCompromised, p, k.Set, kid, inc.ID)
	ev.Details = map[string]string{"previous_state": old.State.String()}
	if err := r.emit(ctx, ev); err != nil {
		return Key{}, fail("compromise", err)
	}
	// A store that refuses the compromise does not stop the revocation
	// and the hooks: the kid policy reaches every verifier through the
	// revocation list, and the team must hear of it. No successor is
	// activated while the store still holds the old key Active.
	var fresh Key
	var errs []error
	if err := r.write(ctx, []Key{old}, []Key{k}); err != nil {
		errs = append(errs, fail("compromise", err))
		via = viaNone
	} else {
		k.Version++
		if err := r.refreshLocked(ctx); err != nil {
			errs = append(errs, fail("compromise", err))
		}
	}
	if via != viaNone {
		if fresh, err = r.replaceLocked(ctx, p, old, inc.ID); err != nil {
			errs = append(errs, fail("replace", fmt.Errorf("no new key for set %q, issuance stopped: %w", k.Set, err)))
		}
	}
	r.mu.Unlock()
	locked = false
	if k.Purpose == Signing {
		if err := r.revokeCompromised(ctx, p, k, inc.ID); err != nil {
			errs = append(errs, fail("revoke", err))
		}
	}
	if err := r.runHooks(ctx, p, inc, k); err != nil {
		errs = append(errs, fail("hooks", err))
	}
	return fresh, errors.Join(errs...)
}

// compromisable refuses a key that emergency rotation cannot mark
// compromised.
func compromisable(k Key) error {
	if (k.Purpose != Signing && k.Purpose != Encryption) || !k.State.canMove(Compromised) {
		return fmt.Errorf("%w: %s is a %v key in state %v", ErrIllegalState, k.KID, k.Purpose, k.State)
	}
	return nil
}

// replaceLocked activates the successor of the compromised Active key old:
// its set's standby, or a break-glass key generated now, and links the two
// kids (key.activated, then key.rotated).
func (r *Keyring) replaceLocked(ctx context.Context, p Principal, old Key, incident string) (Key, error) {
	var fresh Key
	if sb := r.standbyOf(old.Set); sb != nil {
		fresh = *sb
		fresh.State, fresh.ActivatedAt, fresh.Standby = Active, r.now().UTC(), false
		ev := r.event(audit.KeyActivated, p, old.Set, fresh.KID, incident)
		ev.Details = map[string]string{"replaces": old.KID, "via": viaStandby, "approved_by": fresh.ApprovedBy}
		if err := r.apply(ctx, []audit.Event{ev}, []Key{*sb}, []Key{fresh}); err != nil {
			return Key{}, err
		}
		fresh.Version++
	} else {
		var err error
		fresh, err = r.createLocked(ctx, p, old.Set, Active, incident, func(k *Key) []audit.Event {
			ev := r.event(audit.KeyActivated, p, k.Set, k.KID, incident)
			ev.Details = map[string]string{"replaces": old.KID, "via": viaBreakGlass, "review_required": "true"}
			return []audit.Event{ev}
		})
		if err != nil {
			return Key{}, err
		}
	}
	ev := r.event(audit.KeyRotated, p, old.Set, old.KID, incident)
	ev.Reason = "emergency rotation"
	ev.Details = map[string]string{"successor": fresh.KID}
	return fresh, r.emit(ctx, ev)
}

// incidentFailed audits that a step of an emergency rotation failed after
// the freeze, and returns err wrapped in ErrIncident.
func (r *Keyring) incidentFailed(ctx context.Context, p Principal, k Key, incident, step string, err error) error {
	ev := r.event(audit.IncidentFailed, p, k.Set, k.KID, incident)
	ev.Details = map[string]string{"step": step, "frozen": "true"}
	return r.failed(ctx, ev, fmt.Errorf("%w: %s of %s: %w", ErrIncident, step, k.KID, err))
}

// freeze stops every signature with kid in this process, including by a
// signer opened later, and every encryption with it.
func (r *Keyring) freeze(kid string) {
	r.signersMu.Lock()
	defer r.signersMu.Unlock()
	r.frozen[kid] = true
	if g, ok := r.signers[kid]; ok {
		g.freeze()
	}
	r.deks.drop(kid)
}

func (r *Keyring) isFrozen(kid string) bool {
	r.signersMu.Lock()
	defer r.signersMu.Unlock()
	return r.frozen[kid]
}

// revokeCompromised revokes every token of k: the kid policy, then the
// recorded jtis as one event and, where the list allows, one write.
func (r *Keyring) revokeCompromised(ctx context.Context, p Principal, k Key, incident string) error {
	ev := r.event(audit.RevokedKID, p, k.Set, k.KID, incident)
	ev.Details = map[string]string{"issued_before": "all"}
	if err := r.emit(ctx, ev); err != nil {
		return err
	}
	if err := r.revocations.RevokeKID(ctx, k.KID, revokeAll); err != nil {
		return fmt.Errorf("keyring: revoke kid %s: %w", k.KID, err)
	}
	if r.issued == nil {
		return nil
	}
	jtis, err := r.issued.IssuedJTIs(ctx, k.KID)
	if err != nil {
		return fmt.Errorf("keyring: list jtis of %s: %w", k.KID, err)
	}
	ev = r.event(audit.RevokedJTI, p, k.Set, k.KID, incident)
	ev.Details = map[string]string{"count": strconv.Itoa(len(jtis)), "jtis_xor_sha256": jtiDigest(jtis)}
	if err := r.emit(ctx, ev); err != nil {
		return err
	}
	if b, ok := r.revocations.(JTIBatchRevoker); ok {
		if err := b.RevokeJTIs(ctx, jtis); err != nil {
			return fmt.Errorf("keyring: revoke %d jtis of %s: %w", len(jtis), k.KID, err)
		}
		return nil
	}
	for jti, exp := range jtis {
		if err := r.revocations.RevokeJTI(ctx, jti, exp); err != nil {
			return fmt.Errorf("keyring: revoke jti of %s: %w", k.KID, err)
		}
	}
	return nil
}

// jtiDigest is the XOR of the SHA-256 of each jti: the batched revocation
// event names the set of jtis it revoked without carrying it, and anyone
// holding the Issuer's record can recompute it (in any order, without a
// sort on the incident's path).
func jtiDigest(jtis map[string]time.Time) string {
	var acc [sha256.Size]byte
	for j := range jtis {
		h := sha256.Sum256([]byte(j))
		for i := range acc {
			acc[i] ^= h[i]
		}
	}
	return hex.EncodeToString(acc[:])
}

func (r *Keyring) runHooks(ctx context.Context, p Principal, inc Incident, k Key) error {
	if len(r.hooks) == 0 {
		ev := r.event(audit.IncidentHook, p, k.Set, k.KID, inc.ID)
		ev.Reason = "no incident hook configured: communication and postmortem are up to the operators"
		ev.Details = map[string]string{"hooks": "none"}
		return r.emit(ctx, ev)
	}
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

// standbyOf returns the standby key of set, if it has one.
func (r *Keyring) standbyOf(set string) *Key {
	for _, k := range r.snap.Load().keys {
		if k.Set == set && k.Standby && k.State == Pending && k.approved() {
			return k
		}
	}
	return nil
}

// keepStandby gives set a standby key if it has none, and replaces one due
// for rotation, as SystemPrincipal under the set's standing schedule
// approval: the same two people as a scheduled rotation (the approver of
// the schedule, and the scheduler that generates it).
func (r *Keyring) keepStandby(ctx context.Context, set string, pol SetPolicy, now time.Time) error {
	sb := r.standbyOf(set)
	if sb != nil && now.Before(pol.rotationDue(*sb)) {
		return nil
	}
	if sb != nil {
		if err := r.retireLocked(ctx, SystemPrincipal, *sb, "standby replaced"); err != nil {
			return err
		}
	}
	approver := r.scheduleApprover(set)
	_, err := r.createLocked(ctx, SystemPrincipal, set, Pending, "", func(k *Key) []audit.Event {
		k.Standby, k.ApprovedBy, k.ApprovedAt = true, "standing:"+approver, k.CreatedAt
		ev := r.event(audit.KeyApproved, SystemPrincipal, set, k.KID, "")
		ev.Reason = "standby key, under the standing schedule approval"
		ev.Details = map[string]string{"approved_by": k.ApprovedBy, "standby": "true"}
		return []audit.Event{ev}
	})
	return err
}

// Review records that the calling principal reviewed a break-glass key
// (activated at once by an emergency rotation without a standby) and
// closes its review_required flag. The principal that ran the emergency
// rotation cannot review its key (ErrSelfApproval). Needs the approver or
// security-officer role on the key's set.
func (r *Keyring) Review(ctx context.Context, kid string) (err error) {
	defer r.trace(&ctx, "review", "", kid)(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	p, k, err := r.principalForKey(ctx, ActionReview, kid)
	if err != nil {
		return err
	}
	if !k.reviewPending() {
		return fmt.Errorf("%w: %s is not a break-glass key awaiting review", ErrIllegalState, kid)
	}
	if p.Is(k.CreatedBy) {
		return r.denied(ctx, p, ActionReview, k.Set, kid,
			fmt.Errorf("%w: %s declared incident %s and cannot review its key", ErrSelfApproval, p.ID, k.Incident))
	}
	old := k
	k.ApprovedBy, k.ApprovedAt = p.ID, r.now().UTC()
	ev := r.event(audit.KeyReviewed, p, k.Set, kid, k.Incident)
	ev.Details = map[string]string{"created_by": k.CreatedBy, "activated_at": k.ActivatedAt.Format(time.RFC3339)}
	return r.apply(ctx, []audit.Event{ev}, []Key{old}, []Key{k})
}

// reviewOverdue reports a break-glass key still unreviewed past its set's
// ReviewWithin: an audit event, and ErrReviewOverdue for OnTickError.
func (r *Keyring) reviewOverdue(ctx context.Context, k Key, now time.Time) error {
	ev := r.event(audit.KeyReviewOverdue, SystemPrincipal, k.Set, k.KID, k.Incident)
	ev.Outcome = audit.Failure
	ev.Reason = fmt.Sprintf("break-glass key unreviewed for %s", now.Sub(k.ActivatedAt).Truncate(time.Minute))
	err := fmt.Errorf("%w: %s of incident %s, active since %s", ErrReviewOverdue, k.KID, k.Incident, k.ActivatedAt.Format(time.RFC3339))
	if aerr := r.emit(ctx, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}
