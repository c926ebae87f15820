package keyring

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/signer"
)

// KeyUpdate is one conditional replacement in a batch.
type KeyUpdate struct {
	Key           Key
	ExpectVersion int64
}

// BatchUpdater is implemented by stores that can apply several updates
// atomically: all of them or none. The keyring uses it for transitions
// that touch two keys (activation retires the previous key); without it,
// it applies them one by one and undoes the first if the second fails.
type BatchUpdater interface {
	UpdateBatch(ctx context.Context, updates []KeyUpdate) error
}

// Create generates a new Pending key in set (R3.4 step 1): it is
// published in the JWKS at once and signs nothing until activated.
// Needs the issuer role.
func (r *Keyring) Create(ctx context.Context, set string) (_ Key, err error) {
	defer r.trace(&ctx, "create", set, "")(&err)
	p, err := r.principalFor(ctx, ActionCreate, set, "")
	if err != nil {
		return Key{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.createLocked(ctx, p, set, Pending, "", nil)
}

// createLocked generates a key in state (Pending or, for emergency
// rotation, Active) and stores it: a signing key in its provider, a data
// key as 32 random bytes sealed by its set's KeyWrapper. prepare, when not
// nil, completes the record and returns further events. The key.created
// event is emitted before the backend generates anything; the further
// events after it and before the key is stored. If one of them, or the
// store, fails, the generated backend key is destroyed (discard) and the
// trail ends with a failure event.
func (r *Keyring) createLocked(ctx context.Context, p Principal, set string, state State, incident string, prepare func(*Key) []audit.Event) (Key, error) {
	pol, err := r.Policy(set)
	if err != nil {
		return Key{}, err
	}
	now := r.now().UTC()
	k := Key{
		KID: newKID(), Set: set, Purpose: pol.Purpose, Algorithm: pol.Algorithm, State: state,
		Owner: pol.Owner, CreatedBy: p.ID, CreatedAt: now, RotateBy: now.Add(pol.RotationPeriod),
		Backend: pol.Backend, Incident: incident,
	}
	if state == Active {
		k.ActivatedAt = now
	}
	var events []audit.Event
	if prepare != nil {
		events = prepare(&k)
	}
	ev := r.event(audit.KeyCreated, p, set, k.KID, incident)
	ev.Details = map[string]string{
		"algorithm": k.Algorithm, "backend": k.Backend, "owner": k.Owner, "state": state.String(),
		"rotate_by": k.RotateBy.Format(time.RFC3339),
	}
	if err := r.emit(ctx, ev); err != nil {
		return Key{}, err
	}
	var s signer.Signer
	if pol.Purpose == Encryption {
		if k.BackendRef, err = r.newDEK(ctx, k); err != nil {
			return Key{}, r.failed(ctx, ev, err)
		}
	} else {
		var ref string
		s, ref, err = r.generate(ctx, pol.Backend, k.KID, pol.Algorithm)
		if err != nil {
			return Key{}, r.failed(ctx, ev, fmt.Errorf("%w: generate in %q: %w", ErrBackend, pol.Backend, err))
		}
		k.BackendRef, k.Public = Hide(ref), s.Public()
	}
	for _, e := range events {
		if err := r.emit(ctx, e); err != nil {
			return Key{}, r.discard(ctx, p, k, ev, err)
		}
	}
	if err := r.store.Put(ctx, k); err != nil {
		return Key{}, r.discard(ctx, p, k, ev, err)
	}
	k.Version = 1
	if err := r.refreshLocked(ctx); err != nil {
		return k, err
	}
	if state == Active && s != nil {
		r.adoptSigner(k.KID, s)
	}
	return k, nil
}

// discard undoes the generation of k, whose creation (announced by
// created) could not be completed because of err: the backend key is
// destroyed where the provider can (a data key or a local key exists only
// in the record that was not stored), that is audited, and the trail ends
// with created's failure.
func (r *Keyring) discard(ctx context.Context, p Principal, k Key, created audit.Event, err error) error {
	if d, ok := r.providers[k.Backend].(Destroyer); ok && k.Purpose == Signing {
		ev := r.event(audit.KeyDestroyed, p, k.Set, k.KID, k.Incident)
		ev.Reason = "creation not completed"
		if derr := r.destroyBackend(ctx, d, k); derr != nil {
			ev.Outcome = audit.Failure
			ev.Reason = fmt.Sprintf("creation not completed; destroy failed: %v", derr)
			err = errors.Join(err, fmt.Errorf("%w: destroy %s: %w", ErrBackend, k.KID, derr))
		}
		if aerr := r.emit(ctx, ev); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	return r.failed(ctx, created, err)
}

// failed audits that an action announced by ev did not take effect, and
// returns err.
func (r *Keyring) failed(ctx context.Context, ev audit.Event, err error) error {
	ev.ID, ev.Outcome, ev.Reason = newEventID(), audit.Failure, err.Error()
	if aerr := r.emit(ctx, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// Approve records that the calling principal approves activation of a
// Pending key. The principal that created the key cannot approve it
// (R6.3). Needs the approver role.
func (r *Keyring) Approve(ctx context.Context, kid string) (err error) {
	defer r.trace(&ctx, "approve", "", kid)(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	p, k, err := r.principalForKey(ctx, ActionApprove, kid)
	if err != nil {
		return err
	}
	if p.Is(k.CreatedBy) {
		return r.denied(ctx, p, ActionApprove, k.Set, kid, fmt.Errorf("%w: %s created %s", ErrSelfApproval, p.ID, kid))
	}
	if k.State != Pending || k.approved() {
		return fmt.Errorf("%w: %s is %v (approved by %q)", ErrIllegalState, kid, k.State, k.ApprovedBy)
	}
	pol, err := r.Policy(k.Set)
	if err != nil {
		return err
	}
	old := k
	k.ApprovedBy, k.ApprovedAt = p.ID, r.now().UTC()
	// Published from now on: its pre-publication delay counts from here.
	if !k.ActivateAt.IsZero() && k.ActivateAt.Before(k.ApprovedAt.Add(pol.PrePublication)) {
		k.ActivateAt = k.ApprovedAt.Add(pol.PrePublication)
	}
	ev := r.event(audit.KeyApproved, p, k.Set, kid, "")
	return r.apply(ctx, []audit.Event{ev}, []Key{old}, []Key{k})
}

// Activate makes a Pending key its set's Active key (R3.4 step 2); the
// previous Active key becomes Retiring until now + grace (step 3). It
// refuses a key whose pre-publication delay has not elapsed, unless the
// set has no Active key, and a key without a recorded approval by another
// principal. Needs the deployer role.
func (r *Keyring) Activate(ctx context.Context, kid string) (err error) {
	defer r.trace(&ctx, "activate", "", kid)(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	p, k, err := r.principalForKey(ctx, ActionActivate, kid)
	if err != nil {
		return err
	}
	return r.activateLocked(ctx, p, k)
}

func (r *Keyring) activateLocked(ctx context.Context, p Principal, k Key) error {
	pol, err := r.Policy(k.Set)
	if err != nil {
		return err
	}
	if k.State != Pending {
		return fmt.Errorf("%w: %s is %v, only a pending key can be activated", ErrIllegalState, k.KID, k.State)
	}
	if !pol.UnsafeSkipApproval {
		if k.ApprovedBy == "" {
			return r.denied(ctx, p, ActionActivate, k.Set, k.KID, fmt.Errorf("%w: %s has no recorded approval", ErrApprovalRequired, k.KID))
		}
		if p.Is(k.ApprovedBy) {
			return r.denied(ctx, p, ActionActivate, k.Set, k.KID, fmt.Errorf("%w: %s approved %s and cannot also deploy it", ErrSelfApproval, p.ID, k.KID))
		}
	}
	now := r.now().UTC()
	prev := r.snap.Load().active[k.Set]
	if published := k.publishedAt(); prev != nil && now.Before(published.Add(pol.PrePublication)) {
		return fmt.Errorf("%w: %s published at %s, may sign from %s", ErrPrePublication, k.KID,
			published.Format(time.RFC3339), published.Add(pol.PrePublication).Format(time.RFC3339))
	}
	olds, news := []Key{k}, []Key{k}
	news[0].State, news[0].ActivatedAt, news[0].Standby = Active, now, false
	events := []audit.Event{r.event(audit.KeyActivated, p, k.Set, k.KID, "")}
	if prev != nil {
		retiring := *prev
		retiring.State, retiring.RetiringAt, retiring.GraceUntil = Retiring, now, now.Add(pol.Grace)
		ev := r.event(audit.KeyRotated, p, k.Set, prev.KID, "")
		ev.Details = map[string]string{"successor": k.KID, "grace_until": retiring.GraceUntil.Format(time.RFC3339)}
		events = append(events, ev)
		// The old key stops signing before the new one starts: never two
		// Active keys, even between the two writes.
		olds = []Key{*prev, k}
		news = []Key{retiring, news[0]}
	}
	return r.apply(ctx, events, olds, news)
}

// apply emits the events (any failure: nothing changes), then writes the
// new records atomically, then refreshes the snapshot.
// If a later event is refused, the trail ends with the first event's
// failure: no success event stands for an action that did not happen.
func (r *Keyring) apply(ctx context.Context, events []audit.Event, olds, news []Key) error {
	for i, ev := range events {
		if err := r.emit(ctx, ev); err != nil {
			if i > 0 {
				return r.failed(ctx, events[0], err)
			}
			return err
		}
	}
	if err := r.write(ctx, olds, news); err != nil {
		return r.failed(ctx, events[0], err)
	}
	return r.refreshLocked(ctx)
}

func (r *Keyring) write(ctx context.Context, olds, news []Key) error {
	if b, ok := r.store.(BatchUpdater); ok && len(news) > 1 {
		ups := make([]KeyUpdate, len(news))
		for i := range news {
			ups[i] = KeyUpdate{Key: news[i], ExpectVersion: olds[i].Version}
		}
		return b.UpdateBatch(ctx, ups)
	}
	for i := range news {
		if err := r.store.Update(ctx, news[i], olds[i].Version); err != nil {
			for j := i - 1; j >= 0; j-- {
				if uerr := r.store.Update(ctx, olds[j], olds[j].Version+1); uerr != nil {
					return errors.Join(err, fmt.Errorf("keyring: undo %s: %w", olds[j].KID, uerr))
				}
			}
			return err
		}
	}
	return nil
}

// Rotate starts the rotation of set's Active key (R3.4): it creates the
// successor, published at once, scheduled to become Active when its
// pre-publication delay has passed. Tick then activates it (once it is
// approved: by an approver, or by the set's standing schedule approval
// when the scheduler rotates) and retires the old key when its grace is
// over. Needs the issuer role.
func (r *Keyring) Rotate(ctx context.Context, set string) (_ Key, err error) {
	defer r.trace(&ctx, "rotate", set, "")(&err)
	p, err := r.principalFor(ctx, ActionRotate, set, "")
	if err != nil {
		return Key{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotateLocked(ctx, p, set)
}

func (r *Keyring) rotateLocked(ctx context.Context, p Principal, set string) (Key, error) {
	pol, err := r.Policy(set)
	if err != nil {
		return Key{}, err
	}
	// Another replica may have started this rotation: look at the store,
	// not only at this replica's snapshot.
	if err := r.refreshLocked(ctx); err != nil {
		return Key{}, err
	}
	if r.snap.Load().active[set] == nil {
		return Key{}, fmt.Errorf("%w: set %q has nothing to rotate; create and activate a first key", ErrNoActiveKey, set)
	}
	if succ := r.successor(set); succ != nil {
		return Key{}, fmt.Errorf("%w: rotation of %q already in progress (successor %s)", ErrIllegalState, set, succ.KID)
	}
	return r.createLocked(ctx, p, set, Pending, "", func(k *Key) []audit.Event {
		k.ActivateAt = k.CreatedAt.Add(pol.PrePublication)
		if approver := r.scheduleApprover(set); approver != "" && p.Has(RoleSystem) {
			k.ApprovedBy, k.ApprovedAt = "standing:"+approver, k.CreatedAt
		}
		ev := r.event(audit.KeyRotated, p, set, k.KID, "")
		ev.Reason = "rotation started: successor published"
		ev.Details = map[string]string{"activate_at": k.ActivateAt.Format(time.RFC3339), "approved_by": k.ApprovedBy}
		return []audit.Event{ev}
	})
}

// successor returns the Pending key scheduled to take over set, if any.
func (r *Keyring) successor(set string) *Key {
	for _, k := range r.snap.Load().keys {
		if k.Set == set && k.State == Pending && !k.ActivateAt.IsZero() {
			return k
		}
	}
	return nil
}

// Retire ends a key's life now: Retiring → Retired (grace cut short) or
// Pending → Retired (R3.4 step 4). Its tokens are rejected from then on
// and it leaves the JWKS. An Active key cannot be retired: rotate first.
// A rotated data key decrypts until it is retired, never on a schedule:
// its retirement needs an approver's ApproveRetire (the host rewrapped
// its data) and a second principal to call Retire. Needs the
// security-officer role.
func (r *Keyring) Retire(ctx context.Context, kid string) (err error) {
	defer r.trace(&ctx, "retire", "", kid)(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	p, k, err := r.principalForKey(ctx, ActionRetire, kid)
	if err != nil {
		return err
	}
	if k.Purpose == Encryption && k.State == Retiring {
		a, ok := r.snap.Load().approval(RetireApproval, kid)
		switch {
		case !ok:
			return r.denied(ctx, p, ActionRetire, k.Set, kid, fmt.Errorf("%w: data key %s still decrypts; rewrap its data, then an approver calls ApproveRetire", ErrApprovalRequired, kid))
		case a.By == p.ID:
			return r.denied(ctx, p, ActionRetire, k.Set, kid, fmt.Errorf("%w: %s approved the retirement of %s and cannot also retire it", ErrSelfApproval, p.ID, kid))
		}
		return r.retireLocked(ctx, p, k, "data rewrapped; retirement approved by "+a.By)
	}
	return r.retireLocked(ctx, p, k, "")
}

func (r *Keyring) retireLocked(ctx context.Context, p Principal, k Key, reason string) error {
	if k.State == Active {
		return fmt.Errorf("%w: %s is active; rotate first", ErrIllegalState, k.KID)
	}
	if !k.State.canMove(Retired) {
		return fmt.Errorf("%w: %s is %v", ErrIllegalState, k.KID, k.State)
	}
	old := k
	k.State, k.RetiredAt = Retired, r.now().UTC()
	ev := r.event(audit.KeyRetired, p, k.Set, k.KID, "")
	ev.Reason = reason
	return r.apply(ctx, []audit.Event{ev}, []Key{old}, []Key{k})
}

// Destroy marks a Retired or Compromised key Destroyed and forgets its
// backend reference: for local keys the wrapped material is gone; a
// provider that also implements Destroyer destroys the backend key.
// Needs the security-officer role.
func (r *Keyring) Destroy(ctx context.Context, kid string) (err error) {
	defer r.trace(&ctx, "destroy", "", kid)(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	p, k, err := r.principalForKey(ctx, ActionDestroy, kid)
	if err != nil {
		return err
	}
	if !k.State.canMove(Destroyed) {
		return fmt.Errorf("%w: %s is %v; only retired or compromised keys are destroyed", ErrIllegalState, kid, k.State)
	}
	ev := r.event(audit.KeyDestroyed, p, k.Set, kid, "")
	if err := r.emit(ctx, ev); err != nil {
		return err
	}
	if d, ok := r.providers[k.Backend].(Destroyer); ok && k.Purpose == Signing {
		if err := r.destroyBackend(ctx, d, k); err != nil {
			return r.failed(ctx, ev, fmt.Errorf("%w: destroy %s: %w", ErrBackend, kid, err))
		}
	}
	old := k
	k.State, k.DestroyedAt, k.BackendRef = Destroyed, r.now().UTC(), Hidden{}
	if err := r.write(ctx, []Key{old}, []Key{k}); err != nil {
		return r.failed(ctx, ev, err)
	}
	return r.refreshLocked(ctx)
}

// Destroyer is implemented by providers that can destroy a key in their
// backend (schedule its deletion).
type Destroyer interface {
	Destroy(ctx context.Context, kid, ref string) error
}

// Tick performs the transitions that are due, as SystemPrincipal:
// retiring signing keys whose grace is over become Retired (rotated data
// keys never do: see Retire); scheduled successors whose pre-publication
// is over (and that are approved) become Active; an Active key due for
// rotation gets a successor, and a signing set without a standby key (or
// whose standby is due for rotation) a new one, if an approver gave the
// set a standing schedule approval (ApproveSchedule); without one, a due
// rotation is reported, at most once a day, by an audit event and an
// error wrapping ErrNotApproved; a key past its RotateBy is reported
// (audit event and OnOverdue), and so is a break-glass key unreviewed
// past its set's ReviewWithin (audit event and ErrReviewOverdue); secrets
// are ticked as TickSecrets does.
// Ticks never overlap. It returns every failure, joined; one set's failure
// does not stop the others.
func (r *Keyring) Tick(ctx context.Context) (err error) {
	defer r.trace(&ctx, "tick", "", "")(&err)
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	ctx = WithPrincipal(ctx, SystemPrincipal)
	p := SystemPrincipal
	var errs []error
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.refreshLocked(ctx); err != nil {
		return err
	}
	now := r.now()
	for _, set := range r.setOrder {
		pol := r.sets[set]
		for _, k := range r.snapshotKeys(set) {
			switch {
			case k.graceEnded(now):
				errs = append(errs, r.retireLocked(ctx, p, k, "grace window over"))
			case k.State == Pending && !k.ActivateAt.IsZero() && !now.Before(k.ActivateAt):
				if k.ApprovedBy == "" && !pol.UnsafeSkipApproval {
					continue // waits for an approver; overdue reporting covers the delay
				}
				errs = append(errs, r.activateLocked(ctx, p, k))
			case k.reviewPending() && !now.Before(k.ActivatedAt.Add(pol.ReviewWithin)):
				errs = append(errs, r.reviewOverdue(ctx, k, now))
			}
		}
		active := r.snap.Load().active[set]
		if active == nil {
			continue
		}
		approved := r.scheduleApprover(set) != ""
		if pol.standby() && approved {
			errs = append(errs, r.keepStandby(ctx, set, pol, now))
		}
		if !now.Before(pol.rotationDue(*active)) && r.successor(set) == nil {
			if !approved {
				errs = append(errs, r.unapprovedLocked(ctx, *active, now))
			} else if _, err := r.rotateLocked(ctx, p, set); err != nil {
				errs = append(errs, err)
			}
		}
		if !now.Before(active.RotateBy) {
			errs = append(errs, r.overdue(ctx, *active, now))
		}
	}
	errs = append(errs, r.tickSecretsLocked(ctx))
	return errors.Join(errs...)
}

func (r *Keyring) snapshotKeys(set string) []Key {
	var out []Key
	for _, k := range r.snap.Load().keys {
		if k.Set == set {
			out = append(out, *k)
		}
	}
	SortKeys(out)
	return out
}

// unapprovedLocked reports, at most once a day per set, that the set's
// Active key k is due for rotation and no standing approval lets Tick
// rotate it; r.mu is held.
func (r *Keyring) unapprovedLocked(ctx context.Context, k Key, now time.Time) error {
	if last, ok := r.unapproved[k.Set]; ok && now.Sub(last) < Day {
		return nil
	}
	err := fmt.Errorf("%w: set %q: %s was due for rotation at %s; an approver calls ApproveSchedule, or someone rotates it, before its deadline %s",
		ErrNotApproved, k.Set, k.KID, r.sets[k.Set].rotationDue(k).UTC().Format(time.RFC3339), k.RotateBy.UTC().Format(time.RFC3339))
	ev := r.event(audit.RotationUnapproved, SystemPrincipal, k.Set, k.KID, "")
	ev.Outcome, ev.Reason = audit.Failure, err.Error()
	ev.Details = map[string]string{"rotate_by": k.RotateBy.Format(time.RFC3339)}
	if aerr := r.emit(ctx, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	r.unapproved[k.Set] = now
	return err
}

func (r *Keyring) overdue(ctx context.Context, k Key, now time.Time) error {
	ev := r.event(audit.KeyOverdue, SystemPrincipal, k.Set, k.KID, "")
	ev.Outcome = audit.Failure
	ev.Reason = fmt.Sprintf("past its rotation date by %s", now.Sub(k.RotateBy).Truncate(time.Minute))
	ev.Details = map[string]string{"rotate_by": k.RotateBy.Format(time.RFC3339), "owner": k.Owner}
	if r.onOverdue != nil {
		r.onOverdue(ctx, k)
	}
	return r.emit(ctx, ev)
}

// Run calls Tick every Config.TickInterval (±10% jitter) until ctx is
// done, and returns ctx's error; with Config.TickLease, only the ticks for
// which it holds the lease. Tick failures go to Config.OnTickError.
func (r *Keyring) Run(ctx context.Context) error {
	for {
		jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(r.interval))
		t := time.NewTimer(r.interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if err := r.leasedTick(ctx); err != nil && r.onTickErr != nil {
			r.onTickErr(err)
		}
	}
}

// leasedTick ticks if this replica holds the tick lease (always, without
// one).
func (r *Keyring) leasedTick(ctx context.Context) error {
	if r.lease == nil {
		return r.Tick(ctx)
	}
	release, ok, err := r.lease(ctx)
	if err != nil {
		r.tel.log.Warn("keyring: cannot take the tick lease; this replica skips the tick", "err", err)
	}
	if err != nil || !ok {
		return err
	}
	defer release()
	return r.Tick(ctx)
}
