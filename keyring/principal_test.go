package keyring_test

import (
	"errors"
	"testing"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
)

// TestTwoPersonRuleAcrossIDVariants: the principal that created a key
// cannot approve it under another case or a Unicode variant of its id, nor
// can its approver deploy it; look-alike ids are refused outright, and the
// refusal is audited. The rule holds on a second keyring over the same
// store, as after a restart (issue 14, item 4).
func TestTwoPersonRuleAcrossIDVariants(t *testing.T) {
	tests := []struct {
		name    string
		creator string
		other   string // approves the key
		want    error
	}{
		{name: "upper case initial", creator: "alice", other: "Alice", want: keyring.ErrSelfApproval},
		{name: "all upper case", creator: "Alice", other: "ALICE", want: keyring.ErrSelfApproval},
		{name: "non-ASCII case", creator: "élodie", other: "ÉLODIE", want: keyring.ErrSelfApproval},
		{name: "sharp s folds to ss", creator: "strauss", other: "STRAUß", want: keyring.ErrSelfApproval},
		{name: "full-width letters", creator: "alice", other: "ａｌｉｃｅ", want: keyring.ErrPrincipalID},
		{name: "zero-width space", creator: "alice", other: "alice\u200b", want: keyring.ErrPrincipalID},
		{name: "decomposed accent", creator: "élodie", other: "e\u0301lodie", want: keyring.ErrPrincipalID},
		{name: "Kelvin sign", creator: "kate", other: "\u212aate", want: keyring.ErrPrincipalID},
		{name: "trailing space", creator: "alice", other: "alice ", want: keyring.ErrPrincipalID},
		{name: "control character", creator: "alice", other: "alice\n", want: keyring.ErrPrincipalID},
		{name: "too long", creator: "alice", other: string(make([]byte, keyring.MaxPrincipalID+1)), want: keyring.ErrPrincipalID},
		{name: "another person", creator: "alice", other: "bob", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := keyring.NewMemStore()
			e := newEnv(t, func(c *keyring.Config) { c.Store = store })
			k, err := e.ring.Create(ctx(t, keyring.Principal{ID: tt.creator, Roles: []keyring.Role{keyring.RoleIssuer, keyring.RoleApprover}}), set)
			if err != nil {
				t.Fatalf("Create as %q: %v", tt.creator, err)
			}
			restarted := newEnv(t, func(c *keyring.Config) { c.Store = store; c.Audit = e.rec })
			err = restarted.ring.Approve(ctx(t, keyring.Principal{ID: tt.other, Roles: []keyring.Role{keyring.RoleApprover}}), k.KID)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Approve as %q of %q's key: error = %v, want %v", tt.other, tt.creator, err, tt.want)
			}
			if tt.want == nil {
				return
			}
			if got := restarted.key(t, k.KID).ApprovedBy; got != "" {
				t.Errorf("ApprovedBy = %q after the refusal, want none", got)
			}
			evs := e.rec.Events()
			if last := evs[len(evs)-1]; last.Type != audit.AccessDenied || last.KID != k.KID || last.Outcome != audit.Denied {
				t.Errorf("last event %v %s %v, want the refusal audited", last.Type, last.KID, last.Outcome)
			}
		})
	}
}

// TestApproverCannotDeployUnderAnotherCase: activation by the approver
// under another case of its id is refused.
func TestApproverCannotDeployUnderAnotherCase(t *testing.T) {
	e := newEnv(t)
	k, err := e.ring.Create(ctx(t, alice), set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ring.Approve(ctx(t, keyring.Principal{ID: "Bob", Roles: []keyring.Role{keyring.RoleApprover}}), k.KID); err != nil {
		t.Fatal(err)
	}
	err = e.ring.Activate(ctx(t, keyring.Principal{ID: "bob", Roles: []keyring.Role{keyring.RoleDeployer}}), k.KID)
	if !errors.Is(err, keyring.ErrSelfApproval) {
		t.Errorf("Activate as bob of a key Bob approved: error = %v, want ErrSelfApproval", err)
	}
}

func TestPrincipalIs(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{name: "equal", a: "alice", b: "alice", want: true},
		{name: "case", a: "alice@example.com", b: "Alice@Example.COM", want: true},
		{name: "different", a: "alice", b: "alicia", want: false},
		{name: "legacy id with a space", a: "Alice Smith", b: "alice smith", want: true},
		{name: "empty", a: "", b: "alice", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (keyring.Principal{ID: tt.a}).Is(tt.b); got != tt.want {
				t.Errorf("Principal{%q}.Is(%q) = %t, want %t", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

// TestBreakGlassReviewUnderAnotherCase: the officer who ran an emergency
// rotation cannot review its break-glass key under another case of its id,
// nor under a look-alike one.
func TestBreakGlassReviewUnderAnotherCase(t *testing.T) {
	e := newEnv(t)
	old := e.bootstrap(t)
	fresh, err := e.ring.EmergencyRotate(ctx(t, dave), old.KID, keyring.Incident{ID: "INC-case"})
	if err != nil {
		t.Fatalf("EmergencyRotate: %v", err)
	}
	tests := []struct {
		id   string
		want error
	}{
		{id: "DAVE", want: keyring.ErrSelfApproval},
		{id: "Dave", want: keyring.ErrSelfApproval},
		{id: "ｄａｖｅ", want: keyring.ErrPrincipalID},
	}
	for _, tt := range tests {
		p := keyring.Principal{ID: tt.id, Roles: []keyring.Role{keyring.RoleApprover, keyring.RoleSecurityOfficer}}
		if err := e.ring.Review(ctx(t, p), fresh.KID); !errors.Is(err, tt.want) {
			t.Errorf("Review as %q of dave's break-glass key: error = %v, want %v", tt.id, err, tt.want)
		}
	}
	if err := e.ring.Review(ctx(t, bob), fresh.KID); err != nil {
		t.Errorf("Review by bob: %v", err)
	}
}
