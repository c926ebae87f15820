package verifier_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/verifier"
)

// TestLoggedRevocationListSince: the log reports every change once, in
// order, after a cursor; other epochs and impossible cursors get the full
// content.
func TestLoggedRevocationListSince(t *testing.T) {
	now := t0
	l := verifier.NewLoggedRevocationList(func() time.Time { return now })
	ctx := context.Background()
	l.RevokeJTI(ctx, "a", t0.Add(time.Hour))
	l.RevokeKID(ctx, "k1", t0)
	l.RevokeJTI(ctx, "b", t0.Add(90*time.Minute+time.Millisecond))
	l.RevokeJTI(ctx, "past", t0.Add(-verifier.MaxLeeway-time.Second)) // no change: not logged
	l.RevokeJTI(ctx, "a", t0.Add(time.Minute))                        // no change: not logged
	l.RevokeKID(ctx, "k1", t0.Add(-time.Hour))                        // no change: not logged
	epoch, head, err := l.Cursor()
	if err != nil || epoch == 0 || head != 3 {
		t.Fatalf("Cursor: got %x, %d, %v; want an epoch, 3, nil", epoch, head, err)
	}
	for _, tc := range []struct {
		name      string
		epoch     uint64
		cursor    uint64
		wantFull  bool
		wantFrom  uint64
		wantJTIs  []verifier.JTIRevocation
		wantKIDs  int
		wantEpoch uint64
	}{
		{name: "from 0", epoch: epoch, cursor: 0, wantFull: true, wantKIDs: 1, wantJTIs: []verifier.JTIRevocation{
			{Seq: 1, Digest: verifier.DigestJTI("a"), Until: verifier.RevocationHorizon(t0.Add(time.Hour)).Unix()},
			{Seq: 3, Digest: verifier.DigestJTI("b"), Until: verifier.RevocationHorizon(t0.Add(90*time.Minute + time.Second)).Unix()},
		}},
		{name: "after 1", epoch: epoch, cursor: 1, wantFrom: 1, wantKIDs: 1, wantJTIs: []verifier.JTIRevocation{
			{Seq: 3, Digest: verifier.DigestJTI("b"), Until: verifier.RevocationHorizon(t0.Add(90*time.Minute + time.Second)).Unix()},
		}},
		{name: "after 2", epoch: epoch, cursor: 2, wantFrom: 2, wantJTIs: []verifier.JTIRevocation{
			{Seq: 3, Digest: verifier.DigestJTI("b"), Until: verifier.RevocationHorizon(t0.Add(90*time.Minute + time.Second)).Unix()},
		}},
		{name: "at the head", epoch: epoch, cursor: 3, wantFrom: 3},
		{name: "past the head", epoch: epoch, cursor: 4, wantFull: true, wantKIDs: 1, wantJTIs: make([]verifier.JTIRevocation, 2)},
		{name: "other epoch", epoch: epoch + 1, cursor: 2, wantFull: true, wantKIDs: 1, wantJTIs: make([]verifier.JTIRevocation, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := l.Since(tc.epoch, tc.cursor)
			if err != nil {
				t.Fatal(err)
			}
			if c.Epoch != epoch || c.To != 3 || c.Full != tc.wantFull || c.From != tc.wantFrom {
				t.Errorf("got epoch %x, %d..%d, full %v; want %x, %d..3, full %v", c.Epoch, c.From, c.To, c.Full, epoch, tc.wantFrom, tc.wantFull)
			}
			if len(c.KIDs) != tc.wantKIDs || len(c.JTIs) != len(tc.wantJTIs) {
				t.Fatalf("got %d kids, %d jtis; want %d, %d", len(c.KIDs), len(c.JTIs), tc.wantKIDs, len(tc.wantJTIs))
			}
			if tc.wantKIDs == 1 && (c.KIDs[0].KID != "k1" || !c.KIDs[0].IssuedBefore.Equal(t0) || c.KIDs[0].Seq != 2) {
				t.Errorf("kid policy: got %+v, want k1 before t0 at seq 2", c.KIDs[0])
			}
			for i, want := range tc.wantJTIs {
				if want.Seq != 0 && c.JTIs[i] != want {
					t.Errorf("jti %d: got %+v, want %+v", i, c.JTIs[i], want)
				}
			}
		})
	}
}

// TestLoggedRevocationListCompacts: expired jti entries leave the log
// once they are a quarter of it, and a slice handed out before stays
// intact.
func TestLoggedRevocationListCompacts(t *testing.T) {
	now := t0
	l := verifier.NewLoggedRevocationList(func() time.Time { return now })
	ctx := context.Background()
	l.RevokeJTI(ctx, "short", t0.Add(time.Minute))
	l.RevokeJTI(ctx, "long", t0.Add(time.Hour))
	epoch, _, _ := l.Cursor()
	before, _ := l.Since(epoch, 0)
	now = verifier.RevocationHorizon(t0.Add(2 * time.Minute))
	l.RevokeJTI(ctx, "later", t0.Add(time.Hour))
	after, _ := l.Since(epoch, 0)
	if len(after.JTIs) != 2 || after.JTIs[0].Digest != verifier.DigestJTI("long") {
		t.Errorf("after compaction: got %+v, want long and later", after.JTIs)
	}
	if len(before.JTIs) != 2 || before.JTIs[0].Digest != verifier.DigestJTI("short") {
		t.Errorf("a slice handed out before changed: %+v", before.JTIs)
	}
	if c, _ := l.Since(epoch, 1); len(c.JTIs) != 2 || c.JTIs[1].Seq != 3 {
		t.Errorf("since 1: got %+v, want long and later", c.JTIs)
	}
}

// TestLoggedRevocationListWait: Wait returns at once behind the head,
// at the next change at the head, and with ctx's error when none comes.
func TestLoggedRevocationListWait(t *testing.T) {
	l := verifier.NewLoggedRevocationList(nil)
	ctx := context.Background()
	l.RevokeJTI(ctx, "a", time.Now().Add(time.Hour))
	epoch, head, _ := l.Cursor()
	if err := l.Wait(ctx, epoch, head-1); err != nil {
		t.Errorf("behind the head: %v", err)
	}
	if err := l.Wait(ctx, epoch+1, head); err != nil {
		t.Errorf("other epoch: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := l.Wait(short, epoch, head); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no change: got %v, want DeadlineExceeded", err)
	}
	var woke atomic.Bool
	done := make(chan error)
	go func() {
		err := l.Wait(ctx, epoch, head)
		woke.Store(true)
		done <- err
	}()
	l.RevokeKID(ctx, "k", time.Now())
	if err := <-done; err != nil || !woke.Load() {
		t.Errorf("at the head, then a change: %v", err)
	}
}

// TestUnloggedRevocationList: a list made by NewMemoryRevocationList
// keeps no log and says so.
func TestUnloggedRevocationList(t *testing.T) {
	l := verifier.NewMemoryRevocationList(nil)
	if _, err := l.Since(1, 0); !errors.Is(err, verifier.ErrNotLogged) {
		t.Errorf("Since: got %v, want ErrNotLogged", err)
	}
	if err := l.Wait(context.Background(), 1, 0); !errors.Is(err, verifier.ErrNotLogged) {
		t.Errorf("Wait: got %v, want ErrNotLogged", err)
	}
	if _, _, err := l.Cursor(); !errors.Is(err, verifier.ErrNotLogged) {
		t.Errorf("Cursor: got %v, want ErrNotLogged", err)
	}
}
