package keyring

import (
	"context"
	"fmt"
	"slices"
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
type Principal struct {
	ID    string
	Roles []Role
}

// Has reports whether p holds role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

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
	ActionDestroy         Action = "destroy"
	ActionRead            Action = "read"
)

// Authorizer decides whether a principal may perform an action on a key
// set. A nil error allows; an error (wrapping ErrForbidden) denies.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, a Action, set string) error
}

// RoleAuthorizer is the default Authorizer: each action needs one of these
// roles.
//
//	create                      issuer
//	rotate                      issuer, system
//	approve, approve-schedule   approver
//	activate                    deployer, system
//	retire                      security-officer, system
//	destroy, emergency-rotate   security-officer
//	revoke                      security-officer
//	read                        any role
type RoleAuthorizer struct{}

var defaultRoles = map[Action][]Role{
	ActionCreate:          {RoleIssuer},
	ActionRotate:          {RoleIssuer, RoleSystem},
	ActionApprove:         {RoleApprover},
	ActionApproveSchedule: {RoleApprover},
	ActionActivate:        {RoleDeployer, RoleSystem},
	ActionRetire:          {RoleSecurityOfficer, RoleSystem},
	ActionDestroy:         {RoleSecurityOfficer},
	ActionEmergency:       {RoleSecurityOfficer},
	ActionRevoke:          {RoleSecurityOfficer},
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
