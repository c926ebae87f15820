package keyring_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// TestScheduledYear runs the scheduler hourly over a simulated year: every
// signing key is rotated before 90 days, a token issued at any hour
// verifies for its whole life (no verification gap), nothing is overdue.
func TestScheduledYear(t *testing.T) {
	e := newEnv(t)
	e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatalf("ApproveSchedule: %v", err)
	}
	iss, err := signer.NewIssuer(e.ring, signer.IssuerConfig{
		Set: set, Issuer: "https://core.test", Audience: []string{"api"},
		DefaultLifetime: e.pol.MaxTokenLifetime, MaxLifetime: e.pol.MaxTokenLifetime, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	v, err := verifier.New(e.ring, verifier.Policy{Issuer: "https://core.test", Audience: []string{"api"}}, verifier.WithNow(e.clock.Now))
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	var prev string            // a token issued one hour earlier: still within its life
	var signing string         // the kid of the Active key
	var signingSince time.Time // when it became the Active key
	for h := 0; h < 365*24; h++ {
		e.clock.Advance(time.Hour)
		if err := e.ring.Tick(ctx(t, keyring.Principal{})); err != nil {
			t.Fatalf("hour %d: Tick: %v", h, err)
		}
		if prev != "" {
			if _, err := v.Verify(context.Background(), prev); err != nil {
				t.Fatalf("hour %d: token from the previous hour rejected: %v", h, err)
			}
		}
		tok, err := iss.Issue(context.Background(), tokenkms.Claims{Subject: "s", ClientID: "c"})
		if err != nil {
			t.Fatalf("hour %d: Issue: %v", h, err)
		}
		e.clock.Advance(-time.Second) // verify the fresh token too, just before the next tick
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("hour %d: fresh token rejected: %v", h, err)
		}
		e.clock.Advance(time.Second)
		prev = tok
		s, err := e.ring.Signer(context.Background(), set)
		if err != nil {
			t.Fatalf("hour %d: Signer: %v", h, err)
		}
		switch {
		case s.KID() != signing:
			signing, signingSince = s.KID(), e.clock.Now()
		case e.clock.Now().Sub(signingSince) > 90*keyring.Day:
			t.Fatalf("hour %d: key %s has been the Active key for over 90 days", h, signing)
		}
	}
	keys, _ := e.ring.Keys(ctx(t, core), keyring.Filter{Set: set})
	if len(keys) < 5 {
		t.Errorf("%d keys over a year, want at least 5 (one per <90 days)", len(keys))
	}
	for _, k := range keys {
		if k.State == keyring.Retired && k.RetiringAt.Sub(k.CreatedAt) > 90*keyring.Day {
			t.Errorf("key %s signed until %v after creation, over 90 days", k.KID, k.RetiringAt.Sub(k.CreatedAt))
		}
	}
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.KeyOverdue {
			t.Errorf("overdue event in a healthy year: %+v", ev)
		}
	}
	rep, err := e.ring.Report(ctx(t, core))
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	for _, r := range rep {
		if r.DaysOverdue != 0 {
			t.Errorf("report: %s overdue %d days", r.KID, r.DaysOverdue)
		}
	}
}

// TestOverdueWhenBackendFails: when the successor cannot be created, the
// key goes past RotateBy and is never silent: an audit event and the
// callback on each tick, the report counts the days, strict mode refuses
// to sign.
func TestOverdueWhenBackendFails(t *testing.T) {
	local, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	prov := &switchProvider{Provider: local}
	var overdue []string
	e := newEnv(t, func(c *keyring.Config) {
		c.Providers = map[string]signer.Provider{"local": prov}
		c.OnOverdue = func(_ context.Context, k keyring.Key) { overdue = append(overdue, k.KID) }
	})
	k := e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatal(err)
	}
	prov.fail = true
	e.clock.Advance(91 * keyring.Day)
	err = e.ring.Tick(ctx(t, keyring.Principal{}))
	if !errors.Is(err, keyring.ErrBackend) {
		t.Errorf("Tick with failing backend = %v, want ErrBackend", err)
	}
	if len(overdue) != 1 || overdue[0] != k.KID {
		t.Errorf("OnOverdue calls = %v, want [%s]", overdue, k.KID)
	}
	var events int
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.KeyOverdue && ev.KID == k.KID {
			events++
		}
	}
	if events != 1 {
		t.Errorf("%d key.overdue events, want 1", events)
	}
	rep, _ := e.ring.Report(ctx(t, core))
	if len(rep) != 1 || rep[0].DaysOverdue != 1 {
		t.Errorf("report = %+v, want one key 1 day overdue", rep)
	}
	if _, err := e.ring.Signer(context.Background(), set); !errors.Is(err, keyring.ErrOverdue) {
		t.Errorf("Signer in strict mode past RotateBy = %v, want ErrOverdue", err)
	}
}

// switchProvider is a local provider whose backend can be switched off.
type switchProvider struct {
	signer.Provider
	fail bool
}

func (p *switchProvider) Generate(ctx context.Context, kid, alg string) (signer.Signer, string, error) {
	if p.fail {
		return nil, "", fmt.Errorf("%w: backend down", signer.ErrUnavailable)
	}
	return p.Provider.Generate(ctx, kid, alg)
}

// TestEmergencyRevokesRecordedJTIs: with the Issuer recording jtis, the
// emergency rotation revokes each of them as well as the kid.
func TestEmergencyRevokesRecordedJTIs(t *testing.T) {
	var idx *keyring.IssuedJTIIndex
	e := newEnv(t, func(c *keyring.Config) {
		idx = keyring.NewIssuedJTIIndex(c.Now)
		c.IssuedJTIs = idx
	})
	k := e.bootstrap(t)
	iss, err := signer.NewIssuer(e.ring, signer.IssuerConfig{
		Set: set, Issuer: "https://core.test", Audience: []string{"api"},
		DefaultLifetime: time.Hour, MaxLifetime: time.Hour, Now: e.clock.Now, Recorder: idx,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := iss.Issue(context.Background(), tokenkms.Claims{Subject: "s", ClientID: "c", ID: ""}); err != nil {
			t.Fatal(err)
		}
	}
	jtis, _ := idx.IssuedJTIs(context.Background(), k.KID)
	if len(jtis) != 3 {
		t.Fatalf("index holds %d jtis, want 3", len(jtis))
	}
	if _, err := e.ring.EmergencyRotate(ctx(t, dave), k.KID, keyring.Incident{ID: "INC-9"}); err != nil {
		t.Fatalf("EmergencyRotate: %v", err)
	}
	for jti := range jtis {
		if revoked, _ := e.revs.Revoked(context.Background(), "another-kid", jti, e.clock.Now()); !revoked {
			t.Errorf("jti %s of the compromised key not revoked", jti)
		}
	}
	var jtiEvents []audit.Event
	for _, ev := range e.rec.Events() {
		if ev.Type == audit.RevokedJTI && ev.Incident == "INC-9" {
			jtiEvents = append(jtiEvents, ev)
		}
	}
	if len(jtiEvents) != 1 || jtiEvents[0].Details["count"] != "3" {
		t.Errorf("revocation.jti events %+v, want one batched event with count 3", jtiEvents)
	}
}

// TestRunTicks: Run ticks on its interval, reports tick failures, and
// stops with its context.
func TestRunTicks(t *testing.T) {
	local, err := signer.NewLocalProvider(signer.NewEphemeralWrapper())
	if err != nil {
		t.Fatal(err)
	}
	prov := &switchProvider{Provider: local}
	errs := make(chan error, 16)
	e := newEnv(t, func(c *keyring.Config) {
		c.Providers = map[string]signer.Provider{"local": prov}
		c.TickInterval = time.Millisecond
		c.OnTickError = func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
	})
	e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatal(err)
	}
	prov.fail = true
	e.clock.Advance(80 * keyring.Day) // a rotation is due and the backend is down
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ring.Run(c) }()
	select {
	case err := <-errs:
		if !errors.Is(err, keyring.ErrBackend) {
			t.Errorf("tick error = %v, want ErrBackend", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not tick within 10 s")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
}

// TestRunTicksOnlyUnderLease: with a TickLease, Run ticks only while it
// holds the lease, and gives it back after each tick.
func TestRunTicksOnlyUnderLease(t *testing.T) {
	var mu sync.Mutex
	held, granted, released := false, 0, 0
	grant := false
	e := newEnv(t, func(c *keyring.Config) {
		c.TickInterval = time.Millisecond
		c.TickLease = func(context.Context) (func(), bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if !grant || held {
				return func() {}, false, nil
			}
			held = true
			granted++
			return func() { mu.Lock(); held = false; released++; mu.Unlock() }, true, nil
		}
	})
	e.bootstrap(t)
	if err := e.ring.ApproveSchedule(ctx(t, bob), set); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(80 * keyring.Day) // a rotation is due
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ring.Run(c) }()
	pending := func() int {
		keys, err := e.ring.Keys(ctx(t, core), keyring.Filter{Set: set, States: []keyring.State{keyring.Pending}})
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	time.Sleep(50 * time.Millisecond) // many intervals without the lease
	if n := pending(); n != 0 {
		t.Fatalf("%d successors started without the lease, want 0", n)
	}
	mu.Lock()
	grant = true
	mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); pending() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no rotation within 10 s of granting the lease")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if granted == 0 || released != granted || held {
		t.Errorf("lease granted %d, released %d, held at the end %v; want every grant released", granted, released, held)
	}
}
