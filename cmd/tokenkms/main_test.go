package main_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/internal/lifecycletest"
	"github.com/tokenkms/tokenkms/internal/testenv"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/adminhttp"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// binary is the tokenkms command, built once with CGO_ENABLED=0 as
// `go install` builds it on a machine without a C compiler.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenkms-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tokenkms")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tokenkms: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// host is what an operator's shell holds: the environment that names the
// host's store, configuration, key-encryption key and audit log.
type host struct {
	dir string
	env []string
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary as principal id with roles, stdin given.
func (h *host) run(t *testing.T, stdin, id, roles string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), h.env...)
	if id != "" {
		cmd.Env = append(cmd.Env, "TOKENKMS_PRINCIPAL="+id, "TOKENKMS_ROLES="+roles)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// TestSecretNotFromTerminal: secret material is never read from a
// terminal or device, where typing it would show it on the screen
// (/dev/null stands for the terminal: both are character devices).
func TestSecretNotFromTerminal(t *testing.T) {
	h := newHost(t, "")
	for _, args := range [][]string{{"secrets", "rotate", "db-password"}, {"import", "--set", "access-tokens", "--key", "-"}} {
		devNull, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = append(os.Environ(), append(h.env, "TOKENKMS_PRINCIPAL=alice", "TOKENKMS_ROLES=issuer")...)
		cmd.Stdin = devNull
		out, err := cmd.CombinedOutput()
		cancel()
		devNull.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "pipe it in") {
			t.Fatalf("tokenkms %s with a device on stdin: %v, %s; want exit 2 saying to pipe it in", strings.Join(args, " "), err, out)
		}
	}
}

// want runs the binary and checks its exit code.
func (h *host) want(t *testing.T, code int, stdin, id, roles string, args ...string) result {
	t.Helper()
	r := h.run(t, stdin, id, roles, args...)
	if r.code != code {
		t.Fatalf("tokenkms %s as %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), id, r.code, code, r.stdout, r.stderr)
	}
	return r
}

func (h *host) kid(t *testing.T, id, roles string, args ...string) string {
	t.Helper()
	r := h.want(t, 0, "", id, roles, append(args, "--json")...)
	var v adminhttp.KeyView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.KID == "" {
		t.Fatalf("%v: answer %q: %v", args, r.stdout, err)
	}
	return v.KID
}

const config = `{
  "sets": [{"name": "access-tokens", "owner": "team-identity", "algorithm": "ES256"},
           {"name": "data", "purpose": "encryption", "owner": "team-data", "pre_publication": "1ms"}],
  "secrets": [{"name": "db-password", "owner": "team-db"}]
}`

func newHost(t *testing.T, store string) *host {
	t.Helper()
	dir := t.TempDir()
	kek := make([]byte, 32)
	rand.Read(kek)
	for name, body := range map[string][]byte{"kek": kek, "tokenkms.json": []byte(config)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := &host{dir: dir, env: []string{
		"TOKENKMS_CONFIG=" + filepath.Join(dir, "tokenkms.json"), "TOKENKMS_KEK_FILE=" + filepath.Join(dir, "kek"),
	}}
	if store == "" {
		h.env = append(h.env, "TOKENKMS_STORE="+filepath.Join(dir, "keys.json"), "TOKENKMS_AUDIT="+filepath.Join(dir, "audit.log"))
	} else {
		h.env = append(h.env, "TOKENKMS_STORE="+store)
	}
	return h
}

// coreKey is a signing key of Core from before the migration, with a
// token it signed.
func coreKey(t *testing.T, kid string) (pemFile []byte, token string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.FromCryptoSigner(kid, "ES256", k)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := signer.NewIssuer(lifecycletest.StaticKeys{S: s}, signer.IssuerConfig{Set: lifecycletest.Set, Issuer: lifecycletest.IssuerURL,
		Audience: []string{lifecycletest.Audience}, DefaultLifetime: 30 * time.Minute, MaxLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	token, err = iss.Issue(context.Background(), tokenkms.Claims{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), token
}

// lifecycle runs the operator's everyday path and its refusals, the same
// on every store.
func lifecycle(t *testing.T, h *host) (first, fresh string) {
	t.Helper()
	h.want(t, 2, "", "", "", "keys", "list")                                // no principal
	h.want(t, 2, "", "alice", "issuer", "keys", "frobnicate")               // unknown subcommand
	h.want(t, 2, "", "alice", "issuer", "create")                           // --set missing
	h.want(t, 4, "", "alice", "issuer", "create", "--set", "nope")          // unknown set
	h.want(t, 3, "", "bob", "approver", "create", "--set", "access-tokens") // wrong role
	first = h.kid(t, "alice", "issuer", "create", "--set", "access-tokens")
	h.want(t, 3, "", "alice", "issuer,approver", "approve", first) // own key
	h.want(t, 5, "", "carol", "deployer", "activate", first)       // not approved
	h.want(t, 0, "", "bob", "approver", "approve", first)
	h.want(t, 3, "", "bob", "deployer", "activate", first) // approver deploys
	r := h.want(t, 0, "", "carol", "deployer", "activate", first)
	if !strings.Contains(r.stdout, "state:") || !strings.Contains(r.stdout, "active") {
		t.Fatalf("activate printed %q, want the key's record", r.stdout)
	}
	h.want(t, 4, "", "bob", "approver", "keys", "show", "nope")
	r = h.want(t, 4, "", "bob", "approver", "--json", "keys", "show", "nope") // global flags before the command
	var nf adminhttp.ErrorBody
	if err := json.Unmarshal([]byte(r.stderr), &nf); err != nil || nf.Code != "not_found" {
		t.Fatalf("keys show nope --json: stderr %q (%v), want code not_found", r.stderr, err)
	}
	h.want(t, 2, "", "bob", "approver", "--bogus", "keys", "list")
	h.want(t, 5, "", "dave", "security-officer", "retire", first) // active: rotate first

	list := h.want(t, 0, "", "bob", "approver", "keys", "list", "--state", "active", "--json")
	var kl adminhttp.KeyList
	if err := json.Unmarshal([]byte(list.stdout), &kl); err != nil || len(kl.Keys) != 1 || kl.Keys[0].KID != first {
		t.Fatalf("keys list --state active = %s (%v), want %s", list.stdout, err, first)
	}
	succ := h.kid(t, "alice", "issuer", "rotate", "--set", "access-tokens")
	h.want(t, 5, "", "alice", "issuer", "rotate", "--set", "access-tokens") // already rotating
	h.want(t, 0, "", "dave", "security-officer", "retire", succ)
	h.want(t, 0, "", "bob", "approver", "schedule", "approve", "--set", "access-tokens")

	r = h.want(t, 0, "", "dave", "security-officer", "emergency", first, "--incident", "INC-7", "--reason", "key in a public repo", "--json")
	var er adminhttp.EmergencyResult
	if err := json.Unmarshal([]byte(r.stdout), &er); err != nil || er.Fresh == nil || er.Fresh.State != "active" {
		t.Fatalf("emergency answer %s (%v), want a fresh active key", r.stdout, err)
	}
	h.want(t, 5, "", "dave", "security-officer", "emergency", first, "--incident", "INC-7") // already compromised
	h.want(t, 2, "", "dave", "security-officer", "emergency", er.Fresh.KID)                 // --incident missing

	h.reportHas(t, "DAYS-OVERDUE", "NOTES", "break-glass awaiting review (INC-7)", "1 break-glass awaiting review",
		"SCHEDULE-APPROVED-BY", "access-tokens  bob")
	rep := h.report(t)
	if l := reportLine(rep, er.Fresh.KID); !l.ReviewPending || l.Incident != "INC-7" || rep.ReviewPending != 1 {
		t.Fatalf("report --json: fresh key %+v, %d pending review; want it pending review under INC-7", l, rep.ReviewPending)
	}
	h.want(t, 3, "", "dave", "security-officer", "review", er.Fresh.KID) // ran the emergency rotation
	h.want(t, 3, "", "alice", "issuer", "review", er.Fresh.KID)          // wrong role
	h.want(t, 4, "", "bob", "approver", "review", "nope")
	h.want(t, 2, "", "bob", "approver", "review")
	r = h.want(t, 0, "", "bob", "approver", "review", er.Fresh.KID)
	if !strings.Contains(r.stdout, "review done") || !strings.Contains(r.stdout, "approved by:     bob") {
		t.Fatalf("review printed %q, want the key's record approved by bob", r.stdout)
	}
	h.want(t, 5, "", "bob", "approver", "review", er.Fresh.KID) // reviewed already
	h.reportHas(t, "incident INC-7", "0 break-glass awaiting review")

	h.want(t, 3, "", "alice", "issuer", "schedule", "withdraw", "--set", "access-tokens")
	h.want(t, 4, "", "bob", "approver", "schedule", "withdraw", "--set", "nope")
	h.want(t, 2, "", "bob", "approver", "schedule", "withdraw")
	r = h.want(t, 0, "", "bob", "approver", "schedule", "withdraw", "--set", "access-tokens", "--json")
	if !strings.Contains(r.stdout, `"withdrawn_by": "bob"`) {
		t.Fatalf("schedule withdraw printed %s", r.stdout)
	}
	h.reportHas(t, "access-tokens  none: rotations need an operator")

	d1 := h.kid(t, "alice", "issuer", "create", "--set", "data")
	h.want(t, 0, "", "bob", "approver", "approve", d1)
	h.want(t, 0, "", "carol", "deployer", "activate", d1)
	d2 := h.kid(t, "alice", "issuer", "rotate", "--set", "data")
	h.want(t, 0, "", "bob", "approver", "approve", d2)
	h.want(t, 0, "", "carol", "deployer", "activate", d2) // pre-publication of 1ms is over
	h.want(t, 3, "", "dave", "security-officer", "approve-retire", d1)
	h.want(t, 5, "", "bob", "approver", "approve-retire", d2) // the active key
	h.want(t, 4, "", "bob", "approver", "approve-retire", "nope")
	h.reportHas(t, "rewrap pending since", "1 data keys to rewrap")
	h.want(t, 0, "", "bob", "approver", "approve-retire", d1)
	rep = h.report(t)
	if l := reportLine(rep, d1); !l.NeedsRewrap || l.RewrapPendingSince.IsZero() || l.RetireApprovedBy != "bob" {
		t.Fatalf("report --json: rotated data key %+v, want rewrap pending, retirement approved by bob", l)
	}
	h.reportHas(t, "retirement approved by bob")
	h.want(t, 0, "", "dave", "security-officer", "retire", d1)

	noEcho := func(r result, value string) {
		t.Helper()
		if strings.Contains(r.stdout, value) || strings.Contains(r.stderr, value) {
			t.Fatalf("secrets rotate echoed the value\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
		}
	}
	noEcho(h.want(t, 3, "s3cret\n", "bob", "approver", "secrets", "rotate", "db-password"), "s3cret")
	r = h.want(t, 0, "s3cret\n", "alice", "issuer", "secrets", "rotate", "db-password", "--json")
	noEcho(r, "s3cret")
	if !strings.Contains(r.stdout, `"version": 1`) {
		t.Fatalf("secrets rotate printed %s", r.stdout)
	}
	h.want(t, 6, "", "alice", "issuer", "secrets", "rotate", "db-password") // empty value
	noEcho(h.want(t, 0, "n3w\n", "dave", "security-officer", "secrets", "rotate", "db-password", "--leak"), "n3w")

	pemFile, oldToken := coreKey(t, "core-2025")
	keyPath := filepath.Join(h.dir, "core.pem")
	if err := os.WriteFile(keyPath, pemFile, 0o600); err != nil {
		t.Fatal(err)
	}
	h.want(t, 2, "", "alice", "issuer", "import", "--set", "access-tokens") // neither --key nor --ref
	imported := h.kid(t, "alice", "issuer", "import", "--set", "access-tokens", "--key", keyPath, "--kid", "core-2025")
	if imported != "core-2025" {
		t.Fatalf("imported kid %q, want core-2025", imported)
	}
	h.want(t, 5, "", "alice", "issuer", "import", "--set", "access-tokens", "--key", keyPath, "--kid", "core-2025")
	weak, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(weak)
	r = h.want(t, 6, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "alice", "issuer",
		"import", "--set", "access-tokens", "--key", "-", "--json")
	var eb adminhttp.ErrorBody
	if err := json.Unmarshal([]byte(r.stderr), &eb); err != nil || eb.Code != "unprocessable" || !strings.Contains(eb.Error, "weak") {
		t.Fatalf("weak import error %q (%v), want code unprocessable naming the weak key", r.stderr, err)
	}
	h.want(t, 0, "", "bob", "approver", "approve", imported)
	h.oldTokenVerifies(t, oldToken)
	return first, er.Fresh.KID
}

// report runs report --json.
func (h *host) report(t *testing.T) adminhttp.Report {
	t.Helper()
	r := h.want(t, 0, "", "bob", "approver", "report", "--json")
	var rep adminhttp.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report --json %s: %v", r.stdout, err)
	}
	return rep
}

func reportLine(rep adminhttp.Report, kid string) adminhttp.ReportLine {
	for _, l := range rep.Keys {
		if l.KID == kid {
			return l
		}
	}
	return adminhttp.ReportLine{}
}

// reportHas runs report and checks that its text holds each of want.
func (h *host) reportHas(t *testing.T, want ...string) {
	t.Helper()
	r := h.want(t, 0, "", "bob", "approver", "report")
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Fatalf("report lacks %q:\n%s", w, r.stdout)
		}
	}
}

// oldTokenVerifies checks, from the test process as the host would, that
// a token Core signed before the migration verifies with the store's
// keys; only the file store is opened here (the PostgreSQL path is the
// same keyring code over another store).
func (h *host) oldTokenVerifies(t *testing.T, token string) {
	t.Helper()
	ring, store := h.hostRing(t)
	if ring == nil {
		return
	}
	defer store.Close()
	v, err := verifier.New(ring, verifier.Policy{Issuer: lifecycletest.IssuerURL, Audience: []string{lifecycletest.Audience}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("token signed before the migration: %v", err)
	}
}

// hostRing opens the host's file store in the test process, as the host
// itself would, with its access-tokens set; the caller closes the store
// before the next command. Nil on PostgreSQL.
func (h *host) hostRing(t *testing.T) (*keyring.Keyring, *filestore.Store) {
	t.Helper()
	path := ""
	for _, e := range h.env {
		if v, ok := strings.CutPrefix(e, "TOKENKMS_STORE="); ok && !strings.HasPrefix(v, "postgres") {
			path = v
		}
	}
	if path == "" {
		return nil, nil
	}
	store, err := filestore.Open(path)
	if err != nil {
		t.Fatalf("filestore.Open: %v", err)
	}
	kek, err := os.ReadFile(filepath.Join(h.dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := signer.NewAESWrapper(kek)
	lp, _ := signer.NewLocalProvider(w)
	ring, err := keyring.New(context.Background(), keyring.Config{Store: store, Providers: map[string]signer.Provider{"local": lp},
		Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity"}}})
	if err != nil {
		store.Close()
		t.Fatalf("keyring.New: %v", err)
	}
	return ring, store
}

// TestReportStandby: the standby key the host's Tick keeps under a
// standing schedule approval is flagged by report.
func TestReportStandby(t *testing.T) {
	h := newHost(t, "")
	first := h.kid(t, "alice", "issuer", "create", "--set", "access-tokens")
	h.want(t, 0, "", "bob", "approver", "approve", first)
	h.want(t, 0, "", "carol", "deployer", "activate", first)
	h.want(t, 0, "", "bob", "approver", "schedule", "approve", "--set", "access-tokens")
	ring, store := h.hostRing(t)
	err := ring.Tick(context.Background())
	if cerr := store.Close(); err != nil || cerr != nil {
		t.Fatalf("the host's Tick: %v; closing its store: %v", err, cerr)
	}
	var standby []adminhttp.ReportLine
	for _, l := range h.report(t).Keys {
		if l.Standby {
			standby = append(standby, l)
		}
	}
	if len(standby) != 1 || standby[0].KID == first || standby[0].State != "pending" {
		t.Fatalf("standby keys in report --json: %+v, want one pending key besides %s", standby, first)
	}
	h.reportHas(t, standby[0].KID, "standby", "access-tokens  bob")
}

// TestFileStore runs the CLI on a filestore with its hash-chained audit
// log: every action audited under the acting principal, the chain
// verified, a tampered chain detected, revocations kept by the store's
// journal after the command ends, the store's lock respected.
func TestFileStore(t *testing.T) {
	h := newHost(t, "")
	first, _ := lifecycle(t, h)
	h.want(t, 0, "", "dave", "security-officer", "revoke", "jti", "j-1")
	h.want(t, 0, "", "dave", "security-officer", "revoke", "kid", first)
	fs, err := filestore.Open(filepath.Join(h.dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kid, jti string }{{"other", "j-1"}, {first, "other"}} {
		if got, err := fs.Revocations().Revoked(context.Background(), tc.kid, tc.jti, time.Now().Add(-time.Minute)); err != nil || !got {
			t.Errorf("after the CLI ended: Revoked(%s, %s) = %v, %v; want true", tc.kid, tc.jti, got, err)
		}
	}
	fs.Close()

	logPath := filepath.Join(h.dir, "audit.log")
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	actors := map[audit.Type]map[string]bool{}
	n, err := audit.Verify(f)
	f.Close()
	if err != nil || n == 0 {
		t.Fatalf("audit.Verify: %d, %v", n, err)
	}
	raw, _ := os.ReadFile(logPath)
	for line := range strings.SplitSeq(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Event audit.Event `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line: %v", err)
		}
		if actors[rec.Event.Type] == nil {
			actors[rec.Event.Type] = map[string]bool{}
		}
		actors[rec.Event.Type][rec.Event.Actor] = true
	}
	for typ, who := range map[audit.Type]string{audit.KeyCreated: "alice", audit.KeyApproved: "bob", audit.KeyActivated: "carol",
		audit.IncidentDeclared: "dave", audit.AccessDenied: "bob", audit.SecretRotated: "dave", audit.KeyReviewed: "bob",
		audit.PolicyWithdrawn: "bob", audit.PolicyApproved: "bob", audit.KeyRetired: "dave"} {
		if !actors[typ][who] {
			t.Errorf("no %s event by %s in the audit log (%v)", typ, who, actors[typ])
		}
	}
	r := h.want(t, 0, "", "", "", "audit", "verify")
	if want := fmt.Sprintf("ok: %d records", n); !strings.Contains(r.stdout, want) {
		t.Fatalf("audit verify printed %q, want %q", r.stdout, want)
	}
	tampered := bytes.Replace(raw, []byte(`"actor":"alice"`), []byte(`"actor":"mallo"`), 1)
	if bytes.Equal(tampered, raw) {
		t.Fatal("nothing to tamper with")
	}
	if err := os.WriteFile(logPath, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	r = h.want(t, 8, "", "", "", "audit", "verify", "--json")
	var res adminhttp.AuditResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.OK || res.Broken == "" {
		t.Fatalf("audit verify of a tampered log: %s (%v)", r.stdout, err)
	}
	if err := os.WriteFile(logPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	store, err := filestore.Open(filepath.Join(h.dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h.want(t, 7, "", "bob", "approver", "keys", "list") // the host holds the store
}

// TestDashKID: a kid may start with '-' (base64url): it is an argument,
// not a flag, wherever it stands.
func TestDashKID(t *testing.T) {
	h := newHost(t, "")
	pemFile, _ := coreKey(t, "-core")
	keyPath := filepath.Join(h.dir, "core.pem")
	if err := os.WriteFile(keyPath, pemFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if kid := h.kid(t, "alice", "issuer", "import", "--set", "access-tokens", "--key", keyPath, "--kid", "-core"); kid != "-core" {
		t.Fatalf("imported kid %q, want -core", kid)
	}
	h.want(t, 0, "", "bob", "approver", "approve", "-core")
	h.want(t, 0, "", "bob", "approver", "keys", "show", "--json", "-core")
	h.want(t, 0, "", "bob", "approver", "keys", "show", "--", "-core")
	h.want(t, 2, "", "bob", "approver", "keys", "show", "-core", "--set")
}

// TestMissingSettings: each setting the CLI cannot work without is named
// in the error.
func TestMissingSettings(t *testing.T) {
	h := newHost(t, "")
	tests := []struct {
		name, drop, want string
	}{
		{name: "store", drop: "TOKENKMS_STORE=", want: "--store"},
		{name: "config", drop: "TOKENKMS_CONFIG=", want: "--config"},
		{name: "kek", drop: "TOKENKMS_KEK_FILE=", want: "--kek-file"},
		{name: "audit", drop: "TOKENKMS_AUDIT=", want: "--audit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hh := &host{dir: h.dir}
			for _, e := range h.env {
				if !strings.HasPrefix(e, tc.drop) {
					hh.env = append(hh.env, e)
				}
			}
			hh.env = append(hh.env, tc.drop)
			r := hh.want(t, 2, "", "alice", "issuer", "keys", "list")
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr %q does not name %s", r.stderr, tc.want)
			}
		})
	}
}

// TestPostgres runs the same path on PostgreSQL (the test script exports
// TOKENKMS_PG_DSN): there revocations are kept, and the audit trail is
// the database's own chain.
func TestPostgres(t *testing.T) {
	dsn := testenv.Require(t, testenv.PostgresDSN)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	schema := fmt.Sprintf("cli_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	h := newHost(t, dsn+sep+"search_path="+schema)
	first, _ := lifecycle(t, h)
	h.want(t, 3, "", "alice", "issuer", "revoke", "jti", "j-1")
	h.want(t, 0, "", "dave", "security-officer", "revoke", "jti", "j-1", "--until", "2030-01-01T00:00:00Z")
	h.want(t, 0, "", "dave", "security-officer", "revoke", "kid", first)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".tokenkms_revoked_jti WHERE jti = 'j-1'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("revoked jti rows: %d (%v), want 1", n, err)
	}
	var actor string
	if err := conn.QueryRow(ctx, "SELECT event::json->>'actor' FROM "+schema+".tokenkms_audit WHERE event::json->>'type' = 'revocation.jti' AND event::json->>'outcome' = 'success'").Scan(&actor); err != nil || actor != "dave" {
		t.Fatalf("audited jti revocation by %q (%v), want dave", actor, err)
	}
	for typ, who := range map[audit.Type]string{audit.KeyReviewed: "bob", audit.PolicyWithdrawn: "bob"} {
		if err := conn.QueryRow(ctx, "SELECT event::json->>'actor' FROM "+schema+".tokenkms_audit WHERE event::json->>'type' = $1 AND event::json->>'outcome' = 'success'", string(typ)).Scan(&actor); err != nil || actor != who {
			t.Errorf("audited %s by %q (%v), want %s", typ, actor, err, who)
		}
	}
	r := h.want(t, 0, "", "", "", "audit", "verify")
	if !strings.HasPrefix(r.stdout, "ok: ") {
		t.Fatalf("audit verify printed %q", r.stdout)
	}
	if _, err := conn.Exec(ctx, "UPDATE "+schema+".tokenkms_audit SET event = replace(event, '\"dave\"', '\"eve\"') WHERE seq = (SELECT min(seq) FROM "+schema+".tokenkms_audit WHERE event LIKE '%\"dave\"%')"); err != nil {
		t.Fatal(err)
	}
	h.want(t, 8, "", "", "", "audit", "verify")
}
