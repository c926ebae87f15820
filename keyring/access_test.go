package keyring_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
)

// adminOp is one administrative operation, with what it needs to exist
// before it runs.
type adminOp struct {
	name    string
	allowed []keyring.Role
	setup   func(t *testing.T, e *env) string // returns the kid or set operated on
	call    func(ctx context.Context, e *env, target string) error
}

func pendingKey(t *testing.T, e *env) string {
	t.Helper()
	k, err := e.ring.Create(ctx(t, alice), set)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return k.KID
}

var adminOps = []adminOp{
	{"create", []keyring.Role{keyring.RoleIssuer},
		func(*testing.T, *env) string { return set },
		func(c context.Context, e *env, s string) error { _, err := e.ring.Create(c, s); return err }},
	{"approve", []keyring.Role{keyring.RoleApprover},
		pendingKey,
		func(c context.Context, e *env, kid string) error { return e.ring.Approve(c, kid) }},
	{"activate", []keyring.Role{keyring.RoleDeployer, keyring.RoleSystem},
		func(t *testing.T, e *env) string {
			kid := pendingKey(t, e)
			if err := e.ring.Approve(ctx(t, bob), kid); err != nil {
				t.Fatalf("Approve: %v", err)
			}
			return kid
		},
		func(c context.Context, e *env, kid string) error { return e.ring.Activate(c, kid) }},
	{"rotate", []keyring.Role{keyring.RoleIssuer, keyring.RoleSystem},
		func(t *testing.T, e *env) string { e.bootstrap(t); return set },
		func(c context.Context, e *env, s string) error { _, err := e.ring.Rotate(c, s); return err }},
	{"retire", []keyring.Role{keyring.RoleSecurityOfficer, keyring.RoleSystem},
		pendingKey,
		func(c context.Context, e *env, kid string) error { return e.ring.Retire(c, kid) }},
	{"destroy", []keyring.Role{keyring.RoleSecurityOfficer},
		func(t *testing.T, e *env) string {
			kid := pendingKey(t, e)
			if err := e.ring.Retire(ctx(t, dave), kid); err != nil {
				t.Fatalf("Retire: %v", err)
			}
			return kid
		},
		func(c context.Context, e *env, kid string) error { return e.ring.Destroy(c, kid) }},
	{"emergency-rotate", []keyring.Role{keyring.RoleSecurityOfficer},
		func(t *testing.T, e *env) string { return e.bootstrap(t).KID },
		func(c context.Context, e *env, kid string) error {
			_, err := e.ring.EmergencyRotate(c, kid, keyring.Incident{ID: "INC-m"})
			return err
		}},
	{"revoke-jti", []keyring.Role{keyring.RoleSecurityOfficer},
		func(*testing.T, *env) string { return "jti-1" },
		func(c context.Context, e *env, jti string) error { return e.ring.RevokeJTI(c, jti, t0.Add(time.Hour)) }},
	{"revoke-kid", []keyring.Role{keyring.RoleSecurityOfficer},
		func(t *testing.T, e *env) string { return e.bootstrap(t).KID },
		func(c context.Context, e *env, kid string) error { return e.ring.RevokeKID(c, kid, t0) }},
	{"approve-schedule", []keyring.Role{keyring.RoleApprover},
		func(*testing.T, *env) string { return set },
		func(c context.Context, e *env, s string) error { return e.ring.ApproveSchedule(c, s) }},
	{"read", []keyring.Role{keyring.RoleIssuer, keyring.RoleDeployer, keyring.RoleApprover, keyring.RoleSecurityOfficer, keyring.RoleCore, keyring.RoleSystem},
		func(*testing.T, *env) string { return set },
		func(c context.Context, e *env, s string) error { _, err := e.ring.Report(c); return err }},
}

var allRoles = []keyring.Role{keyring.RoleIssuer, keyring.RoleDeployer, keyring.RoleApprover, keyring.RoleSecurityOfficer, keyring.RoleCore, keyring.RoleSystem, "auditor"}

// TestAccessMatrix: every administrative operation × every role (and no
// principal at all): zero unauthorised successes, each denial audited with
// the actor and the action, and nothing changed by a denied call.
func TestAccessMatrix(t *testing.T) {
	for _, op := range adminOps {
		for _, role := range append(allRoles, "") {
			name := op.name + "/" + string(role)
			if role == "" {
				name = op.name + "/no-principal"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				target := op.setup(t, e)
				before := e.snapshot(t)
				events := e.rec.Len()
				p := keyring.Principal{ID: "mallory-" + string(role), Roles: []keyring.Role{role}}
				c := ctx(t, p)
				if role == "" {
					c = context.Background()
				}
				err := op.call(c, e, target)
				if role != "" && slices.Contains(op.allowed, role) {
					if err != nil {
						t.Fatalf("%s by %s: %v, want success", op.name, role, err)
					}
					return
				}
				want := keyring.ErrForbidden
				if role == "" {
					want = keyring.ErrNoPrincipal
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s by %q: %v, want %v", op.name, role, err, want)
				}
				if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
					t.Errorf("denied %s changed the keys (-before +after):\n%s", op.name, diff)
				}
				got := e.rec.Events()[events:]
				if len(got) != 1 || got[0].Type != audit.AccessDenied || got[0].Outcome != audit.Denied ||
					got[0].Details["action"] == "" || !strings.HasPrefix(got[0].Actor, "mallory-") && role != "" {
					t.Errorf("denial audit = %+v, want one access.denied event naming actor and action", got)
				}
			})
		}
	}
}

// snapshot is the key state as a comparable value.
func (e *env) snapshot(t *testing.T) []string {
	t.Helper()
	keys, err := e.ring.Keys(ctx(t, core), keyring.Filter{})
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.KID+" "+k.State.String()+" "+k.ApprovedBy)
	}
	return out
}

// TestTwoPersonRule: the principal that created or approved a change cannot
// approve or deploy it, whatever roles it holds.
func TestTwoPersonRule(t *testing.T) {
	all := []keyring.Role{keyring.RoleIssuer, keyring.RoleApprover, keyring.RoleDeployer}
	root := keyring.Principal{ID: "root", Roles: all}
	e := newEnv(t)
	k, err := e.ring.Create(ctx(t, root), set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ring.Approve(ctx(t, root), k.KID); !errors.Is(err, keyring.ErrSelfApproval) {
		t.Errorf("creator approves: %v, want ErrSelfApproval", err)
	}
	other := keyring.Principal{ID: "other", Roles: all}
	if err := e.ring.Approve(ctx(t, other), k.KID); err != nil {
		t.Fatalf("Approve by another: %v", err)
	}
	if err := e.ring.Activate(ctx(t, other), k.KID); !errors.Is(err, keyring.ErrSelfApproval) {
		t.Errorf("approver deploys: %v, want ErrSelfApproval", err)
	}
	if err := e.ring.Activate(ctx(t, root), k.KID); err != nil {
		t.Errorf("creator deploys another's approval: %v", err)
	}
}

// TestAuditFailureEveryOperation: for every operation and every event it
// emits, a sink that fails on that event makes the operation fail with
// ErrAudit, and leaves the keys as they were — except that an emergency
// rotation keeps what it already did (the key stays compromised and
// frozen: fail closed).
func TestAuditFailureEveryOperation(t *testing.T) {
	for _, op := range adminOps {
		allowed := keyring.Principal{ID: "ok-" + string(op.allowed[0]), Roles: op.allowed[:1]}
		// How many events does a successful run emit?
		e := newEnv(t)
		target := op.setup(t, e)
		n := e.rec.Len()
		if err := op.call(ctx(t, allowed), e, target); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		emitted := e.rec.Len() - n
		for i := range emitted {
			t.Run(op.name+"/event-"+string(rune('0'+i)), func(t *testing.T) {
				e := newEnv(t)
				target := op.setup(t, e)
				before := e.snapshot(t)
				e.rec.FailAfter(i)
				err := op.call(ctx(t, allowed), e, target)
				if !errors.Is(err, keyring.ErrAudit) {
					t.Fatalf("%s with sink failing on event %d: %v, want ErrAudit", op.name, i, err)
				}
				e.rec.FailAfter(-1)
				after := e.snapshot(t)
				if op.name == "emergency-rotate" && i >= 1 {
					// The freeze happened before the first event and holds.
					if s, err := e.ring.Signer(context.Background(), set); err == nil && s.KID() == target {
						if _, err := s.Sign(context.Background(), []byte("x")); !errors.Is(err, keyring.ErrFrozen) {
							t.Errorf("compromised key signs after a failed emergency rotation: %v", err)
						}
					}
					// Events: incident.declared, key.frozen, key.compromised, ...
					if k := e.key(t, target); i >= 3 && k.State != keyring.Compromised {
						t.Errorf("compromise recorded, then audit failed: key is %v, want still compromised", k.State)
					}
					return
				}
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("%s changed keys although its audit failed (-before +after):\n%s", op.name, diff)
				}
			})
		}
	}
}

// TestAuditTrailChained is T5 end to end: after create, rotate, revoke and
// emergency rotation, the hash-chained trail holds the expected events in
// order and verifies; no event carries key material or a token.
func TestAuditTrailChained(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	chain, err := audit.OpenChain(path)
	if err != nil {
		t.Fatalf("OpenChain: %v", err)
	}
	rec := audit.NewRecorder()
	e := newEnv(t, func(c *keyring.Config) { c.Audit = audit.Fanout(rec, chain) })
	e.rec = rec
	first := e.bootstrap(t)
	iss, err := signer.NewIssuer(e.ring, signer.IssuerConfig{Set: set, Issuer: "https://core.test", Audience: []string{"api"},
		DefaultLifetime: time.Hour, MaxLifetime: time.Hour, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue(context.Background(), tokenkms.Claims{Subject: "s", ClientID: "c", ID: "jti-secret-token-id"})
	if err != nil {
		t.Fatal(err)
	}
	next, err := e.ring.Rotate(ctx(t, alice), set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ring.Approve(ctx(t, bob), next.KID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(e.pol.PrePublication)
	if err := e.ring.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.ring.RevokeJTI(ctx(t, dave), "jti-secret-token-id", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.ring.Retire(ctx(t, dave), first.KID); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.ring.EmergencyRotate(ctx(t, dave), next.KID, keyring.Incident{ID: "INC-T5", Reason: "leak"})
	if err != nil {
		t.Fatal(err)
	}
	if err := chain.Close(); err != nil {
		t.Fatal(err)
	}

	type line struct {
		Type  audit.Type
		KID   string
		Actor string
	}
	var got []line
	for _, ev := range rec.Events() {
		got = append(got, line{ev.Type, ev.KID, ev.Actor})
	}
	sys := keyring.SystemPrincipal.ID
	want := []line{
		{audit.KeyCreated, first.KID, "alice"}, {audit.KeyApproved, first.KID, "bob"}, {audit.KeyActivated, first.KID, "carol"},
		{audit.KeyCreated, next.KID, "alice"}, {audit.KeyRotated, next.KID, "alice"}, {audit.KeyApproved, next.KID, "bob"},
		{audit.KeyActivated, next.KID, sys}, {audit.KeyRotated, first.KID, sys},
		{audit.RevokedJTI, "", "dave"}, {audit.KeyRetired, first.KID, "dave"},
		{audit.IncidentDeclared, next.KID, "dave"}, {audit.KeyFrozen, next.KID, "dave"}, {audit.KeyCompromised, next.KID, "dave"},
		{audit.KeyCreated, fresh.KID, "dave"}, {audit.KeyActivated, fresh.KID, "dave"}, {audit.KeyRotated, next.KID, "dave"},
		{audit.RevokedKID, next.KID, "dave"}, {audit.IncidentHook, next.KID, "dave"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit trail (-want +got):\n%s", diff)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := audit.Verify(f)
	if err != nil || n != len(want) {
		t.Errorf("chain Verify = %d, %v; want %d records and no error", n, err, len(want))
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := e.ring.Keys(ctx(t, core), keyring.Filter{})
	secrets := []string{tok, strings.Split(tok, ".")[2]}
	for _, k := range keys {
		if !k.BackendRef.IsZero() {
			secrets = append(secrets, k.BackendRef.Reveal())
		}
		if pub, ok := k.Public.(*ecdsa.PublicKey); ok {
			b, _ := json.Marshal(pub.X.String())
			secrets = append(secrets, strings.Trim(string(b), `"`))
		}
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("audit trail contains key material or a token (%.12s...)", s)
		}
	}
}
