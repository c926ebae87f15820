package keyringtest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/verifier"
)

func newFixture(t *testing.T) *keyringtest.Fixture {
	t.Helper()
	f, err := keyringtest.New(keyringtest.Options{})
	if err != nil {
		t.Fatalf("keyringtest.New: %v", err)
	}
	return f
}

func token(t *testing.T, f *keyringtest.Fixture) string {
	t.Helper()
	tok, err := f.Token("alice", "orders:read")
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

// T1: a token signed with an unknown kid is rejected.
func TestUnknownKIDRejected(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // a different keyring: its kid is unknown here
	if _, err := f.Verifier.Verify(context.Background(), token(t, other)); !errors.Is(err, verifier.ErrUnknownKID) {
		t.Errorf("Verify(token of unknown kid) = %v, want ErrUnknownKID", err)
	}
}

// T2: a token signed with a retired key is rejected; R3.4 end to end.
func TestRetiredKeyRejected(t *testing.T) {
	f := newFixture(t)
	old := token(t, f)
	if _, err := f.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if _, err := f.Verifier.Verify(context.Background(), old); err != nil {
		t.Fatalf("old token during grace: %v", err)
	}
	if _, err := f.Verifier.Verify(context.Background(), token(t, f)); err != nil {
		t.Fatalf("new token: %v", err)
	}
	if err := f.EndGrace(); err != nil {
		t.Fatalf("EndGrace: %v", err)
	}
	if _, err := f.Verifier.Verify(context.Background(), old); !errors.Is(err, verifier.ErrKeyRetired) {
		t.Errorf("old token after grace = %v, want ErrKeyRetired", err)
	}
}

// T3: rotation causes no verification downtime: goroutines verify fresh
// tokens continuously while the ring rotates many times.
func TestRotationNoDowntime(t *testing.T) {
	f := newFixture(t)
	var stop atomic.Bool
	var verified, rejected atomic.Int64
	var wg sync.WaitGroup
	// The clock only moves between an issue and its verification's end
	// (clockMu), so no token expires in flight; Tick, and with it every
	// rotation and retirement, runs concurrently with them.
	var clockMu sync.RWMutex
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				clockMu.RLock()
				tok, err := f.Token("alice", "orders:read")
				if err != nil {
					clockMu.RUnlock()
					t.Errorf("Issue during rotation: %v", err)
					return
				}
				_, err = f.Verifier.Verify(context.Background(), tok)
				clockMu.RUnlock()
				if err != nil {
					rejected.Add(1)
					t.Errorf("Verify during rotation: %v", err)
					return
				}
				verified.Add(1)
			}
		}()
	}
	pol, err := f.Ring.Policy(f.Set)
	if err != nil {
		t.Fatal(err)
	}
	// Time moves a minute per tick, so tokens stay within their 15-minute
	// life between issue and verify while keys rotate and retire.
	tickFor := func(d time.Duration) {
		for range int(d / time.Minute) {
			clockMu.Lock()
			f.Clock.Advance(time.Minute)
			clockMu.Unlock()
			if err := f.Ring.Tick(context.Background()); err != nil {
				t.Fatalf("Tick: %v", err)
			}
		}
	}
	for i := range 10 {
		k, err := f.Ring.Rotate(f.As(keyringtest.Issuer), f.Set)
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		if err := f.Ring.Approve(f.As(keyringtest.Approver), k.KID); err != nil {
			t.Fatalf("approve %d: %v", i, err)
		}
		tickFor(pol.PrePublication)
		if kid, _ := f.ActiveKID(); kid != k.KID {
			t.Fatalf("rotation %d: active %s, want %s", i, kid, k.KID)
		}
		tickFor(pol.Grace)
	}
	stop.Store(true)
	wg.Wait()
	if rejected.Load() != 0 || verified.Load() == 0 {
		t.Errorf("verified %d, rejected %d; want >0 and 0", verified.Load(), rejected.Load())
	}
}

// T4: every token issued before an emergency rotation is rejected after
// it; tokens of the new key verify. The new key is the set's standby,
// published (and so known to remote verifiers) before the incident.
func TestEmergencyRotationInvalidates(t *testing.T) {
	f := newFixture(t)
	kid, _ := f.ActiveKID()
	standby, err := f.StandbyKID()
	if err != nil {
		t.Fatalf("StandbyKID: %v", err)
	}
	pub, _ := f.Ring.PublicKeys(context.Background())
	if !slices.ContainsFunc(pub, func(k verifier.Key) bool { return k.KID == standby }) {
		t.Fatalf("standby %s not published before the incident: %v", standby, pub)
	}
	var before []string
	for range 50 {
		before = append(before, token(t, f))
	}
	fresh, err := f.Compromise(kid, "INC-42")
	if err != nil {
		t.Fatalf("Compromise: %v", err)
	}
	for i, tok := range before {
		if _, err := f.Verifier.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrKeyCompromised) {
			t.Fatalf("token %d after compromise = %v, want ErrKeyCompromised", i, err)
		}
	}
	after := token(t, f)
	if _, err := f.Verifier.Verify(context.Background(), after); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if got, _ := f.ActiveKID(); got != fresh.KID || got == kid || fresh.KID != standby {
		t.Errorf("active kid after compromise = %s, returned %s, want the standby %s", got, fresh.KID, standby)
	}
	if fresh.ApprovedBy == "" || fresh.Standby {
		t.Errorf("activated standby %+v: want approved, no longer marked standby", fresh)
	}
}

// T5: create, rotate and revoke (retire, compromise) are audited, and an
// emergency rotation's events come in the order it acts.
func TestAuditTrail(t *testing.T) {
	f := newFixture(t)
	if _, err := f.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if err := f.EndGrace(); err != nil {
		t.Fatalf("EndGrace: %v", err)
	}
	kid, _ := f.ActiveKID()
	standby, _ := f.StandbyKID()
	fresh, err := f.Compromise(kid, "INC-5")
	if err != nil {
		t.Fatalf("Compromise: %v", err)
	}
	var got []audit.Type
	events := f.Audit.Events()
	for _, ev := range events {
		if ev.Actor == "" || ev.ID == "" || ev.Time.IsZero() {
			t.Errorf("incomplete audit event %+v", ev)
		}
		got = append(got, ev.Type)
	}
	want := []audit.Type{
		audit.KeyCreated, audit.KeyApproved, audit.KeyActivated, audit.PolicyApproved, // bootstrap
		audit.KeyCreated, audit.KeyApproved, // the standby, under the standing approval
		audit.KeyCreated, audit.KeyRotated, audit.KeyApproved, audit.KeyActivated, audit.KeyRotated, // rotation
		audit.KeyRetired,                                                                                    // grace over
		audit.IncidentDeclared, audit.KeyFrozen, audit.KeyCompromised, audit.KeyActivated, audit.KeyRotated, // emergency
		audit.RevokedKID, audit.IncidentHook,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("audit trail (-want +got):\n%s", diff)
	}
	emergency := events[len(events)-7:]
	for i, ev := range emergency {
		if ev.Incident != "INC-5" || ev.Outcome != audit.Success {
			t.Errorf("emergency event %d %s: incident %q outcome %s, want INC-5 success", i, ev.Type, ev.Incident, ev.Outcome)
		}
	}
	if a := emergency[3]; a.KID != fresh.KID || fresh.KID != standby || a.Details["replaces"] != kid || a.Details["via"] != "standby" {
		t.Errorf("key.activated %+v: want the standby %s replacing %s", a, standby, kid)
	}
	if r := emergency[4]; r.KID != kid || r.Details["successor"] != fresh.KID {
		t.Errorf("key.rotated %+v: want %s -> %s", r, kid, fresh.KID)
	}
	if h := emergency[6]; h.Details["hooks"] != "none" {
		t.Errorf("incident.hook %+v: want the event saying no hook is configured", h)
	}
	if _, err := f.Ring.Key(context.Background(), kid); !errors.Is(err, keyring.ErrNoPrincipal) {
		t.Errorf("Key without principal = %v, want ErrNoPrincipal", err)
	}
}

// T4 under concurrent issuance: tokens for several audiences are issued
// continuously while the key is compromised. Afterwards every token of the
// compromised kid is rejected, every token of the new key verifies, and no
// Issue call that started after EmergencyRotate returned used the
// compromised kid.
func TestEmergencyRotationConcurrentIssuance(t *testing.T) {
	auds := []string{"api", "billing", "ops"}
	f, err := keyringtest.New(keyringtest.Options{Audience: auds})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := f.ActiveKID()
	type issued struct {
		token string
		after bool // Issue started after EmergencyRotate returned
	}
	var mu sync.Mutex
	var tokens []issued
	var done atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				after := done.Load()
				tok, err := f.Issuer.Issue(context.Background(), tokenkms.Claims{
					Subject: "s", ClientID: "c", Audience: []string{auds[(g+i)%len(auds)]},
				})
				if errors.Is(err, keyring.ErrFrozen) || errors.Is(err, keyring.ErrNoActiveKey) {
					continue // fail closed while the compromised key is replaced
				}
				if err != nil {
					t.Errorf("Issue: %v", err)
					return
				}
				mu.Lock()
				tokens = append(tokens, issued{tok, after})
				n := len(tokens)
				mu.Unlock()
				if after && n > 400 {
					return
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(tokens)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fresh, err := f.Compromise(old, "INC-T4")
	if err != nil {
		t.Fatalf("Compromise: %v", err)
	}
	done.Store(true)
	wg.Wait()
	var rejected, accepted int
	for _, it := range tokens {
		kid := kidOf(t, it.token)
		_, err := f.Verifier.Verify(context.Background(), it.token)
		switch kid {
		case old:
			if it.after {
				t.Errorf("token with the compromised kid issued after the emergency rotation")
			}
			if !errors.Is(err, verifier.ErrKeyCompromised) {
				t.Errorf("token of the compromised key: %v, want ErrKeyCompromised", err)
			}
			rejected++
		case fresh.KID:
			if err != nil {
				t.Errorf("token of the new key: %v", err)
			}
			accepted++
		default:
			t.Errorf("token with unexpected kid %s", kid)
		}
	}
	if rejected < 200 || accepted == 0 {
		t.Errorf("rejected %d old tokens, accepted %d new; want ≥200 and >0", rejected, accepted)
	}
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(h, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.KID
}
