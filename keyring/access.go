package keyring

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
)

// Role is a security role (R6.3).
type Role string

// The roles.
const (
	RoleIssuer          Role = "issuer"           // generates keys
	RoleDeployer        Role = "deployer"         // activates (deploys) keys
	RoleApprover        Role = "approver"         // approves activation and rotation schedules
	RoleSecurityOfficer Role = "security-officer" // emergency rotation, revocation, retirement
	RoleCore            Role = "core"             // signs and reads public keys; nothing else
	RoleSystem          Role = "system"           // the scheduler, under a standing approval
)

// Principal is who acts: an id and its roles. It travels in the context
// of every administrative call (WithPrincipal).
//
// The keyring refuses (ErrPrincipalID) an id that Validate refuses, and
// compares ids with Is: two ids that differ only in case name one
// principal, so that "Alice" cannot approve what "alice" created.
type Principal struct {
	ID    string
	Roles []Role
}

// MaxPrincipalID is the longest principal id, in bytes.
const MaxPrincipalID = 256

// Has reports whether p holds role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

// Validate checks that p.ID is a canonical identifier: at most
// MaxPrincipalID bytes of the PRECIS IdentifierClass (RFC 8264: letters,
// digits and printable ASCII such as "@", ".", ":", "-"; no space, control,
// invisible or symbol character) that the UsernameCasePreserved profile of
// RFC 8265 leaves unchanged (NFC, no full-width or compatibility forms).
// So a look-alike of another id that would compare differently ("ａｌｉｃｅ",
// "alice" with a zero-width space, a decomposed accent, the Kelvin sign for
// K) is refused rather than taken for a different person.
func (p Principal) Validate() error {
	if p.ID == "" || len(p.ID) > MaxPrincipalID {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrPrincipalID, len(p.ID), MaxPrincipalID)
	}
	canon, err := precis.UsernameCasePreserved.String(p.ID)
	if err != nil {
		return fmt.Errorf("%w: %q is not a PRECIS identifier (RFC 8265): %v", ErrPrincipalID, p.ID, err)
	}
	if canon != p.ID {
		return fmt.Errorf("%w: %q is not in canonical form; use %q", ErrPrincipalID, p.ID, canon)
	}
	return nil
}

// Is reports whether id names p: the same id once both are mapped by the
// UsernameCaseMapped profile of RFC 8265 and then case-folded in full, so
// that "Alice", "ALICE" and "alice" are one principal, and so are
// "straße" and "STRASSE" (erring towards one person, which only ever
// refuses an approval). An id outside that profile (a record written
// before ids were validated) is compared case-insensitively.
func (p Principal) Is(id string) bool {
	a, errA := precis.UsernameCaseMapped.String(p.ID)
	b, errB := precis.UsernameCaseMapped.String(id)
	if errA != nil || errB != nil {
		return strings.EqualFold(p.ID, id)
	}
	fold := cases.Fold()
	return fold.String(a) == fold.String(b)
}

// SystemPrincipal is the principal Tick and Run act as.
var SystemPrincipal = Principal{ID: "system:scheduler", Roles: []Role{RoleSystem}}

type principalKey struct{}

// WithPrincipal returns a context that carries p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.ID != ""
}

// Action is an administrative operation on keys.
type Action string

// The actions.
const (
	ActionCreate          Action = "create"
	ActionApprove         Action = "approve"
	ActionActivate        Action = "activate"
	ActionRotate          Action = "rotate"
	ActionRetire          Action = "retire"
	ActionEmergency       Action = "emergency-rotate"
	ActionRevoke          Action = "revoke"
	ActionApproveSchedule Action = "approve-schedule"
	ActionWithdraw        Action = "withdraw-schedule" // withdraw a standing schedule approval
	ActionDestroy         Action = "destroy"
	ActionReview          Action = "review"
	ActionRead            Action = "read"
)

// Authorizer decides whether a principal may perform an action on a key
// set. A nil error allows; an error (wrapping ErrForbidden) denies.
//
// Every call names the set the action applies to: the set of the key an
// action names (a runtime secret's set is SecretSetPrefix + its name); a
// PurposeAuthorizer is also told the purpose of its keys. The empty set means
// every set (Keys and Report without a set filter, RevokeJTI without a
// set) and is also what an action on an unknown kid is authorized
// against, so that a principal confined to its sets gets the same answer
// for a kid of another set and for a kid that does not exist.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, a Action, set string) error
}

// PurposeAuthorizer is an Authorizer that is also told the purpose of
// the keys an action applies to (Signing, Encryption, Secret; zero for the
// empty set, which spans them all). When Config.Authorizer implements it,
// the keyring calls AuthorizePurpose instead of Authorize.
type PurposeAuthorizer interface {
	Authorizer
	AuthorizePurpose(ctx context.Context, p Principal, a Action, set string, purpose Purpose) error
}

// authorizeSet asks the Authorizer whether p may do a on set, whose keys
// have purpose.
func (r *Keyring) authorizeSet(ctx context.Context, p Principal, a Action, set string, purpose Purpose) error {
	if pa, ok := r.authz.(PurposeAuthorizer); ok {
		return pa.AuthorizePurpose(ctx, p, a, set, purpose)
	}
	return r.authz.Authorize(ctx, p, a, set)
}

// purposeOf is the purpose of set's keys: its policy's, Secret for a
// runtime secret's set, zero for the empty or an unknown set.
func (r *Keyring) purposeOf(set string) Purpose {
	if pol, ok := r.sets[set]; ok {
		return pol.Purpose
	}
	if strings.HasPrefix(set, SecretSetPrefix) {
		return Secret
	}
	return 0
}

// RoleAuthorizer is the default Authorizer: each action needs one of these
// roles.
//
//	create                      issuer
//	rotate                      issuer, system
//	approve, approve-schedule   approver
//	withdraw-schedule           approver
//	activate                    deployer, system
//	retire                      security-officer, system
//	destroy, emergency-rotate   security-officer
//	revoke                      security-officer
//	review                      approver, security-officer (never the one who declared the incident)
//	read                        any role
type RoleAuthorizer struct{}

var defaultRoles = map[Action][]Role{
	ActionCreate:          {RoleIssuer},
	ActionRotate:          {RoleIssuer, RoleSystem},
	ActionApprove:         {RoleApprover},
	ActionApproveSchedule: {RoleApprover},
	ActionWithdraw:        {RoleApprover},
	ActionActivate:        {RoleDeployer, RoleSystem},
	ActionRetire:          {RoleSecurityOfficer, RoleSystem},
	ActionDestroy:         {RoleSecurityOfficer},
	ActionEmergency:       {RoleSecurityOfficer},
	ActionRevoke:          {RoleSecurityOfficer},
	ActionReview:          {RoleApprover, RoleSecurityOfficer},
	ActionRead:            {RoleIssuer, RoleDeployer, RoleApprover, RoleSecurityOfficer, RoleCore, RoleSystem},
}

// Authorize allows p if it holds one of the roles the table names for a.
func (RoleAuthorizer) Authorize(_ context.Context, p Principal, a Action, _ string) error {
	for _, r := range defaultRoles[a] {
		if p.Has(r) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s may not %s", ErrForbidden, p.ID, a)
}

// principalForKey authorizes ctx's principal to do a on the key kid and
// returns the principal and the key's record. The principal is checked
// before the key is looked up; the action is then authorized on the key's
// set, or, for an unknown kid, on the empty set. A denial, and an unknown
// kid, are audited as access.denied alike, and a denial returns the same
// error whether the kid exists in another set or not at all: no answer
// tells a principal about keys outside its sets.
func (r *Keyring) principalForKey(ctx context.Context, a Action, kid string) (Principal, Key, error) {
	p, err := r.caller(ctx, a, "", kid)
	if err != nil {
		return p, Key{}, err
	}
	k, err := r.store.Get(ctx, kid)
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return p, Key{}, fmt.Errorf("keyring: look up %s: %w", kid, err)
	}
	if aerr := r.authorizeSet(ctx, p, a, k.Set, k.Purpose); aerr != nil {
		refusal := fmt.Errorf("%w: %s may not %s key %s", ErrForbidden, p.ID, a, kid)
		return p, Key{}, r.refuse(ctx, p, a, k.Set, kid, aerr, refusal)
	}
	if !found {
		return p, Key{}, r.denied(ctx, p, a, "", kid, fmt.Errorf("%w: %s", ErrNotFound, kid))
	}
	return p, k, nil
}
