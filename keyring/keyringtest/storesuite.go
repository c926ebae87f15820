package keyringtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenkms/tokenkms/keyring"
)

// TestKeyStore is the conformance suite every keyring.KeyStore passes.
// newStore returns an empty store; it is called once per subtest. A store
// that also implements keyring.BatchUpdater must apply a batch atomically.
func TestKeyStore(t *testing.T, newStore func(t *testing.T) keyring.KeyStore) {
	for _, tc := range []struct {
		name    string
		standby bool
	}{
		{name: "PutGet"},
		{name: "StandbyRoundTrip", standby: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), testContext(t)
			want := SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
			if tc.standby {
				want.Standby, want.ApprovedBy, want.ApprovedAt = true, "standing:bob", want.CreatedAt
			}
			if err := s.Put(ctx, want); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := s.Get(ctx, "kid-1")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			want.Version = 1
			if diff := cmp.Diff(want, got, keyCmp...); diff != "" {
				t.Errorf("Get after Put (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("UnknownStateOrPurposeRefused", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			state   keyring.State
			purpose keyring.Purpose
		}{
			{name: "state 0", state: 0, purpose: keyring.Signing},
			{name: "state 7", state: 7, purpose: keyring.Signing},
			{name: "state 99", state: 99, purpose: keyring.Signing},
			{name: "state -3", state: -3, purpose: keyring.Signing},
			{name: "purpose 0", state: keyring.Pending, purpose: 0},
			{name: "purpose 4", state: keyring.Pending, purpose: 4},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, ctx := newStore(t), testContext(t)
				bad := SampleKey("bad", "set-a", tc.state, time.Unix(1_700_000_000, 0))
				bad.Purpose = tc.purpose
				if err := s.Put(ctx, bad); !errors.Is(err, keyring.ErrCorruptRecord) {
					t.Errorf("Put(%s) error = %v, want ErrCorruptRecord", tc.name, err)
				}
				if _, err := s.Get(ctx, "bad"); !errors.Is(err, keyring.ErrNotFound) {
					t.Errorf("refused Put stored the record: Get = %v, want ErrNotFound", err)
				}
				good := SampleKey("good", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
				if err := s.Put(ctx, good); err != nil {
					t.Fatalf("Put: %v", err)
				}
				bad.KID = "good"
				if err := s.Update(ctx, bad, 1); !errors.Is(err, keyring.ErrCorruptRecord) {
					t.Errorf("Update(%s) error = %v, want ErrCorruptRecord", tc.name, err)
				}
				if got, _ := s.Get(ctx, "good"); got.State != keyring.Pending || got.Purpose != keyring.Signing || got.Version != 1 {
					t.Errorf("refused Update changed the record: %v purpose %v v%d", got.State, got.Purpose, got.Version)
				}
			})
		}
	})
	t.Run("GetMissing", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("PutExists", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		k := SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
		if err := s.Put(ctx, k); err != nil {
			t.Fatalf("Put: %v", err)
		}
		k.Set = "other"
		if err := s.Put(ctx, k); !errors.Is(err, keyring.ErrExists) {
			t.Errorf("second Put error = %v, want ErrExists", err)
		}
		got, _ := s.Get(ctx, "kid-1")
		if got.Set != "set-a" {
			t.Errorf("refused Put changed the record: set = %q", got.Set)
		}
	})
	t.Run("UpdateVersioning", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		k := SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
		if err := s.Put(ctx, k); err != nil {
			t.Fatalf("Put: %v", err)
		}
		k.State = keyring.Active
		k.ActivatedAt = time.Unix(1_700_000_600, 0).UTC()
		if err := s.Update(ctx, k, 1); err != nil {
			t.Fatalf("Update(v1): %v", err)
		}
		got, err := s.Get(ctx, "kid-1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		k.Version = 2
		if diff := cmp.Diff(k, got, keyCmp...); diff != "" {
			t.Errorf("after Update (-want +got):\n%s", diff)
		}
		stale := k
		stale.State = keyring.Retired
		if err := s.Update(ctx, stale, 1); !errors.Is(err, keyring.ErrConflict) {
			t.Errorf("Update with stale version error = %v, want ErrConflict", err)
		}
		if got, _ := s.Get(ctx, "kid-1"); got.State != keyring.Active || got.Version != 2 {
			t.Errorf("refused Update changed the record: state %v version %d", got.State, got.Version)
		}
	})
	t.Run("UpdateMissing", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		k := SampleKey("ghost", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
		if err := s.Update(ctx, k, 1); !errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("Update(missing) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("ListFilter", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		base := time.Unix(1_700_000_000, 0)
		keys := []keyring.Key{
			SampleKey("c", "set-a", keyring.Active, base.Add(2*time.Hour)),
			SampleKey("a", "set-a", keyring.Pending, base),
			SampleKey("b", "set-b", keyring.Retired, base.Add(time.Hour)),
			SampleKey("d", "set-a", keyring.Retiring, base.Add(2*time.Hour)),
		}
		for _, k := range keys {
			if err := s.Put(ctx, k); err != nil {
				t.Fatalf("Put %s: %v", k.KID, err)
			}
		}
		for _, tc := range []struct {
			name string
			f    keyring.Filter
			want []string
		}{
			{"all", keyring.Filter{}, []string{"a", "b", "c", "d"}},
			{"set", keyring.Filter{Set: "set-a"}, []string{"a", "c", "d"}},
			{"states", keyring.Filter{States: []keyring.State{keyring.Active, keyring.Retired}}, []string{"b", "c"}},
			{"set+state", keyring.Filter{Set: "set-a", States: []keyring.State{keyring.Retiring}}, []string{"d"}},
			{"none", keyring.Filter{Set: "set-z"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.List(ctx, tc.f)
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				var kids []string
				for _, k := range got {
					kids = append(kids, k.KID)
				}
				if diff := cmp.Diff(tc.want, kids); diff != "" {
					t.Errorf("List(%+v) kids (-want +got):\n%s", tc.f, diff)
				}
			})
		}
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		k := SampleKey("kid-1", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))
		if err := s.Put(ctx, k); err != nil {
			t.Fatalf("Put: %v", err)
		}
		const writers = 8
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := k
				k.Owner = fmt.Sprintf("writer-%d", i)
				err := s.Update(ctx, k, 1)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, keyring.ErrConflict):
					t.Errorf("writer %d: error = %v, want nil or ErrConflict", i, err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d writers won the same version, want exactly 1", wins.Load())
		}
		got, _ := s.Get(ctx, "kid-1")
		if got.Version != 2 {
			t.Errorf("version after one winning update = %d, want 2", got.Version)
		}
	})
	t.Run("ConcurrentPut", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Put(ctx, SampleKey("same", "set-a", keyring.Pending, time.Unix(1_700_000_000, 0))); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, keyring.ErrExists) {
					t.Errorf("Put error = %v, want nil or ErrExists", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d Puts of one kid succeeded, want 1", wins.Load())
		}
	})
	t.Run("Approvals", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		at := time.Unix(1_700_000_000, 0).UTC()
		sched := keyring.Approval{Kind: keyring.ScheduleApproval, Subject: "set-b", By: "bob", At: at, Terms: "rotation_period=2160h0m0s"}
		other := keyring.Approval{Kind: keyring.ScheduleApproval, Subject: "set-a", By: "bob", At: at}
		retire := keyring.Approval{Kind: keyring.RetireApproval, Subject: "kid-9", By: "erin", At: at.Add(time.Hour)}
		if got, err := s.Approvals(ctx); err != nil || len(got) != 0 {
			t.Fatalf("Approvals of an empty store = %v, %v; want none", got, err)
		}
		for _, a := range []keyring.Approval{sched, other, retire} {
			if err := s.PutApproval(ctx, a); err != nil {
				t.Fatalf("PutApproval(%s %s): %v", a.Kind, a.Subject, err)
			}
		}
		replaced := sched
		replaced.By, replaced.At = "dora", at.Add(2*time.Hour)
		if err := s.PutApproval(ctx, replaced); err != nil {
			t.Fatalf("PutApproval (replace): %v", err)
		}
		got, err := s.Approvals(ctx)
		if err != nil {
			t.Fatalf("Approvals: %v", err)
		}
		want := []keyring.Approval{retire, other, replaced} // by kind, then subject
		if diff := cmp.Diff(want, got, keyCmp...); diff != "" {
			t.Errorf("Approvals (-want +got):\n%s", diff)
		}
		if err := s.DeleteApproval(ctx, keyring.ScheduleApproval, "set-b"); err != nil {
			t.Fatalf("DeleteApproval: %v", err)
		}
		if err := s.DeleteApproval(ctx, keyring.ScheduleApproval, "set-b"); !errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("DeleteApproval of a missing approval = %v, want ErrNotFound", err)
		}
		if err := s.DeleteApproval(ctx, keyring.ScheduleApproval, "kid-9"); !errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("DeleteApproval of the wrong kind = %v, want ErrNotFound", err)
		}
		if got, _ := s.Approvals(ctx); len(got) != 2 {
			t.Errorf("Approvals after a delete = %v, want 2", got)
		}
		for name, bad := range map[string]keyring.Approval{
			"no kind": {Subject: "s", By: "b", At: at}, "no subject": {Kind: keyring.ScheduleApproval, By: "b", At: at},
			"no approver": {Kind: keyring.ScheduleApproval, Subject: "s", At: at}, "no time": {Kind: keyring.ScheduleApproval, Subject: "s", By: "b"},
		} {
			if err := s.PutApproval(ctx, bad); err == nil {
				t.Errorf("PutApproval(%s) = nil, want an error", name)
			}
		}
		if got, _ := s.Approvals(ctx); len(got) != 2 {
			t.Errorf("Approvals after refused puts = %v, want 2", got)
		}
	})
	if _, ok := newStore(t).(keyring.BatchUpdater); !ok {
		return // the keyring applies updates one by one, undoing on failure
	}
	t.Run("BatchAtomic", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		b := s.(keyring.BatchUpdater)
		a := SampleKey("a", "set-a", keyring.Active, time.Unix(1_700_000_000, 0))
		c := SampleKey("c", "set-a", keyring.Pending, time.Unix(1_700_000_100, 0))
		for _, k := range []keyring.Key{a, c} {
			if err := s.Put(ctx, k); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		a2, c2 := a, c
		a2.State, c2.State = keyring.Retiring, keyring.Active
		err := b.UpdateBatch(ctx, []keyring.KeyUpdate{{Key: a2, ExpectVersion: 1}, {Key: c2, ExpectVersion: 7}})
		if !errors.Is(err, keyring.ErrConflict) {
			t.Fatalf("UpdateBatch with one stale version error = %v, want ErrConflict", err)
		}
		if got, _ := s.Get(ctx, "a"); got.State != keyring.Active || got.Version != 1 {
			t.Errorf("failed batch left a half-applied change: a is %v v%d", got.State, got.Version)
		}
		if err := b.UpdateBatch(ctx, []keyring.KeyUpdate{{Key: a2, ExpectVersion: 1}, {Key: c2, ExpectVersion: 1}}); err != nil {
			t.Fatalf("UpdateBatch: %v", err)
		}
		ga, _ := s.Get(ctx, "a")
		gc, _ := s.Get(ctx, "c")
		if ga.State != keyring.Retiring || gc.State != keyring.Active || ga.Version != 2 || gc.Version != 2 {
			t.Errorf("after batch: a %v v%d, c %v v%d; want retiring v2, active v2", ga.State, ga.Version, gc.State, gc.Version)
		}
	})
	t.Run("BatchInOrder", func(t *testing.T) {
		s, ctx := newStore(t), testContext(t)
		b := s.(keyring.BatchUpdater)
		a := SampleKey("a", "set-a", keyring.Active, time.Unix(1_700_000_000, 0))
		if err := s.Put(ctx, a); err != nil {
			t.Fatalf("Put: %v", err)
		}
		a2, a3 := a, a
		a2.State, a3.State = keyring.Retiring, keyring.Retired
		// Each update sees the one before it, as in a transaction.
		if err := b.UpdateBatch(ctx, []keyring.KeyUpdate{{Key: a2, ExpectVersion: 1}, {Key: a3, ExpectVersion: 2}}); err != nil {
			t.Fatalf("UpdateBatch of one key twice: %v", err)
		}
		if got, _ := s.Get(ctx, "a"); got.State != keyring.Retired || got.Version != 3 {
			t.Errorf("after the batch: a is %v v%d, want retired v3", got.State, got.Version)
		}
		err := b.UpdateBatch(ctx, []keyring.KeyUpdate{{Key: a2, ExpectVersion: 3}, {Key: a3, ExpectVersion: 3}})
		if !errors.Is(err, keyring.ErrConflict) {
			t.Fatalf("UpdateBatch whose second update expects the version the first replaced = %v, want ErrConflict", err)
		}
		if got, _ := s.Get(ctx, "a"); got.State != keyring.Retired || got.Version != 3 {
			t.Errorf("failed batch left a half-applied change: a is %v v%d", got.State, got.Version)
		}
	})
}

// SampleKey returns a complete signing key record (with a real P-256
// public key) for store tests.
func SampleKey(kid, set string, st keyring.State, created time.Time) keyring.Key {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	created = created.UTC()
	return keyring.Key{
		KID: kid, Set: set, Purpose: keyring.Signing, Algorithm: "ES256", State: st,
		Owner: "team-identity", CreatedBy: "alice", CreatedAt: created, RotateBy: created.Add(90 * keyring.Day),
		Backend: "local", BackendRef: keyring.Hide("local.v1.ES256.opaque"), Public: &priv.PublicKey,
	}
}

var keyCmp = []cmp.Option{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b *ecdsa.PublicKey) bool { return a.Equal(b) }),
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
