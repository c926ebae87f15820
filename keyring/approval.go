package keyring

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms/audit"
)

// ApprovalKind says what a standing Approval approves.
type ApprovalKind string

// The kinds of standing approval.
const (
	// ScheduleApproval: the scheduled rotation of a set (Subject: the
	// set), under the timing policy in Terms. Tick rotates the set's keys
	// and activates their successors under it (ApproveSchedule).
	ScheduleApproval ApprovalKind = "schedule"
	// RetireApproval: the retirement of a rotated data key whose data the
	// host has rewrapped (Subject: the kid). Retire then needs a second
	// principal (ApproveRetire).
	RetireApproval ApprovalKind = "retire"
)

// Approval is a standing decision of an approver that the KeyStore keeps,
// so that it holds across restarts and for every replica.
type Approval struct {
	Kind    ApprovalKind
	Subject string    // the set (ScheduleApproval) or the kid (RetireApproval)
	By      string    // the approving principal
	At      time.Time // when it was given
	Terms   string    // what was approved: for a schedule, the policy's timing
}

// ApprovalStore is the part of a KeyStore that keeps standing approvals.
// PutApproval stores a, replacing any approval of the same Kind and
// Subject; DeleteApproval removes one (ErrNotFound if there is none);
// Approvals lists them all, ordered by Kind, then Subject.
type ApprovalStore interface {
	PutApproval(ctx context.Context, a Approval) error
	DeleteApproval(ctx context.Context, kind ApprovalKind, subject string) error
	Approvals(ctx context.Context) ([]Approval, error)
}

// CheckApproval refuses an approval a store must not keep: no kind,
// subject or approver, or no time.
func CheckApproval(a Approval) error {
	if a.Kind == "" || a.Subject == "" || a.By == "" || a.At.IsZero() {
		return fmt.Errorf("keyring: approval needs a kind, a subject, an approver and a time")
	}
	return nil
}

// SortApprovals orders approvals as Approvals returns them.
func SortApprovals(as []Approval) {
	slices.SortFunc(as, func(a, b Approval) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
}

// ApprovalID is the map key of an approval in a store that keeps them in
// a map.
func ApprovalID(kind ApprovalKind, subject string) string { return string(kind) + "\x00" + subject }

// ListApprovals returns the approvals of a map-held store, in
// SortApprovals order.
func ListApprovals(m map[string]Approval) []Approval {
	out := slices.Collect(maps.Values(m))
	SortApprovals(out)
	return out
}

// scheduleTerms is what a standing schedule approval approves: the set's
// timing policy. An approval given under other terms does not rotate the
// set (the policy changed since: an approver must approve it again).
func scheduleTerms(p SetPolicy) string {
	return fmt.Sprintf("rotation_period=%v pre_publication=%v grace=%v rotate_after=%v algorithm=%s backend=%s",
		p.RotationPeriod, p.PrePublication, p.Grace, p.RotateAfter, p.Algorithm, p.Backend)
}

// ApproveSchedule records the calling approver's standing approval of the
// set's scheduled rotation under its current policy: Tick rotates the
// set's keys when they are due, and activates their successors, without a
// further approval. The approval is audited (who, when, the terms) and
// kept by the KeyStore: it holds across restarts and for every replica,
// until WithdrawSchedule, or until the set's timing policy changes. Needs
// the approver role.
func (r *Keyring) ApproveSchedule(ctx context.Context, set string) (err error) {
	defer r.trace(&ctx, "approve_schedule", set, "")(&err)
	p, err := r.principalFor(ctx, ActionApproveSchedule, set, "")
	if err != nil {
		return err
	}
	pol, err := r.Policy(set)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := Approval{Kind: ScheduleApproval, Subject: set, By: p.ID, At: r.now().UTC(), Terms: scheduleTerms(pol)}
	ev := r.event(audit.PolicyApproved, p, set, "", "")
	ev.Details = map[string]string{
		"rotation_period": pol.RotationPeriod.String(), "pre_publication": pol.PrePublication.String(),
		"grace": pol.Grace.String(), "algorithm": pol.Algorithm, "backend": pol.Backend, "terms": a.Terms,
	}
	return r.storeApproval(ctx, ev, func() error { return r.store.PutApproval(ctx, a) })
}

// WithdrawSchedule withdraws the set's standing schedule approval: Tick
// no longer rotates the set on its own and reports it when a rotation is
// due (OnTickError and an audit event, at most daily); with the default
// strict deadlines, the set's Active key stops signing at its RotateBy
// unless someone rotates it. Any approver may withdraw. Needs the approver
// role (action withdraw-schedule).
func (r *Keyring) WithdrawSchedule(ctx context.Context, set string) (err error) {
	defer r.trace(&ctx, "withdraw_schedule", set, "")(&err)
	p, err := r.principalFor(ctx, ActionWithdraw, set, "")
	if err != nil {
		return err
	}
	if _, err := r.Policy(set); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.event(audit.PolicyWithdrawn, p, set, "", "")
	return r.storeApproval(ctx, ev, func() error { return r.store.DeleteApproval(ctx, ScheduleApproval, set) })
}

// ApproveRetire records the calling approver's approval to retire a
// rotated (Retiring) data key, the host having rewrapped what it
// protected (Rewrap). Retire then retires it, by another principal.
// Needs the approver role.
func (r *Keyring) ApproveRetire(ctx context.Context, kid string) (err error) {
	defer r.trace(&ctx, "approve_retire", "", kid)(&err)
	r.mu.Lock()
	defer r.mu.Unlock()
	p, k, err := r.principalForKey(ctx, ActionApprove, kid)
	if err != nil {
		return err
	}
	if k.Purpose != Encryption || k.State != Retiring {
		return fmt.Errorf("%w: %s is a %v key in state %v; only a rotated data key awaits a retirement approval", ErrIllegalState, kid, k.Purpose, k.State)
	}
	a := Approval{Kind: RetireApproval, Subject: kid, By: p.ID, At: r.now().UTC()}
	ev := r.event(audit.KeyApproved, p, k.Set, kid, "")
	ev.Reason = "retirement approved: data rewrapped"
	return r.storeApproval(ctx, ev, func() error { return r.store.PutApproval(ctx, a) })
}

// storeApproval audits ev, then makes the change, then refreshes the
// snapshot; r.mu is held.
func (r *Keyring) storeApproval(ctx context.Context, ev audit.Event, change func() error) error {
	if err := r.emit(ctx, ev); err != nil {
		return err
	}
	if err := change(); err != nil {
		return r.failed(ctx, ev, err)
	}
	return r.refreshLocked(ctx)
}

// approval returns the standing approval of kind for subject in the
// snapshot.
func (s *snapshot) approval(kind ApprovalKind, subject string) (Approval, bool) {
	a, ok := s.approvals[ApprovalID(kind, subject)]
	return a, ok
}

// scheduleApprover returns who approved set's schedule under its current
// policy, or "".
func (r *Keyring) scheduleApprover(set string) string {
	a, ok := r.snap.Load().approval(ScheduleApproval, set)
	if !ok || a.Terms != scheduleTerms(r.sets[set]) {
		return ""
	}
	return a.By
}
