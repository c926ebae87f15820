package lifecycletest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/jose"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// Opener opens a durable store as a new process would, on the clock now:
// the store, the revocation list the host wires next to it (nil: the
// keyring's default for that store), and a function that closes both.
type Opener func(now func() time.Time) (keyring.KeyStore, verifier.RevocationList, func() error, error)

// The shape of Restarts: two simulated years, the keyring restarted
// restartCount times, a tick (and a token) every tickEvery.
const (
	restartYears = 2
	restartCount = 20
	tickEvery    = 6 * time.Hour
)

// restartEpoch is where the simulated time of Restarts and
// RevokeThenKill starts.
var restartEpoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// node is one process's keyring over the store under test.
type node struct {
	ring   *keyring.Keyring
	issuer *signer.Issuer
	v      *verifier.Verifier
	close  func() error
}

// boot builds a keyring over a freshly opened store, as a host's process
// does at start: local keys under a fixed key-encryption key, the given
// audit sink, the strict defaults.
func boot(ctx context.Context, open Opener, now func() time.Time, sink audit.Sink) (*node, error) {
	st, revs, closeFn, err := open(now)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	n, err := ringOn(ctx, st, revs, now, sink)
	if err != nil {
		return nil, errors.Join(err, closeFn())
	}
	n.close = closeFn
	return n, nil
}

func ringOn(ctx context.Context, st keyring.KeyStore, revs verifier.RevocationList, now func() time.Time, sink audit.Sink) (*node, error) {
	kek := sha256.Sum256([]byte("tokenkms restart test kek"))
	w, err := signer.NewAESWrapper(kek[:])
	if err != nil {
		return nil, err
	}
	lp, err := signer.NewLocalProvider(w)
	if err != nil {
		return nil, err
	}
	ring, err := keyring.New(ctx, keyring.Config{
		Store: st, Revocations: revs, Audit: sink, Now: now,
		Providers: map[string]signer.Provider{keyring.DefaultBackend: lp},
		Sets:      []keyring.SetPolicy{{Name: Set, Owner: "team-identity"}},
	})
	if err != nil {
		return nil, fmt.Errorf("keyring.New: %w", err)
	}
	is, err := signer.NewIssuer(ring, signer.IssuerConfig{Set: Set, Issuer: IssuerURL, Audience: []string{Audience}, Now: now})
	if err != nil {
		return nil, fmt.Errorf("NewIssuer: %w", err)
	}
	v, err := verifier.New(ring, verifier.Policy{Issuer: IssuerURL, Audience: []string{Audience}}, verifier.WithNow(now))
	if err != nil {
		return nil, fmt.Errorf("verifier.New: %w", err)
	}
	return &node{ring: ring, issuer: is, v: v}, nil
}

// revokedToken is a token revoked before a restart, and how.
type revokedToken struct {
	tok, how string
}

// Restarts runs two simulated years of scheduled rotation on the store
// that open opens, restarting the keyring 20 times (close, then open
// again, as a new process), with no host code but the first key's
// bootstrap and one standing schedule approval on the first start. It
// fails t if a key is Active past 90 days, if Issue fails once (a token
// every six hours, each verified), if a key does not open after a
// restart, or if a token revoked (by jti, or by kid) before a restart
// verifies after it.
func Restarts(t *testing.T, open Opener) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	clock := keyringtest.NewClock(restartEpoch)
	rec := audit.NewRecorder() // the host's durable audit trail
	end := restartEpoch.Add(restartYears * 365 * keyring.Day)
	segment := end.Sub(restartEpoch) / restartCount
	var revoked []revokedToken
	activeKIDs := map[string]bool{}
	for r := range restartCount {
		n, err := boot(ctx, open, clock.Now, rec)
		if err != nil {
			t.Fatalf("start %d: %v", r, err)
		}
		as := func(p keyring.Principal) context.Context { return keyring.WithPrincipal(ctx, p) }
		if r == 0 {
			if _, err := keyringtest.ActivateFirst(ctx, n.ring, Set); err != nil {
				t.Fatalf("first key: %v", err)
			}
			if err := n.ring.ApproveSchedule(as(keyringtest.Approver), Set); err != nil {
				t.Fatalf("ApproveSchedule: %v", err)
			}
		}
		for _, rt := range revoked {
			if _, err := n.v.Verify(ctx, rt.tok); !errors.Is(err, verifier.ErrRevoked) {
				t.Fatalf("start %d: token revoked by %s before the restart: Verify = %v, want %v", r, rt.how, err, verifier.ErrRevoked)
			}
		}
		revoked = revoked[:0]
		stop := restartEpoch.Add(time.Duration(r+1) * segment)
		for clock.Now().Before(stop) {
			clock.Advance(tickEvery)
			now := clock.Now()
			if err := n.ring.Tick(ctx); err != nil {
				t.Fatalf("%v (start %d): Tick: %v", now, r, err)
			}
			tok, err := n.issuer.Issue(ctx, tokenkms.Claims{Subject: "s", ClientID: "c"})
			if err != nil {
				t.Fatalf("%v (start %d): Issue: %v", now, r, err)
			}
			if _, err := n.v.Verify(ctx, tok); err != nil {
				t.Fatalf("%v (start %d): fresh token: %v", now, r, err)
			}
			active, err := n.ring.Keys(as(keyringtest.Core), keyring.Filter{Set: Set, States: []keyring.State{keyring.Active}})
			if err != nil || len(active) != 1 {
				t.Fatalf("%v: Active keys = %v, %v; want one", now, active, err)
			}
			if age := now.Sub(active[0].ActivatedAt); age > keyring.MaxSigningRotation {
				t.Fatalf("%v: %s Active for %v, past 90 days", now, active[0].KID, age)
			}
			activeKIDs[active[0].KID] = true
		}
		// Revoke, then restart at once: the tokens are still within their
		// life, so only the revocation can refuse them.
		byJTI := mustToken(t, ctx, n)
		if err := n.ring.RevokeJTI(as(keyringtest.SecurityOfficer), jtiOf(t, byJTI), clock.Now().Add(time.Hour)); err != nil {
			t.Fatalf("RevokeJTI: %v", err)
		}
		byKID := mustToken(t, ctx, n)
		clock.Advance(time.Second)
		kid := kidOf(t, byKID)
		if err := n.ring.RevokeKID(as(keyringtest.SecurityOfficer), kid, clock.Now()); err != nil {
			t.Fatalf("RevokeKID: %v", err)
		}
		revoked = append(revoked, revokedToken{byJTI, "jti"}, revokedToken{byKID, "kid " + kid})
		if err := n.close(); err != nil {
			t.Fatalf("close %d: %v", r, err)
		}
	}
	if days := clock.Now().Sub(restartEpoch) / keyring.Day; days < restartYears*365 {
		t.Fatalf("simulated %d days, want %d", days, restartYears*365)
	}
	if len(activeKIDs) < 8 {
		t.Errorf("%d keys were Active over two years, want at least 8 (one per 90 days)", len(activeKIDs))
	}
	t.Logf("%d restarts over %v: %d keys Active in turn, %d audit events", restartCount, clock.Now().Sub(restartEpoch), len(activeKIDs), len(rec.Events()))
}

func mustToken(t *testing.T, ctx context.Context, n *node) string {
	t.Helper()
	tok, err := n.issuer.Issue(ctx, tokenkms.Claims{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

// claimsOf decodes a token's header and claims, unverified.
func claimsOf(t *testing.T, tok string) (jose.Header, tokenkms.Claims) {
	t.Helper()
	parts, err := jose.SplitCompact([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	hj, err := jose.AppendDecode(nil, parts.Header)
	if err != nil {
		t.Fatal(err)
	}
	h, err := jose.ParseHeader(string(hj))
	if err != nil {
		t.Fatal(err)
	}
	pj, err := jose.AppendDecode(nil, parts.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var c tokenkms.Claims
	if err := jose.DecodeClaims(string(pj), &c); err != nil {
		t.Fatal(err)
	}
	return h, c
}

func jtiOf(t *testing.T, tok string) string { _, c := claimsOf(t, tok); return c.ID }
func kidOf(t *testing.T, tok string) string { h, _ := claimsOf(t, tok); return h.KID }

// The environment of a RevokeThenKill child.
const (
	envRevokeAt  = "TOKENKMS_REVOKE_CHILD_AT"  // Unix seconds of the child's clock
	envRevokeJTI = "TOKENKMS_REVOKE_CHILD_JTI" // jti to revoke until an hour later
	envRevokeKID = "TOKENKMS_REVOKE_CHILD_KID" // kid to revoke (tokens before the clock)
)

// RevokeChild runs the child side of RevokeThenKill when the test binary
// was started as one (and then never returns: the parent kills it); it
// returns at once otherwise. Call it first in TestMain.
func RevokeChild(open Opener) {
	at := os.Getenv(envRevokeAt)
	if at == "" {
		return
	}
	if err := revokeChild(open, at); err != nil {
		fmt.Fprintln(os.Stderr, "revoke child:", err)
		os.Exit(2)
	}
	select {} // the parent kills us right after reading "revoked"
}

func revokeChild(open Opener, at string) error {
	sec, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return err
	}
	now := func() time.Time { return time.Unix(sec, 0).UTC() }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := boot(ctx, open, now, audit.NewRecorder())
	if err != nil {
		return err
	}
	fmt.Println("ready")
	as := keyring.WithPrincipal(ctx, keyringtest.SecurityOfficer)
	if jti := os.Getenv(envRevokeJTI); jti != "" {
		if err := n.ring.RevokeJTI(as, jti, now().Add(time.Hour)); err != nil {
			return err
		}
	}
	if kid := os.Getenv(envRevokeKID); kid != "" {
		if err := n.ring.RevokeKID(as, kid, now()); err != nil {
			return err
		}
	}
	fmt.Println("revoked")
	return nil
}

// RevokeThenKill revokes tokens in a child process (testenv.StartChild,
// whose TestMain calls RevokeChild) that is killed with SIGKILL as soon as
// the revocation call has returned, several times over: each time, a
// keyring opened afterwards on the store refuses the token (ErrRevoked).
// extraEnv is passed to every child (how it finds the store).
func RevokeThenKill(t *testing.T, open Opener, extraEnv ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	clock := keyringtest.NewClock(restartEpoch)
	rec := audit.NewRecorder()
	const rounds = 6
	for r := range rounds {
		n, err := boot(ctx, open, clock.Now, rec)
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		if r == 0 {
			if _, err := keyringtest.ActivateFirst(ctx, n.ring, Set); err != nil {
				t.Fatal(err)
			}
		}
		tok := mustToken(t, ctx, n)
		if err := n.close(); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		env := append([]string{envRevokeAt + "=" + strconv.FormatInt(clock.Now().Unix(), 10)}, extraEnv...)
		how := "jti"
		if r%2 == 0 {
			env = append(env, envRevokeJTI+"="+jtiOf(t, tok))
		} else {
			how = "kid"
			env = append(env, envRevokeKID+"="+kidOf(t, tok))
		}
		child := testenv.StartChild(t, env...)
		line, err := child.Out.ReadString('\n')
		if err != nil || line != "revoked\n" {
			child.Kill(t)
			t.Fatalf("round %d: child said %q, %v; want revoked", r, strings.TrimSpace(line), err)
		}
		if !child.Kill(t) {
			t.Fatalf("round %d: child exited before SIGKILL", r)
		}
		n, err = boot(ctx, open, clock.Now, rec)
		if err != nil {
			t.Fatalf("round %d, after SIGKILL: %v", r, err)
		}
		if _, err := n.v.Verify(ctx, tok); !errors.Is(err, verifier.ErrRevoked) {
			t.Errorf("round %d: token revoked by %s, child killed: Verify = %v, want %v", r, how, err, verifier.ErrRevoked)
		}
		if _, err := n.issuer.Issue(ctx, tokenkms.Claims{Subject: "s", ClientID: "c"}); err != nil {
			t.Errorf("round %d: Issue after SIGKILL: %v", r, err)
		}
		if err := n.close(); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
}
