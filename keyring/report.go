package keyring

import (
	"context"
	"sync"
	"time"
)

// KeyReport is one line of the compliance report (R2.4, R3.1, R3.2).
type KeyReport struct {
	KID         string
	Set         string
	Purpose     Purpose
	State       State
	Owner       string
	CreatedAt   time.Time
	Age         time.Duration
	RotateBy    time.Time
	DaysOverdue int // whole days past RotateBy for a key still in use; 0 otherwise

	Standby       bool   // the set's standby key for emergency rotation
	Incident      string // the incident that compromised or created it
	ReviewPending bool   // a break-glass key no second principal has reviewed (Review)
	NeedsRewrap   bool   // a Retiring or Compromised data key: its ciphertexts still need Rewrap

	// ScheduleApprovedBy and ScheduleApprovedAt: the standing approval of
	// the set's scheduled rotation under its current policy (empty: Tick
	// does not rotate the set on its own).
	ScheduleApprovedBy string
	ScheduleApprovedAt time.Time
	// UnsafeAllowOverdue: the keyring runs with Config.UnsafeAllowOverdue:
	// past its RotateBy, this key would still sign or encrypt.
	UnsafeAllowOverdue bool
	// RewrapPendingSince: for a rotated data key (decrypt-only, never
	// retired on a schedule), when it stopped encrypting: its data waits to
	// be rewrapped (Rewrap) before an approved Retire. RetireApprovedBy:
	// who approved that retirement (ApproveRetire).
	RewrapPendingSince time.Time
	RetireApprovedBy   string
}

// Report lists every key with its owner, age, target rotation date, state
// and how many days it is overdue, its set's standing schedule approval,
// and flags what is left to do: break-glass keys awaiting Review, data
// keys whose ciphertexts still need Rewrap (since when, for a rotated
// one). For a host to render. Needs a principal allowed to read every
// set.
func (r *Keyring) Report(ctx context.Context) ([]KeyReport, error) {
	keys, err := r.Keys(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := make([]KeyReport, 0, len(keys))
	for _, k := range keys {
		kr := KeyReport{
			KID: k.KID, Set: k.Set, Purpose: k.Purpose, State: k.State, Owner: k.Owner,
			CreatedAt: k.CreatedAt, Age: now.Sub(k.CreatedAt), RotateBy: k.RotateBy,
			Standby: k.Standby, Incident: k.Incident, ReviewPending: k.reviewPending(),
			NeedsRewrap: k.Purpose == Encryption && (k.State == Retiring || k.State == Compromised),
		}
		if (k.State == Active || k.State == Pending) && now.After(k.RotateBy) {
			kr.DaysOverdue = int(now.Sub(k.RotateBy) / Day)
		}
		if by := r.scheduleApprover(k.Set); by != "" {
			a, _ := r.snap.Load().approval(ScheduleApproval, k.Set)
			kr.ScheduleApprovedBy, kr.ScheduleApprovedAt = by, a.At
		}
		kr.UnsafeAllowOverdue = r.unsafeOver
		if k.Purpose == Encryption && k.State == Retiring {
			kr.RewrapPendingSince = k.RetiringAt
			if a, ok := r.snap.Load().approval(RetireApproval, k.KID); ok {
				kr.RetireApprovedBy = a.By
			}
		}
		out = append(out, kr)
	}
	return out, nil
}

// IssuedJTIIndex remembers the jti and expiry of every token an Issuer
// mints, per kid, until the token expires: it is the Issuer's
// signer.IssuedTokens recorder and the keyring's JTILister, so that
// emergency rotation can revoke a compromised key's tokens one by one.
type IssuedJTIIndex struct {
	now func() time.Time
	mu  sync.Mutex
	by  map[string]map[string]time.Time // kid -> jti -> exp

	inserts int
}

// pruneEvery is how many inserts pass between sweeps of expired entries.
const pruneEvery = 4096

func (x *IssuedJTIIndex) pruneLocked() {
	now := x.now()
	for kid, m := range x.by {
		for j, exp := range m {
			if !exp.After(now) {
				delete(m, j)
			}
		}
		if len(m) == 0 {
			delete(x.by, kid)
		}
	}
}

// NewIssuedJTIIndex returns an empty index; now defaults to time.Now.
func NewIssuedJTIIndex(now func() time.Time) *IssuedJTIIndex {
	if now == nil {
		now = time.Now
	}
	return &IssuedJTIIndex{now: now, by: make(map[string]map[string]time.Time)}
}

// Issued records a minted token (signer.IssuedTokens).
func (x *IssuedJTIIndex) Issued(_ context.Context, kid, jti string, expiresAt time.Time) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.by[kid]
	if m == nil {
		m = make(map[string]time.Time)
		x.by[kid] = m
	}
	m[jti] = expiresAt
	if x.inserts++; x.inserts%pruneEvery == 0 {
		x.pruneLocked()
	}
	return nil
}

// IssuedJTIs lists the unexpired tokens of kid (JTILister).
func (x *IssuedJTIIndex) IssuedJTIs(_ context.Context, kid string) (map[string]time.Time, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	out := make(map[string]time.Time)
	for j, exp := range x.by[kid] {
		if exp.After(now) {
			out[j] = exp
		}
	}
	return out, nil
}
