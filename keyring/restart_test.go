package keyring_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// durableStore is a MemStore that says it is durable, as filestore and
// pgstore do, so that New applies the checks for a durable store.
type durableStore struct{ *keyring.MemStore }

func (durableStore) Durable() bool { return true }

// durableProvider is a local provider under a fixed KEK, as a host gives
// one with a key from its secret store.
func durableProvider(t *testing.T) (signer.Provider, signer.KeyWrapper) {
	t.Helper()
	w, err := signer.NewAESWrapper(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	lp, err := signer.NewLocalProvider(w)
	if err != nil {
		t.Fatal(err)
	}
	return lp, w
}

// TestStandingApprovalSurvivesRestart: ApproveSchedule is kept by the
// store; a keyring started afterwards on the same store rotates on
// schedule with no host code, and Report shows who approved.
func TestStandingApprovalSurvivesRestart(t *testing.T) {
	store := keyring.NewMemStore()
	withStore := func(c *keyring.Config) { c.Store = store }
	e := newEnv(t, withStore)
	first := e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatalf("ApproveSchedule: %v", err)
	}
	// The restart: a new keyring on the same store, at the same time.
	e2 := newEnv(t, withStore, func(c *keyring.Config) { c.Now = e.clock.Now })
	rep, err := e2.ring.Report(ctx(t, core))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep) != 1 || rep[0].ScheduleApprovedBy != "bob" || !rep[0].ScheduleApprovedAt.Equal(t0) {
		t.Fatalf("Report after restart = %+v, want the schedule approved by bob at %v", rep, t0)
	}
	for day := 1; day <= 91; day++ {
		e.clock.Advance(keyring.Day)
		if err := e2.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
			t.Fatalf("day %d: Tick after restart: %v", day, err)
		}
	}
	s, err := e2.ring.Signer(ctx(t, keyring.Principal{}), set)
	if err != nil {
		t.Fatalf("Signer at day 91: %v", err)
	}
	if s.KID() == first.KID {
		t.Errorf("day 91 after a restart: %s still signs, want its successor", first.KID)
	}
}

// TestWithdrawSchedule: an approver withdraws the standing approval; Tick
// then reports the due rotation (error wrapping ErrNotApproved, an audit
// event) at most once a day and rotates nothing; a new approval resumes.
func TestWithdrawSchedule(t *testing.T) {
	tickErrs := make(chan error, 16)
	e := newEnv(t, func(c *keyring.Config) {
		c.TickInterval = time.Millisecond
		c.OnTickError = func(err error) {
			select {
			case tickErrs <- err:
			default:
			}
		}
	})
	e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    keyring.Principal
		set  string
		want error
	}{
		{name: "issuer may not withdraw", p: alice, set: set, want: keyring.ErrForbidden},
		{name: "unknown set", p: bob, set: "nope", want: keyring.ErrUnknownSet},
	} {
		if err := e.ring.WithdrawSchedule(ctx(t, tc.p), tc.set); !errors.Is(err, tc.want) {
			t.Errorf("%s: WithdrawSchedule = %v, want %v", tc.name, err, tc.want)
		}
	}
	other := keyring.Principal{ID: "erin", Roles: []keyring.Role{keyring.RoleApprover}}
	if err := e.ring.WithdrawSchedule(ctx(t, other), set); err != nil {
		t.Fatalf("WithdrawSchedule by another approver: %v", err)
	}
	if err := e.ring.WithdrawSchedule(ctx(t, other), set); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("second WithdrawSchedule = %v, want %v", err, keyring.ErrNotFound)
	}
	if rep, _ := e.ring.Report(ctx(t, core)); rep[0].ScheduleApprovedBy != "" {
		t.Errorf("Report after withdrawal: approved by %q, want none", rep[0].ScheduleApprovedBy)
	}
	due := time.Duration(float64(e.pol.RotationPeriod) * e.pol.RotateAfter)
	e.clock.Advance(due)
	errs := 0
	for range 48 { // two days, hourly
		if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
			if !errors.Is(err, keyring.ErrNotApproved) {
				t.Fatalf("Tick: %v, want nil or %v", err, keyring.ErrNotApproved)
			}
			errs++
		}
		e.clock.Advance(time.Hour)
	}
	if errs != 2 {
		t.Errorf("Tick reported the unapproved rotation %d times in two days, want 2 (at most daily)", errs)
	}
	events := 0
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.RotationUnapproved && ev.Set == set && ev.Outcome == audit.Failure {
			events++
		}
	}
	if events != 2 {
		t.Errorf("%d %s events in two days, want 2", events, audit.RotationUnapproved)
	}
	if ks := nonStandby(t, e); len(ks) != 1 {
		t.Errorf("%d keys after two days without approval, want 1 (no rotation)", len(ks))
	}
	if !hasType(e.rec.Events(), audit.PolicyWithdrawn) {
		t.Errorf("no %s event", audit.PolicyWithdrawn)
	}
	// Run hands the report to OnTickError.
	runCtx, cancel := context.WithCancel(ctx(t, keyring.Principal{}))
	e.clock.Advance(keyring.Day)
	done := make(chan error, 1)
	go func() { done <- e.ring.Run(runCtx) }()
	if err := <-tickErrs; !errors.Is(err, keyring.ErrNotApproved) {
		t.Errorf("OnTickError got %v, want an error wrapping %v", err, keyring.ErrNotApproved)
	}
	cancel()
	<-done

	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatal(err)
	}
	if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
		t.Fatalf("Tick after a new approval: %v", err)
	}
	if ks := nonStandby(t, e); len(ks) != 2 {
		t.Errorf("%d keys after the new approval's tick, want 2 (successor published)", len(ks))
	}
}

// nonStandby lists the keys of set that are not its standby key.
func nonStandby(t *testing.T, e *env) []keyring.Key {
	t.Helper()
	ks, err := e.ring.Keys(ctx(t, core), keyring.Filter{Set: set})
	if err != nil {
		t.Fatal(err)
	}
	var out []keyring.Key
	for _, k := range ks {
		if !k.Standby {
			out = append(out, k)
		}
	}
	return out
}

// TestScheduleApprovalBoundToPolicy: an approval given under one timing
// policy does not rotate the set once the policy changed (restart with a
// new config): Tick reports the set as unapproved.
func TestScheduleApprovalBoundToPolicy(t *testing.T) {
	store := keyring.NewMemStore()
	e := newEnv(t, func(c *keyring.Config) { c.Store = store })
	e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, func(c *keyring.Config) {
		c.Store, c.Now = store, e.clock.Now
		c.Sets = []keyring.SetPolicy{{Name: set, Owner: "team-identity", RotationPeriod: 60 * keyring.Day}}
	})
	e.clock.Advance(55 * keyring.Day)
	if err := e2.ring.Tick(ctx(t, keyring.Principal{})); !errors.Is(err, keyring.ErrNotApproved) {
		t.Errorf("Tick under a changed policy = %v, want %v", err, keyring.ErrNotApproved)
	}
}

// TestStrictOverdueByDefault: past its RotateBy a signing key signs
// nothing and a data key encrypts nothing, without any option; with
// UnsafeAllowOverdue both go on, the option is audited when the keyring
// starts and Report shows it.
func TestStrictOverdueByDefault(t *testing.T) {
	e := newEnv(t)
	e.bootstrap(t)
	e.clock.Advance(e.pol.RotationPeriod)
	if _, err := e.ring.Signer(ctx(t, keyring.Principal{}), set); !errors.Is(err, keyring.ErrOverdue) {
		t.Errorf("Signer past RotateBy by default = %v, want %v", err, keyring.ErrOverdue)
	}
	if rep, _ := e.ring.Report(ctx(t, core)); rep[0].UnsafeAllowOverdue {
		t.Errorf("Report shows UnsafeAllowOverdue on a strict keyring")
	}
	if hasType(e.rec.Events(), audit.UnsafeConfig) {
		t.Errorf("strict keyring audited %s", audit.UnsafeConfig)
	}

	u := newEnv(t, func(c *keyring.Config) { c.UnsafeAllowOverdue = true })
	u.bootstrap(t)
	u.clock.Advance(u.pol.RotationPeriod)
	if _, err := u.ring.Signer(ctx(t, keyring.Principal{}), set); err != nil {
		t.Errorf("Signer past RotateBy with UnsafeAllowOverdue = %v, want nil", err)
	}
	evs := u.rec.Events()
	if len(evs) == 0 || evs[0].Type != audit.UnsafeConfig || evs[0].Details["option"] != "UnsafeAllowOverdue" {
		t.Errorf("first event = %+v, want %s for UnsafeAllowOverdue", evs[0], audit.UnsafeConfig)
	}
	if rep, _ := u.ring.Report(ctx(t, core)); !rep[0].UnsafeAllowOverdue {
		t.Errorf("Report does not show UnsafeAllowOverdue")
	}
}

// TestNewRefusesWhatARestartLoses: next to a durable store, New refuses
// an in-memory revocation list (unless UnsafeEphemeralRevocations, which
// is audited) and providers or wrappers under a process-lifetime KEK, each
// with an error naming the setting; an audit sink that refuses the Unsafe
// event refuses the keyring.
func TestNewRefusesWhatARestartLoses(t *testing.T) {
	prov, wrap := durableProvider(t)
	ephemeral, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	good := func(c *keyring.Config) {
		c.Store = durableStore{keyring.NewMemStore()}
		c.Revocations = durableRevs{verifier.NewMemoryRevocationList(nil)}
		c.Providers = map[string]signer.Provider{"local": prov}
		c.Wrappers = map[string]signer.KeyWrapper{"local": wrap}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*keyring.Config)
		setting string
	}{
		{name: "durable store, no revocation list", mutate: func(c *keyring.Config) { c.Revocations = nil }, setting: "Config.Revocations"},
		{name: "durable store, memory revocation list", mutate: func(c *keyring.Config) { c.Revocations = verifier.NewMemoryRevocationList(nil) }, setting: "UnsafeEphemeralRevocations"},
		{name: "durable store, default providers", mutate: func(c *keyring.Config) { c.Providers = nil }, setting: `Config.Providers["local"]`},
		{name: "durable store, ephemeral provider", mutate: func(c *keyring.Config) { c.Providers = map[string]signer.Provider{"local": ephemeral} }, setting: "signer.NewAESWrapper"},
		{name: "durable store, default wrappers", mutate: func(c *keyring.Config) {
			c.Wrappers = nil
			c.Sets = append(c.Sets, keyring.SetPolicy{Name: "data", Purpose: keyring.Encryption, Owner: "o"})
		}, setting: `Config.Wrappers["local"] (set "data")`},
		{name: "durable store, default wrappers for a secret", mutate: func(c *keyring.Config) {
			c.Wrappers = nil
			c.Secrets = []keyring.SecretPolicy{{Name: "api-key", Owner: "o"}}
		}, setting: `(secret "api-key")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := keyring.Config{Sets: []keyring.SetPolicy{{Name: set, Owner: "o"}}}
			good(&cfg)
			tc.mutate(&cfg)
			_, err := keyring.New(ctx(t, keyring.Principal{}), cfg)
			if !errors.Is(err, keyring.ErrConfig) || !strings.Contains(fmt.Sprint(err), tc.setting) {
				t.Errorf("New = %v, want %v naming %s", err, keyring.ErrConfig, tc.setting)
			}
		})
	}
	t.Run("UnsafeEphemeralRevocations audited", func(t *testing.T) {
		rec := audit.NewRecorder()
		cfg := keyring.Config{Sets: []keyring.SetPolicy{{Name: set, Owner: "o"}}, Audit: rec}
		good(&cfg)
		cfg.Revocations, cfg.UnsafeEphemeralRevocations = verifier.NewMemoryRevocationList(nil), true
		if _, err := keyring.New(ctx(t, keyring.Principal{}), cfg); err != nil {
			t.Fatalf("New with UnsafeEphemeralRevocations: %v", err)
		}
		evs := rec.Events()
		if len(evs) != 1 || evs[0].Type != audit.UnsafeConfig || evs[0].Details["option"] != "UnsafeEphemeralRevocations" {
			t.Errorf("events = %+v, want one %s for UnsafeEphemeralRevocations", evs, audit.UnsafeConfig)
		}
		rec.FailAfter(0)
		if _, err := keyring.New(ctx(t, keyring.Principal{}), cfg); !errors.Is(err, keyring.ErrAudit) {
			t.Errorf("New with the audit sink down = %v, want %v", err, keyring.ErrAudit)
		}
	})
	t.Run("memory store keeps the defaults", func(t *testing.T) {
		if _, err := keyring.New(ctx(t, keyring.Principal{}), keyring.Config{Sets: []keyring.SetPolicy{{Name: set, Owner: "o"}}}); err != nil {
			t.Errorf("New with every default = %v, want nil", err)
		}
	})
}

// durableRevs is a revocation list that says it is durable.
type durableRevs struct{ *verifier.MemoryRevocationList }

func (durableRevs) Durable() bool { return true }

func hasType(evs []audit.Event, typ audit.Type) bool {
	for _, ev := range evs {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

// TestNewIssuerChecksTheSet: an Issuer on a Keyring is refused for an
// unknown set, a data-key set, a missing audience and a MaxLifetime above
// the set's MaxTokenLifetime (the 12 h issuer on a 1 h set whose tokens
// were refused as "key retired" with hours left), and takes its lifetimes
// from the set by default.
func TestNewIssuerChecksTheSet(t *testing.T) {
	e, _ := newDEKEnv(t)
	base := signer.IssuerConfig{Set: set, Issuer: "https://core.test", Audience: []string{"api"}, Now: e.clock.Now}
	for _, tc := range []struct {
		name string
		cfg  func(*signer.IssuerConfig)
		want error
	}{
		{name: "unknown set", cfg: func(c *signer.IssuerConfig) { c.Set = "nope" }, want: keyring.ErrUnknownSet},
		{name: "data-key set", cfg: func(c *signer.IssuerConfig) { c.Set = dataSet }, want: keyring.ErrWrongPurpose},
		{name: "no audience", cfg: func(c *signer.IssuerConfig) { c.Audience = nil }, want: signer.ErrConfig},
		{name: "12 h on a 1 h set", cfg: func(c *signer.IssuerConfig) { c.MaxLifetime = 12 * time.Hour }, want: signer.ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.cfg(&cfg)
			if _, err := signer.NewIssuer(e.ring, cfg); !errors.Is(err, signer.ErrConfig) || !errors.Is(err, tc.want) {
				t.Errorf("NewIssuer = %v, want %v and %v", err, signer.ErrConfig, tc.want)
			}
		})
	}
	e.bootstrap(t)
	is, err := signer.NewIssuer(e.ring, base)
	if err != nil {
		t.Fatalf("NewIssuer with the set's lifetimes: %v", err)
	}
	if _, err := is.Issue(ctx(t, keyring.Principal{}), tokenkms.Claims{Subject: "s", ClientID: "c", ExpiresAt: e.clock.Now().Add(e.pol.MaxTokenLifetime + time.Minute)}); !errors.Is(err, signer.ErrClaims) {
		t.Errorf("Issue past the set's MaxTokenLifetime = %v, want %v", err, signer.ErrClaims)
	}
}

// TestIssueDuringRotations issues tokens from several goroutines while
// the set is rotated over and over (the clock racing ahead): no Issue
// fails.
func TestIssueDuringRotations(t *testing.T) {
	e := newEnv(t)
	e.bootstrap(t)
	is, err := signer.NewIssuer(e.ring, signer.IssuerConfig{Set: set, Issuer: "https://core.test", Audience: []string{"api"}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := is.Issue(ctx(t, keyring.Principal{}), tokenkms.Claims{Subject: "s", ClientID: "c"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 30 {
		k, err := e.ring.Rotate(ctx(t, alice), set)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if err := e.ring.Approve(ctx(t, bob), k.KID); err != nil {
			t.Fatalf("Approve: %v", err)
		}
		e.clock.Advance(e.pol.PrePublication)
		if err := e.ring.Activate(ctx(t, carol), k.KID); err != nil {
			t.Fatalf("Activate: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Errorf("Issue during rotations: %v", err)
	default:
	}
}
