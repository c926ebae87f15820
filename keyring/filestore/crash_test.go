package filestore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
)

// The crash test re-executes the test binary as a child that rotates keys
// in a loop; these variables configure it.
const (
	envChildPath   = "TOKENKMS_FILESTORE_CRASH_PATH"
	envChildTarget = "TOKENKMS_FILESTORE_CRASH_TARGET"
	envRevokePath  = "TOKENKMS_FILESTORE_REVOKE_PATH" // the store of a lifecycletest.RevokeThenKill child
	crashSet       = "access-tokens"
	crashRotations = 200
	// crashBatch bounds the rotations one child may do before it exits on
	// its own: each child is killed somewhere inside its batch, so the
	// kills are spread over all crashRotations rotations.
	crashBatch = 8
	// crashMinKills is the fewest kills the test accepts.
	crashMinKills = 20
	// crashJitter bounds the random delay after the chosen step before
	// SIGKILL, so that the kill lands inside a store write as well as
	// between two.
	crashJitter = 4 * time.Millisecond
)

var (
	issuer   = keyring.Principal{ID: "alice", Roles: []keyring.Role{keyring.RoleIssuer}}
	approver = keyring.Principal{ID: "bob", Roles: []keyring.Role{keyring.RoleApprover}}
	deployer = keyring.Principal{ID: "carol", Roles: []keyring.Role{keyring.RoleDeployer}}
	reader   = keyring.Principal{ID: "core", Roles: []keyring.Role{keyring.RoleCore}}
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envRevokePath); path != "" {
		lifecycletest.RevokeChild(fileOpener(path))
	}
	if path := os.Getenv(envChildPath); path != "" {
		target, _ := strconv.Atoi(os.Getenv(envChildTarget))
		if err := crashChild(path, target); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fixedKEK makes the local keys of every child usable by the next one.
func fixedKEK() []byte {
	sum := sha256.Sum256([]byte("tokenkms filestore crash test kek"))
	return sum[:]
}

// openRing opens the store at path under a keyring whose clock starts
// after every recorded time.
func openRing(ctx context.Context, path string) (*keyring.Keyring, *filestore.Store, *keyringtest.Clock, error) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := keyringtest.NewClock(start)
	st, err := filestore.Open(path, filestore.WithClock(clock.Now))
	if err != nil {
		return nil, nil, nil, err
	}
	keys, err := st.List(ctx, keyring.Filter{})
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	for _, k := range keys {
		for _, t := range []time.Time{k.CreatedAt, k.ActivatedAt, k.ApprovedAt, k.ActivateAt} {
			if t.After(start) {
				start = t
			}
		}
	}
	clock.Set(start.Add(time.Hour))
	w, err := signer.NewAESWrapper(fixedKEK())
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	lp, err := signer.NewLocalProvider(w)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	ring, err := keyring.New(ctx, keyring.Config{
		Store:     st,
		Providers: map[string]signer.Provider{keyring.DefaultBackend: lp},
		Audit:     audit.NewJSONLines(io.Discard),
		Now:       clock.Now,
		Sets:      []keyring.SetPolicy{{Name: crashSet, Owner: "team-identity"}},
	})
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return ring, st, clock, nil
}

// crashChild rotates the set until the store holds target keys, picking up
// whatever a killed predecessor left: a pending successor is approved and
// activated, otherwise a new rotation starts. It prints "ready" once the
// store is open and "step" after each completed write (create or rotate,
// approve, activate: three per rotation).
func crashChild(path string, target int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ring, st, clock, err := openRing(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	pol, err := ring.Policy(crashSet)
	if err != nil {
		return err
	}
	as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
	fmt.Println("ready")
	for {
		keys, err := st.List(ctx, keyring.Filter{Set: crashSet})
		if err != nil {
			return err
		}
		if len(keys) >= target {
			return nil
		}
		var pending *keyring.Key
		for i := range keys {
			if keys[i].State == keyring.Pending {
				pending = &keys[i]
			}
		}
		if pending == nil {
			if len(keys) == 0 {
				_, err = ring.Create(as(issuer), crashSet)
			} else {
				_, err = ring.Rotate(as(issuer), crashSet)
			}
			if err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			fmt.Println("step")
			continue
		}
		if pending.ApprovedBy == "" {
			if err := ring.Approve(as(approver), pending.KID); err != nil {
				return fmt.Errorf("approve: %w", err)
			}
			fmt.Println("step")
		}
		clock.Advance(pol.PrePublication)
		if err := ring.Activate(as(deployer), pending.KID); err != nil {
			return fmt.Errorf("activate: %w", err)
		}
		fmt.Println("step")
	}
}

// checkConsistent opens the store as a fresh process would and checks the
// invariants: at most one Active key per set (exactly one once a key was
// ever activated), every key seen before still there at a version no
// lower, and the Active key signs.
func checkConsistent(t *testing.T, path string, seen map[string]int64, activated bool) (nkeys int, hasActive bool) {
	t.Helper()
	ctx := testCtx(t)
	ring, st, _, err := openRing(ctx, path)
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer st.Close()
	keys, err := st.List(ctx, keyring.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	active := 0
	present := make(map[string]bool, len(keys))
	for _, k := range keys {
		present[k.KID] = true
		if k.State == keyring.Active {
			active++
		}
		if v, ok := seen[k.KID]; ok && k.Version < v {
			t.Errorf("key %s went back from version %d to %d", k.KID, v, k.Version)
		}
		seen[k.KID] = k.Version
		if k.State.Published() && k.Public == nil {
			t.Errorf("published key %s has no public key", k.KID)
		}
	}
	for kid := range seen {
		if !present[kid] {
			t.Errorf("key %s disappeared", kid)
		}
	}
	switch {
	case active > 1:
		t.Fatalf("%d active keys in set %s, want at most 1", active, crashSet)
	case active == 0 && activated:
		t.Fatalf("no active key after one was activated")
	case active == 1:
		s, err := ring.Signer(ctx, crashSet)
		if err != nil {
			t.Fatalf("Signer: %v", err)
		}
		if _, err := s.Sign(keyring.WithPrincipal(ctx, reader), []byte("header.payload")); err != nil {
			t.Fatalf("Sign with the active key %s: %v", s.KID(), err)
		}
	}
	return len(keys), active == 1
}

// TestCrashDuringRotations runs crashRotations rotations in child
// processes and kills them with SIGKILL at random points spread over the
// whole run: each child may do crashBatch rotations and is killed after a
// random number of its writes plus a random delay (a child that finishes
// its batch first exits on its own). The store is checked after every
// child, killed or not.
func TestCrashDuringRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	seen := make(map[string]int64)
	target := crashRotations + 1
	activated := false
	var killedAt []int // rotations done when each kill happened
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	for round := 1; ; round++ {
		if round > 4*crashRotations {
			t.Fatalf("no progress after %d rounds", round)
		}
		nkeys := len(seen)
		childTarget := min(target, nkeys+crashBatch)
		child := testenv.StartChild(t, envChildPath+"="+path, envChildTarget+"="+strconv.Itoa(childTarget))
		// Up to three writes per rotation of the batch: kill after a
		// random number of them (those the child reaches), then a jitter.
		steps := rng.IntN(3 * (childTarget - nkeys))
		for range steps {
			if line, err := child.Out.ReadString('\n'); err != nil || line != "step\n" {
				break
			}
		}
		time.Sleep(time.Duration(rng.Int64N(int64(crashJitter))))
		killed := child.Kill(t)
		n, active := checkConsistent(t, path, seen, activated)
		activated = activated || active
		if killed {
			killedAt = append(killedAt, max(n-1, 0))
		}
		if n >= target {
			if len(killedAt) < crashMinKills {
				t.Fatalf("%d rotations with only %d SIGKILLs, want at least %d", n-1, len(killedAt), crashMinKills)
			}
			t.Logf("%d rotations in %d children: %d killed by SIGKILL, %d ended on their own; kills after rotation %v",
				n-1, round, len(killedAt), round-len(killedAt), killedAt)
			return
		}
	}
}
