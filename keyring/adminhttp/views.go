package adminhttp

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/keyring"
)

// KeyView is a key record as the API (and the tokenkms CLI's --json)
// shows it: every field of keyring.Key but the backend reference, the
// public key as a JWK, zero times left out.
type KeyView struct {
	KID           string          `json:"kid"`
	Set           string          `json:"set"`
	Purpose       string          `json:"purpose"`
	Algorithm     string          `json:"algorithm"`
	State         string          `json:"state"`
	Owner         string          `json:"owner"`
	CreatedBy     string          `json:"created_by,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	RotateBy      time.Time       `json:"rotate_by,omitzero"`
	ApprovedBy    string          `json:"approved_by,omitempty"`
	ApprovedAt    time.Time       `json:"approved_at,omitzero"`
	ActivateAt    time.Time       `json:"activate_at,omitzero"`
	ActivatedAt   time.Time       `json:"activated_at,omitzero"`
	RetiringAt    time.Time       `json:"retiring_at,omitzero"`
	GraceUntil    time.Time       `json:"grace_until,omitzero"`
	RetiredAt     time.Time       `json:"retired_at,omitzero"`
	CompromisedAt time.Time       `json:"compromised_at,omitzero"`
	DestroyedAt   time.Time       `json:"destroyed_at,omitzero"`
	Incident      string          `json:"incident,omitempty"`
	Backend       string          `json:"backend"`
	Version       int64           `json:"version"`
	PublicJWK     json.RawMessage `json:"public_jwk,omitempty"`
}

// NewKeyView converts a key record. A public key that cannot be shown as a
// JWK is left out.
func NewKeyView(k keyring.Key) KeyView {
	v := KeyView{
		KID: k.KID, Set: k.Set, Purpose: k.Purpose.String(), Algorithm: k.Algorithm, State: k.State.String(),
		Owner: k.Owner, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, RotateBy: k.RotateBy,
		ApprovedBy: k.ApprovedBy, ApprovedAt: k.ApprovedAt, ActivateAt: k.ActivateAt, ActivatedAt: k.ActivatedAt,
		RetiringAt: k.RetiringAt, GraceUntil: k.GraceUntil, RetiredAt: k.RetiredAt, CompromisedAt: k.CompromisedAt,
		DestroyedAt: k.DestroyedAt, Incident: k.Incident, Backend: k.Backend, Version: k.Version,
	}
	if k.Public != nil {
		if jk, err := jwk.Import(k.Public); err == nil {
			v.PublicJWK, _ = json.Marshal(jk)
		}
	}
	return v
}

// KeyList is the answer of GET /keys.
type KeyList struct {
	Keys []KeyView `json:"keys"`
}

// NewKeyList converts key records.
func NewKeyList(keys []keyring.Key) KeyList {
	out := KeyList{Keys: make([]KeyView, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, NewKeyView(k))
	}
	return out
}

// ReportLine is one key of the compliance report (GET /report): the
// keyring's KeyReport with the key's approver.
type ReportLine struct {
	KID         string    `json:"kid"`
	Set         string    `json:"set"`
	Purpose     string    `json:"purpose"`
	State       string    `json:"state"`
	Owner       string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
	RotateBy    time.Time `json:"rotate_by,omitzero"`
	DaysOverdue int       `json:"days_overdue"`
	ApprovedBy  string    `json:"approved_by,omitempty"`
	Incident    string    `json:"incident,omitempty"`
	// Standby marks the set's standby key for an emergency rotation.
	Standby bool `json:"standby"`
	// ReviewPending marks a break-glass key (activated by an emergency
	// rotation without a standby) that no second principal has reviewed
	// yet (POST /keys/{kid}/review).
	ReviewPending bool `json:"review_pending"`
	// NeedsRewrap marks a Retiring or Compromised data key whose
	// ciphertexts still need Rewrap; RewrapPendingSince is when a rotated
	// one stopped encrypting, RetireApprovedBy who approved its
	// retirement (POST /keys/{kid}/approve-retire).
	NeedsRewrap        bool      `json:"needs_rewrap"`
	RewrapPendingSince time.Time `json:"rewrap_pending_since,omitzero"`
	RetireApprovedBy   string    `json:"retire_approved_by,omitempty"`
	// ScheduleApprovedBy and ScheduleApprovedAt: the standing approval of
	// the key's set's scheduled rotations, empty when there is none.
	ScheduleApprovedBy string    `json:"schedule_approved_by,omitempty"`
	ScheduleApprovedAt time.Time `json:"schedule_approved_at,omitzero"`
	// UnsafeAllowOverdue: the keyring runs with
	// keyring.Config.UnsafeAllowOverdue, so this key would still sign or
	// encrypt past its RotateBy.
	UnsafeAllowOverdue bool `json:"unsafe_allow_overdue,omitempty"`
}

// SetSchedule is the standing approval of one set's scheduled rotations.
type SetSchedule struct {
	Set        string    `json:"set"`
	ApprovedBy string    `json:"approved_by,omitempty"` // empty: none, its rotations need an operator
	ApprovedAt time.Time `json:"approved_at,omitzero"`
}

// Report is the answer of GET /report.
type Report struct {
	Keys []ReportLine `json:"keys"`
	// Schedules lists, per set that holds keys, its standing schedule
	// approval, sorted by set.
	Schedules []SetSchedule `json:"schedules"`
	// Overdue counts the keys past their target rotation date;
	// ReviewPending the break-glass keys awaiting review; NeedsRewrap the
	// data keys whose ciphertexts still need Rewrap.
	Overdue       int `json:"overdue"`
	ReviewPending int `json:"review_pending"`
	NeedsRewrap   int `json:"needs_rewrap"`
}

// NewReport joins the keyring's report lines with the key records they
// name (the approver of each key).
func NewReport(lines []keyring.KeyReport, keys []keyring.Key) Report {
	approver := make(map[string]string, len(keys))
	for _, k := range keys {
		approver[k.KID] = k.ApprovedBy
	}
	out := Report{Keys: make([]ReportLine, 0, len(lines)), Schedules: []SetSchedule{}}
	sets := map[string]bool{}
	for _, l := range lines {
		rl := ReportLine{
			KID: l.KID, Set: l.Set, Purpose: l.Purpose.String(), State: l.State.String(), Owner: l.Owner,
			CreatedAt: l.CreatedAt, RotateBy: l.RotateBy, DaysOverdue: l.DaysOverdue,
			ApprovedBy: approver[l.KID], Incident: l.Incident, Standby: l.Standby, ReviewPending: l.ReviewPending,
			NeedsRewrap: l.NeedsRewrap, RewrapPendingSince: l.RewrapPendingSince, RetireApprovedBy: l.RetireApprovedBy,
			ScheduleApprovedBy: l.ScheduleApprovedBy, ScheduleApprovedAt: l.ScheduleApprovedAt,
			UnsafeAllowOverdue: l.UnsafeAllowOverdue,
		}
		if rl.DaysOverdue > 0 {
			out.Overdue++
		}
		if rl.ReviewPending {
			out.ReviewPending++
		}
		if rl.NeedsRewrap {
			out.NeedsRewrap++
		}
		if !sets[l.Set] {
			sets[l.Set] = true
			out.Schedules = append(out.Schedules, SetSchedule{Set: l.Set, ApprovedBy: l.ScheduleApprovedBy, ApprovedAt: l.ScheduleApprovedAt})
		}
		out.Keys = append(out.Keys, rl)
	}
	slices.SortFunc(out.Schedules, func(a, b SetSchedule) int { return strings.Compare(a.Set, b.Set) })
	return out
}

// EmergencyResult is the answer of an emergency rotation: the compromised
// kid and the key activated in its place (absent when the compromised key
// was not its set's Active key).
type EmergencyResult struct {
	Compromised string   `json:"compromised"`
	Fresh       *KeyView `json:"fresh,omitempty"`
}

// NewEmergencyResult describes the emergency rotation of kid, fresh being
// the key it activated (zero when none).
func NewEmergencyResult(kid string, fresh keyring.Key) EmergencyResult {
	res := EmergencyResult{Compromised: kid}
	if fresh.KID != "" {
		v := NewKeyView(fresh)
		res.Fresh = &v
	}
	return res
}

// SecretView is a secret version without its value.
type SecretView struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	KID       string    `json:"kid"`
	CreatedAt time.Time `json:"created_at"`
	RotateBy  time.Time `json:"rotate_by"`
}

// NewSecretView describes a secret version; the value is never read.
func NewSecretView(v keyring.SecretValue) SecretView {
	return SecretView{Name: v.Name(), Version: v.Version(), KID: v.KID(), CreatedAt: v.CreatedAt(), RotateBy: v.RotateBy()}
}

// AuditResult is the answer of GET /audit/verify.
type AuditResult struct {
	OK      bool   `json:"ok"`
	Records int    `json:"records"`
	Broken  string `json:"broken,omitempty"` // where and why the chain breaks
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Key is set when an emergency rotation activated a fresh key before
	// a later step failed.
	Key *KeyView `json:"key,omitempty"`
}

// ImportRequest is the body of POST /sets/{set}/import: exactly one of
// PrivateKey (PEM or JWK) and Ref.
type ImportRequest struct {
	KID        string    `json:"kid,omitempty"`
	PrivateKey string    `json:"private_key,omitempty"`
	Ref        string    `json:"ref,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
}

// EmergencyRequest is the body of POST /keys/{kid}/emergency.
type EmergencyRequest struct {
	Incident string `json:"incident"`
	Reason   string `json:"reason,omitempty"`
	Severity string `json:"severity,omitempty"`
}

// RevokeJTIRequest is the body of POST /revocations/jti. Until defaults
// to DefaultJTIRevocation from now.
type RevokeJTIRequest struct {
	JTI   string    `json:"jti"`
	Until time.Time `json:"until,omitzero"`
}

// RevokeKIDRequest is the body of POST /revocations/kid: the tokens of
// KID issued before IssuedBefore (default now) are rejected.
type RevokeKIDRequest struct {
	KID          string    `json:"kid"`
	IssuedBefore time.Time `json:"issued_before,omitzero"`
}

// SecretRotateRequest is the body of POST /secrets/{name}/rotate: the new
// value, base64 (standard encoding), and whether the old one leaked.
type SecretRotateRequest struct {
	Value []byte `json:"value"`
	Leak  bool   `json:"leak,omitempty"`
}

// DefaultJTIRevocation is how long a jti revocation lasts when its request
// gives no end: well beyond the default maximum token lifetime (one
// hour); a request for a set whose tokens live longer gives Until.
const DefaultJTIRevocation = 24 * time.Hour
