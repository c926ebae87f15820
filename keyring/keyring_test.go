package keyring_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/jwks"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

var (
	t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

	alice = keyring.Principal{ID: "alice", Roles: []keyring.Role{keyring.RoleIssuer}}
	bob   = keyring.Principal{ID: "bob", Roles: []keyring.Role{keyring.RoleApprover}}
	carol = keyring.Principal{ID: "carol", Roles: []keyring.Role{keyring.RoleDeployer}}
	dave  = keyring.Principal{ID: "dave", Roles: []keyring.Role{keyring.RoleSecurityOfficer}}
	core  = keyring.Principal{ID: "core", Roles: []keyring.Role{keyring.RoleCore}}
)

const set = "access-tokens"

type env struct {
	ring  *keyring.Keyring
	clock *keyringtest.Clock
	rec   *audit.Recorder
	revs  verifier.RevocationList
	pol   keyring.SetPolicy
	idx   *keyring.IssuedJTIIndex // the jti index, where the test configures one
}

func newEnv(t *testing.T, mutate ...func(*keyring.Config)) *env {
	t.Helper()
	e := &env{clock: keyringtest.NewClock(t0), rec: audit.NewRecorder()}
	e.revs = verifier.NewMemoryRevocationList(e.clock.Now)
	cfg := keyring.Config{
		Audit:       e.rec,
		Revocations: e.revs,
		Now:         e.clock.Now,
		Sets:        []keyring.SetPolicy{{Name: set, Owner: "team-identity"}},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ring, err := keyring.New(ctx(t, keyring.Principal{}), cfg)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	e.ring = ring
	e.pol, _ = ring.Policy(set)
	return e
}

func ctx(t *testing.T, p keyring.Principal) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if p.ID == "" {
		return c
	}
	return keyring.WithPrincipal(c, p)
}

// bootstrap creates, approves and activates the set's first key.
func (e *env) bootstrap(t *testing.T) keyring.Key {
	t.Helper()
	return e.bootstrapSet(t, set)
}

func (e *env) key(t *testing.T, kid string) keyring.Key {
	t.Helper()
	k, err := e.ring.Key(ctx(t, core), kid)
	if err != nil {
		t.Fatalf("Key(%s): %v", kid, err)
	}
	return k
}

// nonStandby lists the set's keys in the given states (all without one),
// leaving out its standby key.
func (e *env) nonStandby(t *testing.T, states ...keyring.State) []keyring.Key {
	t.Helper()
	keys, err := e.ring.Keys(ctx(t, core), keyring.Filter{Set: set, States: states})
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	return slices.DeleteFunc(keys, func(k keyring.Key) bool { return k.Standby })
}

func (e *env) types() []audit.Type {
	var out []audit.Type
	for _, ev := range e.rec.Events() {
		out = append(out, ev.Type)
	}
	return out
}

func TestPolicyTimingRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		pol  keyring.SetPolicy
		want error
		rule string
	}{
		{"rotation over 90 days", keyring.SetPolicy{Name: "s", Owner: "o", RotationPeriod: 91 * keyring.Day}, keyring.ErrPolicy, "exceeds the maximum"},
		{"data key over 180 days", keyring.SetPolicy{Name: "s", Owner: "o", Purpose: keyring.Encryption, RotationPeriod: 181 * keyring.Day}, keyring.ErrPolicy, "exceeds the maximum"},
		{"legal limit shorter", keyring.SetPolicy{Name: "s", Owner: "o", Purpose: keyring.Encryption, LegalMaxRotation: 30 * keyring.Day, RotationPeriod: 31 * keyring.Day}, keyring.ErrPolicy, "exceeds the maximum"},
		{"grace too short", keyring.SetPolicy{Name: "s", Owner: "o", MaxTokenLifetime: time.Hour, Grace: time.Hour}, keyring.ErrPolicy, "grace"},
		{"pre-publication too short", keyring.SetPolicy{Name: "s", Owner: "o", PrePublication: time.Minute}, keyring.ErrPolicy, "pre-publication"},
		{"pre-publication under the verifiers' refresh", keyring.SetPolicy{Name: "s", Owner: "o", PrePublication: 10 * time.Minute}, keyring.ErrPolicy, "verifier refresh 15m0s"},
		{"grace under the verifiers' refresh", keyring.SetPolicy{Name: "s", Owner: "o", VerifierRefresh: time.Hour, Grace: 2 * time.Hour}, keyring.ErrPolicy, "grace"},
		{"negative verifier refresh", keyring.SetPolicy{Name: "s", Owner: "o", VerifierRefresh: -time.Second}, keyring.ErrPolicy, "negative"},
		{"no owner", keyring.SetPolicy{Name: "s"}, keyring.ErrNoOwner, "owner"},
		{"no name", keyring.SetPolicy{Owner: "o"}, keyring.ErrPolicy, "name"},
		{"bad algorithm", keyring.SetPolicy{Name: "s", Owner: "o", Algorithm: "HS256"}, keyring.ErrPolicy, "algorithm"},
		{"none algorithm", keyring.SetPolicy{Name: "s", Owner: "o", Algorithm: "none"}, keyring.ErrPolicy, "algorithm"},
		{"rotate-after out of range", keyring.SetPolicy{Name: "s", Owner: "o", RotateAfter: 0.99}, keyring.ErrPolicy, "rotate-after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{
				Audit: audit.NewRecorder(), Revocations: verifier.NewMemoryRevocationList(time.Now),
				Sets: []keyring.SetPolicy{tc.pol},
			})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.rule) {
				t.Errorf("New error = %v, want %v naming %q", err, tc.want, tc.rule)
			}
		})
	}
	t.Run("defaults pass", func(t *testing.T) {
		e := newEnv(t)
		if e.pol.RotationPeriod != 90*keyring.Day || e.pol.Grace < e.pol.MaxTokenLifetime+e.pol.JWKSMaxAge+e.pol.Leeway {
			t.Errorf("default policy %+v breaks a timing rule", e.pol)
		}
	})
	// The defaults cover jwx jwk.Cache's 15-minute refresh; a set whose
	// verifiers all follow max-age says so and gets the shorter windows.
	for _, tc := range []struct {
		name               string
		pol                keyring.SetPolicy
		wantPre, wantGrace time.Duration
	}{
		{name: "default", pol: keyring.SetPolicy{Name: "s", Owner: "o"}, wantPre: 17 * time.Minute, wantGrace: 76 * time.Minute},
		{name: "verifiers follow max-age", pol: keyring.SetPolicy{Name: "s", Owner: "o", VerifierRefresh: time.Minute}, wantPre: 7 * time.Minute, wantGrace: 66 * time.Minute},
		{name: "max-age longer than refresh", pol: keyring.SetPolicy{Name: "s", Owner: "o", JWKSMaxAge: 20 * time.Minute}, wantPre: 22 * time.Minute, wantGrace: 81 * time.Minute},
	} {
		t.Run("windows "+tc.name, func(t *testing.T) {
			ring, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{Sets: []keyring.SetPolicy{tc.pol}})
			if err != nil {
				t.Fatal(err)
			}
			pol, _ := ring.Policy("s")
			if pol.PrePublication != tc.wantPre || pol.Grace != tc.wantGrace {
				t.Errorf("pre-publication %v, grace %v; want %v, %v", pol.PrePublication, pol.Grace, tc.wantPre, tc.wantGrace)
			}
		})
	}
	t.Run("in-memory defaults", func(t *testing.T) {
		ring, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{Sets: []keyring.SetPolicy{{Name: "s", Owner: "o"}}})
		if err != nil {
			t.Fatalf("New with only a set: %v", err)
		}
		if _, err := ring.Create(ctx(t, alice), "s"); err != nil {
			t.Fatalf("Create: %v", err)
		}
		rec, ok := ring.AuditSink().(*audit.Recorder)
		if !ok || rec.Len() != 1 {
			t.Errorf("default audit sink = %T with %v events, want a Recorder with the create event", ring.AuditSink(), rec)
		}
	})
	t.Run("no set", func(t *testing.T) {
		if _, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{}); !errors.Is(err, keyring.ErrPolicy) {
			t.Errorf("New without a set: %v, want ErrPolicy", err)
		}
	})
}

func TestCreateRecordsR24(t *testing.T) {
	e := newEnv(t)
	k, err := e.ring.Create(ctx(t, alice), set)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(k.KID) < 22 || k.Owner != "team-identity" || !k.CreatedAt.Equal(t0) || !k.RotateBy.Equal(t0.Add(90*keyring.Day)) ||
		k.State != keyring.Pending || k.CreatedBy != "alice" || k.Public == nil || k.Algorithm != "ES256" {
		t.Errorf("created key %+v lacks an R2.4 field", k)
	}
	if strings.Contains(k.String(), k.BackendRef.Reveal()) || strings.Contains(k.GoString(), k.BackendRef.Reveal()) {
		t.Errorf("Key.String shows the backend reference")
	}
	// A pending key is published (R3.4 step 1) once approved, and signs
	// nothing.
	if _, err := e.ring.VerificationKey(ctx(t, core), k.KID); !errors.Is(err, verifier.ErrUnknownKID) {
		t.Errorf("unapproved pending key: %v, want ErrUnknownKID", err)
	}
	if err := e.ring.Approve(ctx(t, bob), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if _, err := e.ring.VerificationKey(ctx(t, core), k.KID); err != nil {
		t.Errorf("approved pending key not resolvable: %v", err)
	}
	if _, err := e.ring.Signer(ctx(t, core), set); !errors.Is(err, keyring.ErrNoActiveKey) {
		t.Errorf("Signer with only a pending key: error = %v, want ErrNoActiveKey", err)
	}
	k2, _ := e.ring.Create(ctx(t, alice), set)
	if k2.KID == k.KID {
		t.Errorf("two keys share kid %s", k.KID)
	}
}

func TestSeparationOfDuties(t *testing.T) {
	e := newEnv(t)
	k, err := e.ring.Create(ctx(t, alice), set)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	both := keyring.Principal{ID: "alice", Roles: []keyring.Role{keyring.RoleIssuer, keyring.RoleApprover, keyring.RoleDeployer}}
	if err := e.ring.Activate(ctx(t, carol), k.KID); !errors.Is(err, keyring.ErrApprovalRequired) {
		t.Errorf("Activate without approval: %v, want ErrApprovalRequired", err)
	}
	if err := e.ring.Approve(ctx(t, both), k.KID); !errors.Is(err, keyring.ErrSelfApproval) {
		t.Errorf("creator approves own key: %v, want ErrSelfApproval", err)
	}
	if err := e.ring.Approve(ctx(t, carol), k.KID); !errors.Is(err, keyring.ErrForbidden) {
		t.Errorf("deployer approves: %v, want ErrForbidden", err)
	}
	if _, err := e.ring.Create(context.Background(), set); !errors.Is(err, keyring.ErrNoPrincipal) {
		t.Errorf("Create without principal: %v, want ErrNoPrincipal", err)
	}
	approverDeployer := keyring.Principal{ID: "erin", Roles: []keyring.Role{keyring.RoleApprover, keyring.RoleDeployer}}
	if err := e.ring.Approve(ctx(t, approverDeployer), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := e.ring.Activate(ctx(t, approverDeployer), k.KID); !errors.Is(err, keyring.ErrSelfApproval) {
		t.Errorf("approver deploys own approval: %v, want ErrSelfApproval", err)
	}
	if err := e.ring.Activate(ctx(t, carol), k.KID); err != nil {
		t.Errorf("Activate after approval: %v", err)
	}
	var denied int
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.AccessDenied {
			denied++
			if ev.Outcome != audit.Denied || ev.Details["action"] == "" {
				t.Errorf("denial event %+v lacks outcome or action", ev)
			}
		}
	}
	if denied != 5 {
		t.Errorf("%d access.denied events, want 5 (one per refused attempt)", denied)
	}
}

// TestRotationProcedure walks R3.4 step by step with the fake clock.
func TestRotationProcedure(t *testing.T) {
	e := newEnv(t)
	old := e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatalf("ApproveSchedule: %v", err)
	}
	// Nothing is due before 80% of the period.
	e.clock.Advance(71 * keyring.Day)
	if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if keys := e.nonStandby(t); len(keys) != 1 {
		t.Fatalf("rotation started early: %d keys", len(keys))
	}
	// Step 1: at 80% the successor is generated and published, not signing.
	e.clock.Advance(keyring.Day + time.Hour)
	if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	keys := e.nonStandby(t, keyring.Pending)
	if len(keys) != 1 {
		t.Fatalf("after due tick: %d pending keys besides the standby, want 1", len(keys))
	}
	next := keys[0]
	pub, _ := e.ring.PublicKeys(ctx(t, core))
	if len(pub) != 3 {
		t.Errorf("JWKS holds %d keys during pre-publication, want 3 (active, successor, standby)", len(pub))
	}
	if s, _ := e.ring.Signer(ctx(t, core), set); s.KID() != old.KID {
		t.Errorf("signer during pre-publication = %s, want old %s", s.KID(), old.KID)
	}
	// Step 2: once pre-publication is over, the successor signs.
	e.clock.Advance(e.pol.PrePublication)
	if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if s, _ := e.ring.Signer(ctx(t, core), set); s.KID() != next.KID {
		t.Errorf("signer after pre-publication = %s, want successor %s", s.KID(), next.KID)
	}
	// Step 3: the old key verifies during grace.
	oldNow := e.key(t, old.KID)
	if oldNow.State != keyring.Retiring || !oldNow.GraceUntil.Equal(e.clock.Now().Add(e.pol.Grace)) {
		t.Errorf("old key %v grace until %v, want retiring until now+grace", oldNow.State, oldNow.GraceUntil)
	}
	e.clock.Advance(e.pol.Grace - time.Second)
	if _, err := e.ring.VerificationKey(ctx(t, core), old.KID); err != nil {
		t.Errorf("old key rejected within grace: %v", err)
	}
	// Step 4: at GraceUntil exactly it is retired and gone from the JWKS (T2).
	e.clock.Advance(time.Second)
	if _, err := e.ring.VerificationKey(ctx(t, core), old.KID); !errors.Is(err, verifier.ErrKeyRetired) {
		t.Errorf("old key at GraceUntil: %v, want ErrKeyRetired", err)
	}
	if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if got := e.key(t, old.KID).State; got != keyring.Retired {
		t.Errorf("old key state after grace tick = %v, want retired", got)
	}
	pub, _ = e.ring.PublicKeys(ctx(t, core))
	if len(pub) != 2 || !slices.ContainsFunc(pub, func(k verifier.Key) bool { return k.KID == next.KID }) ||
		slices.ContainsFunc(pub, func(k verifier.Key) bool { return k.KID == old.KID }) {
		t.Errorf("JWKS after retirement = %v, want %s and the standby", pub, next.KID)
	}
	// T5: create, rotate and retire are audited.
	want := map[audit.Type]bool{audit.KeyCreated: false, audit.KeyRotated: false, audit.KeyActivated: false, audit.KeyRetired: false, audit.PolicyApproved: false}
	for _, ty := range e.types() {
		if _, ok := want[ty]; ok {
			want[ty] = true
		}
	}
	for ty, seen := range want {
		if !seen {
			t.Errorf("no %s audit event", ty)
		}
	}
}

func TestActivateRefusesBeforePrePublication(t *testing.T) {
	e := newEnv(t)
	e.bootstrap(t)
	k, _ := e.ring.Create(ctx(t, alice), set)
	if err := e.ring.Approve(ctx(t, bob), k.KID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if err := e.ring.Activate(ctx(t, carol), k.KID); !errors.Is(err, keyring.ErrPrePublication) {
		t.Errorf("Activate before pre-publication: %v, want ErrPrePublication", err)
	}
	e.clock.Advance(e.pol.PrePublication)
	if err := e.ring.Activate(ctx(t, carol), k.KID); err != nil {
		t.Errorf("Activate after pre-publication: %v", err)
	}
}

func TestIllegalTransitions(t *testing.T) {
	e := newEnv(t)
	active := e.bootstrap(t)
	if err := e.ring.Retire(ctx(t, dave), active.KID); !errors.Is(err, keyring.ErrIllegalState) {
		t.Errorf("Retire(active): %v, want ErrIllegalState", err)
	}
	if err := e.ring.Activate(ctx(t, carol), active.KID); !errors.Is(err, keyring.ErrIllegalState) {
		t.Errorf("Activate(active): %v, want ErrIllegalState", err)
	}
	if err := e.ring.Destroy(ctx(t, dave), active.KID); !errors.Is(err, keyring.ErrIllegalState) {
		t.Errorf("Destroy(active): %v, want ErrIllegalState", err)
	}
	if _, err := e.ring.Create(ctx(t, alice), "nope"); !errors.Is(err, keyring.ErrUnknownSet) {
		t.Errorf("Create(unknown set): %v, want ErrUnknownSet", err)
	}
	if err := e.ring.Approve(ctx(t, bob), "no-such-kid"); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("Approve(unknown kid): %v, want ErrNotFound", err)
	}
	p, _ := e.ring.Create(ctx(t, alice), set)
	if err := e.ring.Retire(ctx(t, dave), p.KID); err != nil {
		t.Errorf("Retire(pending): %v", err)
	}
	if err := e.ring.Retire(ctx(t, dave), p.KID); !errors.Is(err, keyring.ErrIllegalState) {
		t.Errorf("Retire(retired): %v, want ErrIllegalState", err)
	}
	if err := e.ring.Destroy(ctx(t, dave), p.KID); err != nil {
		t.Errorf("Destroy(retired): %v", err)
	}
	if got := e.key(t, p.KID); got.State != keyring.Destroyed || !got.BackendRef.IsZero() {
		t.Errorf("destroyed key: state %v ref %q, want destroyed with no reference", got.State, got.BackendRef.Reveal())
	}
}

// TestAuditFailClosed: when the sink refuses an event, the action does not
// happen.
func TestAuditFailClosed(t *testing.T) {
	e := newEnv(t)
	active := e.bootstrap(t)
	e.rec.FailAfter(0)
	if _, err := e.ring.Create(ctx(t, alice), set); !errors.Is(err, keyring.ErrAudit) {
		t.Errorf("Create with failing sink: %v, want ErrAudit", err)
	}
	if _, err := e.ring.EmergencyRotate(ctx(t, dave), active.KID, keyring.Incident{ID: "INC-1"}); !errors.Is(err, keyring.ErrAudit) {
		t.Errorf("EmergencyRotate with failing sink: %v, want ErrAudit", err)
	}
	keys, _ := e.ring.Keys(ctx(t, core), keyring.Filter{Set: set})
	if len(keys) != 1 || keys[0].State != keyring.Active {
		t.Errorf("failed actions left state behind: %v", keys)
	}
}

func TestEmergencyRotate(t *testing.T) {
	var hookCalls []string
	e := newEnv(t, func(c *keyring.Config) {
		c.IncidentHooks = []keyring.IncidentHook{
			func(_ context.Context, inc keyring.Incident, k keyring.Key) error {
				hookCalls = append(hookCalls, inc.ID+":"+k.KID)
				return nil
			},
			func(context.Context, keyring.Incident, keyring.Key) error { return errors.New("pager down") },
		}
	})
	old := e.bootstrap(t)
	s, err := e.ring.Signer(ctx(t, core), set)
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	if _, err := e.ring.EmergencyRotate(ctx(t, alice), old.KID, keyring.Incident{ID: "INC-7"}); !errors.Is(err, keyring.ErrForbidden) {
		t.Errorf("EmergencyRotate by an issuer: %v, want ErrForbidden", err)
	}
	if _, err := s.Sign(ctx(t, core), []byte("x")); err != nil {
		t.Errorf("refused emergency rotation froze the key: %v", err)
	}
	fresh, err := e.ring.EmergencyRotate(ctx(t, dave), old.KID, keyring.Incident{ID: "INC-7", Reason: "key leaked", Severity: "high"})
	if !errors.Is(err, keyring.ErrIncidentHook) {
		t.Errorf("EmergencyRotate with a failing hook: %v, want ErrIncidentHook", err)
	}
	if fresh.KID == "" || fresh.State != keyring.Active || fresh.KID == old.KID {
		t.Fatalf("no fresh active key: %+v", fresh)
	}
	if _, err := s.Sign(ctx(t, core), []byte("x")); !errors.Is(err, keyring.ErrFrozen) {
		t.Errorf("Sign with compromised key: %v, want ErrFrozen", err)
	}
	if got, _ := e.ring.Signer(ctx(t, core), set); got.KID() != fresh.KID {
		t.Errorf("signer after emergency = %s, want %s", got.KID(), fresh.KID)
	}
	if _, err := e.ring.VerificationKey(ctx(t, core), old.KID); !errors.Is(err, verifier.ErrKeyCompromised) {
		t.Errorf("compromised key lookup: %v, want ErrKeyCompromised", err)
	}
	if revoked, _ := e.revs.Revoked(ctx(t, core), old.KID, "any", t0.Add(1000*time.Hour)); !revoked {
		t.Errorf("compromised kid not revoked for a forged future iat")
	}
	if len(hookCalls) != 1 || hookCalls[0] != "INC-7:"+old.KID {
		t.Errorf("hook calls = %v", hookCalls)
	}
	var sawIncident, sawFailedHook bool
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.KeyActivated && ev.Incident == "INC-7" && ev.Details["review_required"] == "true" &&
			ev.Details["via"] == "break-glass" && ev.Details["replaces"] == old.KID {
			sawIncident = true
		}
		if ev.Type == audit.IncidentHook && ev.Outcome == audit.Failure {
			sawFailedHook = true
		}
	}
	if !sawIncident || !sawFailedHook {
		t.Errorf("audit trail lacks incident (%v) or failed hook (%v)", sawIncident, sawFailedHook)
	}
}

// TestFreezeRace: once EmergencyRotate returns, no Sign call succeeds with
// the compromised key, while Sign calls race with the freeze.
func TestFreezeRace(t *testing.T) {
	e := newEnv(t)
	old := e.bootstrap(t)
	s, err := e.ring.Signer(ctx(t, core), set)
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	var frozen atomic.Bool
	var late, before atomic.Int32 // Sign calls that succeeded after / before the freeze
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for afterCalls := 0; afterCalls < 200; {
				after := frozen.Load()
				if after {
					afterCalls++
				}
				_, err := s.Sign(context.Background(), []byte("payload"))
				switch {
				case after && err == nil:
					late.Add(1)
				case !after && err == nil:
					before.Add(1)
				case err != nil && !errors.Is(err, keyring.ErrFrozen):
					t.Errorf("Sign: %v, want nil or ErrFrozen", err)
					return
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); before.Load() == 0 && time.Now().Before(deadline); {
		runtime.Gosched()
	}
	if _, err := e.ring.EmergencyRotate(ctx(t, dave), old.KID, keyring.Incident{ID: "INC-race"}); err != nil {
		t.Fatalf("EmergencyRotate: %v", err)
	}
	frozen.Store(true)
	wg.Wait()
	if late.Load() != 0 {
		t.Errorf("%d Sign calls started after EmergencyRotate returned and succeeded", late.Load())
	}
}

// gatedProvider holds every Open until release is closed, after saying so
// on opening.
type gatedProvider struct {
	signer.Provider
	opening chan struct{}
	release chan struct{}
}

func (p *gatedProvider) Open(ctx context.Context, kid, ref string) (signer.Signer, error) {
	p.opening <- struct{}{}
	<-p.release
	return p.Provider.Open(ctx, kid, ref)
}

// TestSignerOpenRacingRotation: a Signer call that found the key Active
// but was still opening it when a rotation made the key Retiring hands out
// a signer guarded by the key's new state: it refuses to sign and caps
// tokens at the grace window.
func TestSignerOpenRacingRotation(t *testing.T) {
	local, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	prov := &gatedProvider{Provider: local, opening: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(c *keyring.Config) { c.Providers = map[string]signer.Provider{"local": prov} })
	old := e.bootstrap(t)
	type result struct {
		s   signer.Signer
		err error
	}
	done := make(chan result)
	go func() {
		s, err := e.ring.Signer(context.Background(), set)
		done <- result{s, err}
	}()
	<-prov.opening
	e.rotateSet(t, set)
	close(prov.release)
	got := <-done
	if got.err != nil {
		t.Fatalf("Signer: %v", got.err)
	}
	if got.s.KID() != old.KID {
		t.Fatalf("Signer opened %s, want the key it found Active, %s", got.s.KID(), old.KID)
	}
	retiring := e.key(t, old.KID)
	if retiring.State != keyring.Retiring {
		t.Fatalf("old key is %v after the rotation, want retiring", retiring.State)
	}
	if _, err := got.s.Sign(context.Background(), []byte("x")); !errors.Is(err, signer.ErrKeyNotActive) {
		t.Errorf("Sign with the signer opened across the rotation = %v, want ErrKeyNotActive", err)
	}
	var until time.Time
	if vu, ok := got.s.(signer.VerifiableUntil); ok {
		until = vu.VerifiableUntil()
	}
	if !until.Equal(retiring.GraceUntil) {
		t.Errorf("signer opened across the rotation is verifiable until %v, want the grace end %v", until, retiring.GraceUntil)
	}
}

// TestEmergencyRotateBackendDown: when no fresh key can be created, the
// emergency rotation fails closed: the compromised key is frozen and
// revoked all the same, and issuance stops with a clear error instead of
// using it.
func TestEmergencyRotateBackendDown(t *testing.T) {
	local, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	prov := &switchProvider{Provider: local}
	e := newEnv(t, func(c *keyring.Config) { c.Providers = map[string]signer.Provider{"local": prov} })
	old := e.bootstrap(t)
	held, err := e.ring.Signer(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	prov.fail = true
	_, err = e.ring.EmergencyRotate(ctx(t, dave), old.KID, keyring.Incident{ID: "INC-down"})
	if !errors.Is(err, keyring.ErrBackend) {
		t.Fatalf("EmergencyRotate with the backend down = %v, want ErrBackend", err)
	}
	if _, err := e.ring.Signer(context.Background(), set); !errors.Is(err, keyring.ErrNoActiveKey) {
		t.Errorf("Signer after a failed emergency rotation = %v, want ErrNoActiveKey", err)
	}
	if _, err := held.Sign(context.Background(), []byte("x")); !errors.Is(err, keyring.ErrFrozen) {
		t.Errorf("Sign with a signer held from before = %v, want ErrFrozen", err)
	}
	if k := e.key(t, old.KID); k.State != keyring.Compromised {
		t.Errorf("compromised key is %v, want compromised", k.State)
	}
	if revoked, _ := e.revs.Revoked(context.Background(), old.KID, "any", t0); !revoked {
		t.Errorf("compromised kid not revoked when the fresh key could not be created")
	}
	if _, err := e.ring.VerificationKey(context.Background(), old.KID); !errors.Is(err, verifier.ErrKeyCompromised) {
		t.Errorf("VerificationKey(compromised) = %v, want ErrKeyCompromised", err)
	}
}

// TestKeyNeverShowsReference: the backend reference (for local keys, the
// wrapped private key) appears in no format of a Key record.
func TestKeyNeverShowsReference(t *testing.T) {
	e := newEnv(t)
	k := e.bootstrap(t)
	if k.BackendRef.IsZero() {
		t.Fatal("key has no backend reference")
	}
	js, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(js), fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%v", &k)} {
		if strings.Contains(out, k.BackendRef.Reveal()) || !strings.Contains(out, k.KID) {
			t.Errorf("Key printed as %.80q... shows its reference or hides its kid", out)
		}
	}
}

// TestJWKSMaxAgeFromPolicy: the JWKS handler sends the max-age the set's
// timing rules were checked against.
func TestJWKSMaxAgeFromPolicy(t *testing.T) {
	e := newEnv(t, func(c *keyring.Config) {
		c.Sets = []keyring.SetPolicy{{Name: set, Owner: "o", JWKSMaxAge: 2 * time.Minute}}
	})
	e.bootstrap(t)
	rec := httptest.NewRecorder()
	jwks.NewHandler(e.ring).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
	if got := rec.Header().Get("Cache-Control"); got != "public, max-age=120, must-revalidate" {
		t.Errorf("Cache-Control = %q, want max-age=120 from the set's policy", got)
	}
}
