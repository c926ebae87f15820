package adminhttp

import (
	"encoding/json"
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

// ReportLine is one key of the compliance report (GET /report).
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
	// BreakGlass marks a key that an emergency rotation activated without
	// the usual approval: a second person reviews it afterwards.
	BreakGlass bool   `json:"break_glass"`
	Incident   string `json:"incident,omitempty"`
}

// Report is the answer of GET /report.
type Report struct {
	Keys []ReportLine `json:"keys"`
	// Overdue counts the keys past their target rotation date;
	// BreakGlass the keys that emergency rotations activated.
	Overdue    int `json:"overdue"`
	BreakGlass int `json:"break_glass"`
}

// NewReport joins the keyring's report lines with the key records they
// name (approvals, break-glass activation).
func NewReport(lines []keyring.KeyReport, keys []keyring.Key) Report {
	byKID := make(map[string]keyring.Key, len(keys))
	for _, k := range keys {
		byKID[k.KID] = k
	}
	out := Report{Keys: make([]ReportLine, 0, len(lines))}
	for _, l := range lines {
		k := byKID[l.KID]
		rl := ReportLine{
			KID: l.KID, Set: l.Set, Purpose: l.Purpose.String(), State: l.State.String(), Owner: l.Owner,
			CreatedAt: l.CreatedAt, RotateBy: l.RotateBy, DaysOverdue: l.DaysOverdue,
			ApprovedBy: k.ApprovedBy, Incident: k.Incident,
			BreakGlass: k.Incident != "" && k.State != keyring.Compromised && k.ApprovedBy == "",
		}
		if rl.DaysOverdue > 0 {
			out.Overdue++
		}
		if rl.BreakGlass {
			out.BreakGlass++
		}
		out.Keys = append(out.Keys, rl)
	}
	return out
}

// EmergencyResult is the answer of an emergency rotation: the compromised
// kid and the key activated in its place (absent when the compromised key
// was not its set's Active key).
type EmergencyResult struct {
	Compromised string   `json:"compromised"`
	Fresh       *KeyView `json:"fresh,omitempty"`
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
