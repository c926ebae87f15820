package pgstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

const replicaSet = "access-tokens"

type replica struct {
	ring  *keyring.Keyring
	store *pgstore.Store
}

// newReplicas builds n keyrings, each with its own pool, on one schema,
// sharing a local key-encryption key and a clock. Each refreshes on
// Listen notifications.
func newReplicas(t *testing.T, n int, clock *keyringtest.Clock) []replica {
	t.Helper()
	schema := newSchema(t)
	ctx := testCtx(t)
	kek := sha256.Sum256([]byte("pgstore replica test kek"))
	var out []replica
	for i := range n {
		pool := newPool(t, schema)
		if err := pgstore.Migrate(ctx, pool); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		st := pgstore.New(pool, pgstore.WithClock(clock.Now))
		w, err := signer.NewAESWrapper(kek[:])
		if err != nil {
			t.Fatal(err)
		}
		lp, err := signer.NewLocalProvider(w)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := keyring.New(ctx, keyring.Config{
			Store:       st,
			Providers:   map[string]signer.Provider{keyring.DefaultBackend: lp},
			Audit:       audit.NewJSONLines(io.Discard),
			Revocations: st,
			Now:         clock.Now,
			Sets:        []keyring.SetPolicy{{Name: replicaSet, Owner: "team-identity"}},
		})
		if err != nil {
			t.Fatalf("replica %d: keyring.New: %v", i, err)
		}
		lctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		ready := make(chan struct{})
		go func() {
			defer close(done)
			var once sync.Once
			st.Listen(lctx, func() {
				once.Do(func() { close(ready) })
				rctx, rcancel := context.WithTimeout(lctx, 10*time.Second)
				defer rcancel()
				ring.Refresh(rctx)
			})
		}()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("replica %d: Listen did not start", i)
		}
		out = append(out, replica{ring: ring, store: st})
	}
	return out
}

func as(t *testing.T, p keyring.Principal) context.Context {
	return keyring.WithPrincipal(testCtx(t), p)
}

func activeKIDs(t *testing.T, st *pgstore.Store) []string {
	t.Helper()
	keys, err := st.List(testCtx(t), keyring.Filter{Set: replicaSet, States: []keyring.State{keyring.Active}})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// TestReplicasConcurrentActivation: three replicas each activate their own
// first key, then each rotates and activates a successor, at the same
// time; after each round exactly one key of the set is Active (the first
// activation, with no previous key to conflict on, has exactly one winner).
func TestReplicasConcurrentActivation(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	reps := newReplicas(t, 3, clock)
	pending := make([]string, len(reps))
	for i, r := range reps {
		k, err := r.ring.Create(as(t, keyringtest.Issuer), replicaSet)
		if err != nil {
			t.Fatalf("replica %d Create: %v", i, err)
		}
		if err := r.ring.Approve(as(t, keyringtest.Approver), k.KID); err != nil {
			t.Fatalf("replica %d Approve: %v", i, err)
		}
		pending[i] = k.KID
	}
	// race runs op on every replica at once; besides a conflict, a loser
	// may get one of the allowed errors.
	race := func(round string, op func(i int, r replica) error, allowed ...error) int {
		var wg sync.WaitGroup
		errs := make([]error, len(reps))
		for i, r := range reps {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = op(i, r) }()
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, keyring.ErrConflict), errors.Is(err, keyring.ErrIllegalState):
			case slices.ContainsFunc(allowed, func(a error) bool { return errors.Is(err, a) }):
			default:
				t.Errorf("%s: replica %d: unexpected error %v", round, i, err)
			}
		}
		if got := activeKIDs(t, reps[0].store); len(got) != 1 {
			t.Fatalf("%s: active keys %v, want exactly one", round, got)
		}
		return wins
	}
	// A replica whose snapshot already holds the winner's Active key
	// treats its own activation as a rotation, refused because its key's
	// pre-publication delay has not passed.
	if wins := race("first activation", func(i int, r replica) error {
		return r.ring.Activate(as(t, keyringtest.Deployer), pending[i])
	}, keyring.ErrPrePublication); wins != 1 {
		t.Errorf("first activation: %d replicas succeeded, want 1", wins)
	}
	for round := range 3 {
		for i, r := range reps {
			if err := r.ring.Refresh(testCtx(t)); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			k, err := r.ring.Create(as(t, keyringtest.Issuer), replicaSet)
			if err != nil {
				t.Fatalf("replica %d Create: %v", i, err)
			}
			if err := r.ring.Approve(as(t, keyringtest.Approver), k.KID); err != nil {
				t.Fatalf("replica %d Approve: %v", i, err)
			}
			pending[i] = k.KID
		}
		pol, _ := reps[0].ring.Policy(replicaSet)
		clock.Advance(pol.PrePublication)
		if wins := race(fmt.Sprintf("rotation %d", round+1), func(i int, r replica) error {
			return r.ring.Activate(as(t, keyringtest.Deployer), pending[i])
		}); wins < 1 {
			// A replica that already saw a winner's activation may
			// legitimately rotate again on top of it; what must hold is
			// one Active key, checked by race.
			t.Errorf("rotation %d: no replica succeeded", round+1)
		}
	}
}

// TestEmergencyRotationPropagation: replica A rotates the Active key in an
// emergency; replicas B and C, refreshing on Listen, must reject the
// compromised kid. The delay is measured over 100 trials and logged.
func TestEmergencyRotationPropagation(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	reps := newReplicas(t, 3, clock)
	a := reps[0]
	if _, err := keyringtest.ActivateFirst(testCtx(t), a.ring, replicaSet); err != nil {
		t.Fatalf("ActivateFirst: %v", err)
	}
	const trials = 100
	var delays []time.Duration
	for trial := range trials {
		kid := activeKIDs(t, a.store)[0]
		for _, r := range reps[1:] {
			waitFor(t, func() bool {
				_, err := r.ring.VerificationKey(testCtx(t), kid)
				return err == nil
			}, "replica to see active key "+kid)
		}
		start := time.Now()
		if _, err := a.ring.EmergencyRotate(as(t, keyringtest.SecurityOfficer), kid, keyring.Incident{ID: fmt.Sprintf("INC-%d", trial), Reason: "test"}); err != nil {
			t.Fatalf("trial %d: EmergencyRotate: %v", trial, err)
		}
		for _, r := range reps[1:] {
			waitFor(t, func() bool {
				_, err := r.ring.VerificationKey(testCtx(t), kid)
				return errors.Is(err, verifier.ErrKeyCompromised)
			}, "replica to reject compromised "+kid)
		}
		delays = append(delays, time.Since(start))
		if revoked, err := reps[2].store.Revoked(testCtx(t), kid, "any", clock.Now().Add(-time.Second)); err != nil || !revoked {
			t.Fatalf("trial %d: Revoked(compromised kid) on replica C = %v, %v; want true", trial, revoked, err)
		}
	}
	slices.Sort(delays)
	t.Logf("emergency rotation seen by both other replicas: p50 %v, p99 %v, max %v over %d trials",
		delays[trials/2], delays[trials*99/100-1], delays[trials-1], trials)
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// TestReplicasRotateOnce: three replicas start the rotation of one set at
// the same time; exactly one successor may be created, the others must be
// refused: the keyring re-reads the store before it creates a successor,
// and the store's one-successor index refuses a second one (ErrConflict).
func TestReplicasRotateOnce(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	reps := newReplicas(t, 3, clock)
	if _, err := keyringtest.ActivateFirst(testCtx(t), reps[0].ring, replicaSet); err != nil {
		t.Fatalf("ActivateFirst: %v", err)
	}
	for i, r := range reps {
		if err := r.ring.Refresh(testCtx(t)); err != nil {
			t.Fatalf("replica %d Refresh: %v", i, err)
		}
	}
	start := make(chan struct{})
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = r.ring.Rotate(as(t, keyringtest.Issuer), replicaSet)
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, keyring.ErrIllegalState), errors.Is(err, keyring.ErrConflict):
		default:
			t.Errorf("replica %d Rotate: unexpected error %v", i, err)
		}
	}
	pending, err := reps[0].store.List(testCtx(t), keyring.Filter{Set: replicaSet, States: []keyring.State{keyring.Pending}})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var kids []string
	for _, p := range pending {
		kids = append(kids, p.KID)
	}
	if len(kids) != 1 || wins != 1 {
		t.Errorf("concurrent Rotate on 3 replicas: %d succeeded, pending successors %v; want exactly 1 of each", wins, kids)
	}
}

// TestReplicasStandby: replicas that tick at once under a standing
// approval keep one standby key between them (the store's one-standby
// index refuses a second: ErrConflict); another replica trusts it before
// any incident, activates it in an emergency rotation, and the first
// replica signs with it.
func TestReplicasStandby(t *testing.T) {
	clock := keyringtest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	reps := newReplicas(t, 2, clock)
	old, err := keyringtest.ActivateFirst(testCtx(t), reps[0].ring, replicaSet)
	if err != nil {
		t.Fatalf("ActivateFirst: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(reps))
	for i, r := range reps {
		if err := r.ring.ApproveSchedule(as(t, keyringtest.Approver), replicaSet); err != nil {
			t.Fatalf("replica %d ApproveSchedule: %v", i, err)
		}
		if err := r.ring.Refresh(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range reps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.ring.Tick(testCtx(t)) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, keyring.ErrConflict) {
			t.Errorf("replica %d Tick: %v", i, err)
		}
	}
	keys, err := reps[0].store.List(testCtx(t), keyring.Filter{Set: replicaSet, States: []keyring.State{keyring.Pending}})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].Standby {
		t.Fatalf("pending keys after concurrent ticks: %v, want one standby", keys)
	}
	sb := keys[0]
	b := reps[1]
	waitFor(t, func() bool {
		_, err := b.ring.VerificationKey(testCtx(t), sb.KID)
		return err == nil
	}, "replica B to trust the standby")
	fresh, err := b.ring.EmergencyRotate(as(t, keyringtest.SecurityOfficer), old.KID, keyring.Incident{ID: "INC-standby"})
	if err != nil {
		t.Fatalf("EmergencyRotate on replica B: %v", err)
	}
	if fresh.KID != sb.KID {
		t.Errorf("replica B activated %s, want the standby %s", fresh.KID, sb.KID)
	}
	waitFor(t, func() bool {
		s, err := reps[0].ring.Signer(testCtx(t), replicaSet)
		return err == nil && s.KID() == sb.KID
	}, "replica A to sign with the activated standby")
}
