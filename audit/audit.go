package audit

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// Type names what happened.
type Type string

// The event types. Every key administration action emits one (R2.5, R6.2).
const (
	KeyCreated       Type = "key.created"
	KeyApproved      Type = "key.approved"
	KeyActivated     Type = "key.activated"
	KeyRotated       Type = "key.rotated" // a rotation step: successor published (its kid) or taking over (the old kid, now retiring)
	KeyRetired       Type = "key.retired" // gone from the JWKS; its tokens are rejected
	KeyDestroyed     Type = "key.destroyed"
	KeyCompromised   Type = "key.compromised"
	KeyFrozen        Type = "key.frozen"         // no further signature or encryption with it in this process
	KeyReviewed      Type = "key.reviewed"       // a second principal reviewed a break-glass key
	KeyReviewOverdue Type = "key.review_overdue" // a break-glass key still unreviewed past its policy delay
	KeyRewrapped     Type = "key.rewrap"         // data moved off a compromised data key
	KeyOverdue       Type = "key.overdue"        // past its target rotation date
	IncidentDeclared Type = "incident.declared"
	IncidentHook     Type = "incident.hook"   // one per hook called, or one saying none is configured
	IncidentFailed   Type = "incident.failed" // a step of an emergency rotation after the freeze failed
	RevokedKID       Type = "revocation.kid"
	RevokedJTI       Type = "revocation.jti"
	PolicyApproved   Type = "policy.approved"
	AccessDenied     Type = "access.denied"
	SecretCreated    Type = "secret.created"
	SecretRotated    Type = "secret.rotated"
	SecretRevoked    Type = "secret.revoked"

	PolicyWithdrawn    Type = "policy.withdrawn"    // a standing schedule approval withdrawn
	RotationUnapproved Type = "rotation.unapproved" // a set due for rotation has no standing approval
	UnsafeConfig       Type = "config.unsafe"       // a keyring started with an Unsafe option
)

// Outcome says whether the action took effect.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Denied  Outcome = "denied"
	Failure Outcome = "failure"
)

// Event is one audit record. It never holds key material, secret values or
// token strings: Details is for identifiers and settings only.
type Event struct {
	ID       string            `json:"id"`
	Time     time.Time         `json:"time"`
	Type     Type              `json:"type"`
	Set      string            `json:"set,omitempty"`
	KID      string            `json:"kid,omitempty"`
	Actor    string            `json:"actor"`
	Outcome  Outcome           `json:"outcome"`
	Reason   string            `json:"reason,omitempty"`
	Incident string            `json:"incident,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

// Sink receives audit events. An action whose event cannot be emitted does
// not happen: callers treat a non-nil error as a veto.
type Sink interface {
	Emit(ctx context.Context, e Event) error
}

// Validate reports whether e may be emitted: Type, Actor and Outcome are
// set and Outcome is one of Success, Denied, Failure. The error wraps
// ErrInvalidEvent. Every sink of this package calls it before writing.
func (e Event) Validate() error {
	switch {
	case e.Type == "":
		return fmt.Errorf("%w: empty type", ErrInvalidEvent)
	case e.Actor == "":
		return fmt.Errorf("%w: empty actor", ErrInvalidEvent)
	case e.Outcome == "":
		return fmt.Errorf("%w: empty outcome", ErrInvalidEvent)
	case e.Outcome != Success && e.Outcome != Denied && e.Outcome != Failure:
		return fmt.Errorf("%w: unknown outcome %q", ErrInvalidEvent, e.Outcome)
	}
	return nil
}

// clone returns a copy of e that shares no map with it.
func (e Event) clone() Event {
	e.Details = maps.Clone(e.Details)
	return e
}
