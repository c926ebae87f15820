package adminhttp_test

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
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/adminhttp"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
)

const set = "access-tokens"

var principals = map[string]keyring.Principal{
	"alice": {ID: "alice", Roles: []keyring.Role{keyring.RoleIssuer}},
	"bob":   {ID: "bob", Roles: []keyring.Role{keyring.RoleApprover}},
	"carol": {ID: "carol", Roles: []keyring.Role{keyring.RoleDeployer}},
	"dave":  {ID: "dave", Roles: []keyring.Role{keyring.RoleSecurityOfficer}},
}

// authenticate stands for the host's authentication: a header naming a
// known principal.
func authenticate(r *http.Request) (keyring.Principal, error) {
	p, ok := principals[r.Header.Get("X-Test-Principal")]
	if !ok {
		return keyring.Principal{}, errors.New("unknown caller")
	}
	return p, nil
}

type server struct {
	ring    *keyring.Keyring
	clock   *keyringtest.Clock
	h       http.Handler
	rec     *audit.Recorder
	onError []int
}

func newServer(t *testing.T, mutate func(*keyring.Config, *adminhttp.Config)) *server {
	t.Helper()
	s := &server{clock: keyringtest.NewClock(keyringtest.Start), rec: audit.NewRecorder()}
	cfg := keyring.Config{
		Audit: s.rec, Now: s.clock.Now,
		Sets:    []keyring.SetPolicy{{Name: set, Owner: "team-identity"}},
		Secrets: []keyring.SecretPolicy{{Name: "db-password", Owner: "team-db"}},
	}
	acfg := adminhttp.Config{Authenticate: authenticate, Now: s.clock.Now,
		OnError: func(_ *http.Request, status int, _ error) { s.onError = append(s.onError, status) }}
	if mutate != nil {
		mutate(&cfg, &acfg)
	}
	ring, err := keyring.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	s.ring, acfg.Keyring = ring, ring
	if s.h, err = adminhttp.NewHandler(acfg); err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return s
}

func (s *server) do(t *testing.T, as, method, path, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if as != "" {
		req.Header.Set("X-Test-Principal", as)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	if ct := w.Header().Get("Content-Type"); w.Code != http.StatusNoContent && ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return w.Code, w.Body.Bytes()
}

// documented reads the statuses the spec documents per operation.
func documented(t *testing.T) map[string][]int {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(adminhttp.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	out := map[string][]int{}
	for _, methods := range doc.Paths {
		for _, op := range methods {
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Fatalf("%s: response %q is not a status", op.OperationID, code)
				}
				out[op.OperationID] = append(out[op.OperationID], n)
			}
		}
	}
	return out
}

func pemKey(t *testing.T, c elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestOperations runs every operation of the spec against a real keyring,
// in the order an operator would, with successes and refusals; each
// answer's status must be one the spec documents for its operation, and
// every operation's success status must be seen.
func TestOperations(t *testing.T) {
	dir := t.TempDir()
	chainPath := filepath.Join(dir, "audit.log")
	chain, err := audit.OpenChain(chainPath)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	s := newServer(t, func(c *keyring.Config, a *adminhttp.Config) {
		c.Audit = chain
		c.Sets = append(c.Sets, keyring.SetPolicy{Name: "data", Purpose: keyring.Encryption, Owner: "team-data", PrePublication: time.Hour})
		a.VerifyAudit = func(context.Context) (int, error) {
			f, err := os.Open(chainPath)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			return audit.Verify(f)
		}
	})
	docs := documented(t)
	seen := map[string][]int{}
	vars := map[string]string{}
	type step struct {
		op, as, method, path, body string
		want                       int
		save                       string        // remember the answer's kid (or its fresh key's) under this name
		advance                    time.Duration // move the clock first
		check                      func(adminhttp.Report) error
	}
	line := func(rep adminhttp.Report, kid string) adminhttp.ReportLine {
		i := slices.IndexFunc(rep.Keys, func(l adminhttp.ReportLine) bool { return l.KID == kid })
		if i < 0 {
			return adminhttp.ReportLine{}
		}
		return rep.Keys[i]
	}
	steps := []step{
		{op: "getOpenAPI", method: "GET", path: "/openapi.json", want: 200},
		{op: "listKeys", method: "GET", path: "/keys", want: 401},
		{op: "createKey", as: "alice", method: "POST", path: "/sets/access-tokens/keys", want: 201, save: "first"},
		{op: "createKey", as: "bob", method: "POST", path: "/sets/access-tokens/keys", want: 403},
		{op: "createKey", as: "alice", method: "POST", path: "/sets/nope/keys", want: 404},
		{op: "activateKey", as: "carol", method: "POST", path: "/keys/{first}/activate", want: 409},
		{op: "approveKey", as: "bob", method: "POST", path: "/keys/{first}/approve", want: 204},
		{op: "approveKey", as: "bob", method: "POST", path: "/keys/{first}/approve", want: 409},
		{op: "approveKey", as: "bob", method: "POST", path: "/keys/nope/approve", want: 404},
		{op: "activateKey", as: "carol", method: "POST", path: "/keys/{first}/activate", want: 204},
		{op: "listKeys", as: "bob", method: "GET", path: "/keys?set=access-tokens&state=active", want: 200},
		{op: "listKeys", as: "bob", method: "GET", path: "/keys?state=bogus", want: 400},
		{op: "getKey", as: "bob", method: "GET", path: "/keys/{first}", want: 200},
		{op: "getKey", as: "bob", method: "GET", path: "/keys/nope", want: 404},
		{op: "rotateSet", as: "alice", method: "POST", path: "/sets/access-tokens/rotate", want: 201, save: "second"},
		{op: "rotateSet", as: "alice", method: "POST", path: "/sets/access-tokens/rotate", want: 409},
		{op: "approveSchedule", as: "bob", method: "POST", path: "/sets/access-tokens/schedule/approve", want: 204},
		{op: "approveSchedule", as: "alice", method: "POST", path: "/sets/access-tokens/schedule/approve", want: 403},
		{op: "retireKey", as: "dave", method: "POST", path: "/keys/{first}/retire", want: 409},
		{op: "retireKey", as: "dave", method: "POST", path: "/keys/{second}/retire", want: 204},
		{op: "importKey", as: "alice", method: "POST", path: "/sets/access-tokens/import",
			body: `{"kid":"core-1","private_key":` + quote(pemKey(t, elliptic.P256())) + `}`, want: 201, save: "imported"},
		{op: "importKey", as: "alice", method: "POST", path: "/sets/access-tokens/import",
			body: `{"kid":"core-1","private_key":` + quote(pemKey(t, elliptic.P256())) + `}`, want: 409},
		{op: "importKey", as: "alice", method: "POST", path: "/sets/access-tokens/import",
			body: `{"private_key":` + quote(pemKey(t, elliptic.P384())) + `}`, want: 422},
		{op: "importKey", as: "alice", method: "POST", path: "/sets/access-tokens/import", body: `{"pem":"x"}`, want: 400},
		{op: "emergencyRotate", as: "dave", method: "POST", path: "/keys/{first}/emergency", body: `{}`, want: 400},
		{op: "emergencyRotate", as: "dave", method: "POST", path: "/keys/{first}/emergency", body: `{"incident":"INC-1","reason":"leaked"}`, want: 200, save: "fresh"},
		{op: "emergencyRotate", as: "dave", method: "POST", path: "/keys/{first}/emergency", body: `{"incident":"INC-1"}`, want: 409},
		{op: "report", as: "bob", method: "GET", path: "/report", want: 200, check: func(rep adminhttp.Report) error {
			if l := line(rep, vars["fresh"]); !l.ReviewPending || l.Incident != "INC-1" || rep.ReviewPending != 1 {
				return fmt.Errorf("fresh key %+v, %d pending review; want the break-glass key of INC-1 pending review", l, rep.ReviewPending)
			}
			if !slices.Equal(rep.Schedules, []adminhttp.SetSchedule{{Set: set, ApprovedBy: "bob", ApprovedAt: s.clock.Now().UTC()}}) {
				return fmt.Errorf("schedules %+v, want bob's standing approval of %s", rep.Schedules, set)
			}
			return nil
		}},
		{op: "reviewKey", as: "dave", method: "POST", path: "/keys/{fresh}/review", want: 403},
		{op: "reviewKey", as: "alice", method: "POST", path: "/keys/{fresh}/review", want: 403},
		{op: "reviewKey", as: "bob", method: "POST", path: "/keys/nope/review", want: 404},
		{op: "reviewKey", as: "bob", method: "POST", path: "/keys/{fresh}/review", want: 204},
		{op: "reviewKey", as: "bob", method: "POST", path: "/keys/{fresh}/review", want: 409},
		{op: "withdrawSchedule", as: "alice", method: "POST", path: "/sets/access-tokens/schedule/withdraw", want: 403},
		{op: "withdrawSchedule", as: "bob", method: "POST", path: "/sets/nope/schedule/withdraw", want: 404},
		{op: "withdrawSchedule", as: "bob", method: "POST", path: "/sets/access-tokens/schedule/withdraw", want: 204},
		{op: "report", as: "bob", method: "GET", path: "/report", want: 200, check: func(rep adminhttp.Report) error {
			if l := line(rep, vars["fresh"]); l.ReviewPending || l.ApprovedBy != "bob" || rep.ReviewPending != 0 {
				return fmt.Errorf("fresh key %+v, %d pending review; want it reviewed by bob", l, rep.ReviewPending)
			}
			if !slices.Equal(rep.Schedules, []adminhttp.SetSchedule{{Set: set}}) {
				return fmt.Errorf("schedules %+v, want none after the withdrawal", rep.Schedules)
			}
			return nil
		}},
		{op: "createKey", as: "alice", method: "POST", path: "/sets/data/keys", want: 201, save: "data1"},
		{op: "approveKey", as: "bob", method: "POST", path: "/keys/{data1}/approve", want: 204},
		{op: "activateKey", as: "carol", method: "POST", path: "/keys/{data1}/activate", want: 204},
		{op: "rotateSet", as: "alice", method: "POST", path: "/sets/data/rotate", want: 201, save: "data2"},
		{op: "approveKey", as: "bob", method: "POST", path: "/keys/{data2}/approve", want: 204},
		{op: "activateKey", as: "carol", method: "POST", path: "/keys/{data2}/activate", want: 204, advance: time.Hour},
		{op: "approveRetire", as: "dave", method: "POST", path: "/keys/{data1}/approve-retire", want: 403},
		{op: "approveRetire", as: "bob", method: "POST", path: "/keys/{data2}/approve-retire", want: 409},
		{op: "approveRetire", as: "bob", method: "POST", path: "/keys/nope/approve-retire", want: 404},
		{op: "retireKey", as: "dave", method: "POST", path: "/keys/{data1}/retire", want: 409},
		{op: "approveRetire", as: "bob", method: "POST", path: "/keys/{data1}/approve-retire", want: 204},
		{op: "report", as: "bob", method: "GET", path: "/report", want: 200, check: func(rep adminhttp.Report) error {
			l := line(rep, vars["data1"])
			if !l.NeedsRewrap || !l.RewrapPendingSince.Equal(s.clock.Now().UTC()) || l.RetireApprovedBy != "bob" || rep.NeedsRewrap != 1 {
				return fmt.Errorf("rotated data key %+v, %d to rewrap; want rewrap pending since now, retirement approved by bob", l, rep.NeedsRewrap)
			}
			return nil
		}},
		{op: "retireKey", as: "dave", method: "POST", path: "/keys/{data1}/retire", want: 204},
		{op: "revokeJTI", as: "dave", method: "POST", path: "/revocations/jti", body: `{"jti":"j-1"}`, want: 204},
		{op: "revokeJTI", as: "dave", method: "POST", path: "/revocations/jti", body: `{"jti":""}`, want: 400},
		{op: "revokeJTI", as: "alice", method: "POST", path: "/revocations/jti", body: `{"jti":"j-2"}`, want: 403},
		{op: "revokeKID", as: "dave", method: "POST", path: "/revocations/kid", body: `{"kid":"{second}"}`, want: 204},
		{op: "rotateSecret", as: "alice", method: "POST", path: "/secrets/db-password/rotate", body: `{"value":"czNjcjN0"}`, want: 200},
		{op: "rotateSecret", as: "alice", method: "POST", path: "/secrets/nope/rotate", body: `{"value":"czNjcjN0"}`, want: 404},
		{op: "rotateSecret", as: "alice", method: "POST", path: "/secrets/db-password/rotate", body: `{"value":""}`, want: 422},
		{op: "rotateSecret", as: "dave", method: "POST", path: "/secrets/db-password/rotate", body: `{"value":"bmV3","leak":true}`, want: 200},
		{op: "verifyAudit", as: "bob", method: "GET", path: "/audit/verify", want: 200},
	}
	for i, st := range steps {
		path, body := st.path, st.body
		for name, v := range vars {
			path = strings.ReplaceAll(path, "{"+name+"}", v)
			body = strings.ReplaceAll(body, "{"+name+"}", v)
		}
		s.clock.Advance(st.advance)
		got, answer := s.do(t, st.as, st.method, path, body)
		if got != st.want {
			t.Fatalf("step %d %s %s as %q: status %d, want %d (%s)", i, st.method, path, st.as, got, st.want, answer)
		}
		if bytes.Contains(answer, []byte("czNjcjN0")) || bytes.Contains(answer, []byte("s3cr3t")) {
			t.Fatalf("step %d %s %s: the answer holds the secret value: %s", i, st.method, path, answer)
		}
		if !slices.Contains(docs[st.op], got) {
			t.Errorf("step %d: %s answered %d, which openapi.json does not document (%v)", i, st.op, got, docs[st.op])
		}
		seen[st.op] = append(seen[st.op], got)
		if st.save != "" {
			var v struct {
				adminhttp.KeyView
				Fresh *adminhttp.KeyView `json:"fresh"`
			}
			if err := json.Unmarshal(answer, &v); err != nil {
				t.Fatalf("step %d: answer %s: %v", i, answer, err)
			}
			if v.Fresh != nil {
				v.KeyView = *v.Fresh
			}
			if v.KID == "" {
				t.Fatalf("step %d: answer %s names no key", i, answer)
			}
			vars[st.save] = v.KID
		}
		if st.check != nil {
			var rep adminhttp.Report
			if err := json.Unmarshal(answer, &rep); err != nil {
				t.Fatalf("step %d: report %s: %v", i, answer, err)
			}
			if err := st.check(rep); err != nil {
				t.Errorf("step %d: %v", i, err)
			}
		}
		if got >= 400 {
			var e adminhttp.ErrorBody
			if err := json.Unmarshal(answer, &e); err != nil || e.Code == "" || e.Error == "" {
				t.Errorf("step %d: error body %s", i, answer)
			}
		}
	}
	for op, codes := range docs {
		success := slices.IndexFunc(codes, func(c int) bool { return c < 300 })
		if success < 0 {
			t.Errorf("%s documents no success status", op)
			continue
		}
		if !slices.ContainsFunc(seen[op], func(c int) bool { return c < 300 }) {
			t.Errorf("operation %s never answered success in this test", op)
		}
	}

	// What the API did is what the keyring holds.
	k, err := s.ring.Key(keyring.WithPrincipal(context.Background(), principals["bob"]), vars["first"])
	if err != nil || k.State != keyring.Compromised || k.Incident != "INC-1" {
		t.Fatalf("first key after emergency = %v (%v), want compromised under INC-1", k, err)
	}
	if k, err := s.ring.Key(keyring.WithPrincipal(context.Background(), principals["bob"]), "core-1"); err != nil || k.CreatedBy != "alice" || k.State != keyring.Pending {
		t.Fatalf("imported key = %v (%v), want pending, created by alice", k, err)
	}
	if k, err := s.ring.Key(keyring.WithPrincipal(context.Background(), principals["bob"]), vars["data1"]); err != nil || k.State != keyring.Retired {
		t.Fatalf("rotated data key after approve-retire and retire = %v (%v), want retired", k, err)
	}
}

// TestSpecRoutes: every operation of the spec is routed, and paths it
// does not name are not.
func TestSpecRoutes(t *testing.T) {
	s := newServer(t, nil)
	routes, err := adminhttp.Routes()
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	if len(routes) < 19 {
		t.Fatalf("spec has %d operations, want at least 19", len(routes))
	}
	for _, rt := range routes {
		path := strings.NewReplacer("{kid}", "k", "{set}", "s", "{name}", "n").Replace(rt.Path)
		_, body := s.do(t, "", rt.Method, path, "")
		if bytes.Contains(body, []byte("no such operation")) {
			t.Errorf("%s %s (%s) is in the spec but not routed", rt.Method, rt.Path, rt.OperationID)
		}
	}
	for _, miss := range []struct{ method, path string }{
		{"GET", "/sets/s/keys"}, {"DELETE", "/keys/k"}, {"POST", "/keys/k/destroy"}, {"GET", "/"},
	} {
		code, _ := s.do(t, "alice", miss.method, miss.path, "")
		if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 404 or 405", miss.method, miss.path, code)
		}
	}
}

// TestUnauthenticatedDoesNothing: a request Authenticate refuses is 401
// and leaves no key and no audit event.
func TestUnauthenticatedDoesNothing(t *testing.T) {
	s := newServer(t, nil)
	if code, _ := s.do(t, "mallory", "POST", "/sets/access-tokens/keys", ""); code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", code)
	}
	if n := s.rec.Len(); n != 0 {
		t.Fatalf("%d audit events after a refused request, want 0", n)
	}
}

// TestAuditOutage: when the audit sink refuses, the action is not taken,
// the answer is 503 with a body that says only its code, and the host's
// OnError sees the cause.
func TestAuditOutage(t *testing.T) {
	s := newServer(t, nil)
	s.rec.FailAfter(0)
	code, body := s.do(t, "alice", "POST", "/sets/access-tokens/keys", "")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 (%s)", code, body)
	}
	var e adminhttp.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Code != "unavailable" || strings.Contains(e.Error, "audit") {
		t.Fatalf("body %s: want code unavailable and no detail", body)
	}
	if !slices.Equal(s.onError, []int{503}) {
		t.Fatalf("OnError saw %v, want [503]", s.onError)
	}
	s.rec.FailAfter(-1)
	keys, err := s.ring.Keys(keyring.WithPrincipal(context.Background(), principals["bob"]), keyring.Filter{})
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys after refused create: %v (%v)", keys, err)
	}
}

// TestBadBodies: bodies that do not parse are 400 and the answer never
// echoes what they held.
func TestBadBodies(t *testing.T) {
	s := newServer(t, nil)
	for _, body := range []string{
		`{"private_key":"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"}`,
		`{"private_key": 12}`, `not json`, `{"kid":"a"} {"kid":"b"}`, `{"unknown":"secret-key-material"}`,
		`{"private_key":"` + strings.Repeat("A", adminhttp.DefaultMaxBodyBytes) + `"}`,
	} {
		code, answer := s.do(t, "alice", "POST", "/sets/access-tokens/import", body)
		if code != http.StatusBadRequest && code != http.StatusUnprocessableEntity {
			t.Errorf("body %.40q: status %d, want 400 or 422", body, code)
		}
		if bytes.Contains(answer, []byte("c2VjcmV0")) || bytes.Contains(answer, []byte("secret-key-material")) {
			t.Errorf("answer echoes the body: %s", answer)
		}
	}
}

// TestStatus maps each kind of library error, wrapped or joined, to its
// status.
func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "nil", err: nil, want: 200},
		{name: "no principal", err: keyring.ErrNoPrincipal, want: 401},
		{name: "forbidden wrapped", err: fmt.Errorf("x: %w", keyring.ErrForbidden), want: 403},
		{name: "self approval", err: keyring.ErrSelfApproval, want: 403},
		{name: "denied and audit down", err: errors.Join(keyring.ErrForbidden, keyring.ErrAudit), want: 403},
		{name: "not found", err: keyring.ErrNotFound, want: 404},
		{name: "unknown set", err: keyring.ErrUnknownSet, want: 404},
		{name: "illegal state", err: keyring.ErrIllegalState, want: 409},
		{name: "approval required", err: keyring.ErrApprovalRequired, want: 409},
		{name: "pre-publication", err: keyring.ErrPrePublication, want: 409},
		{name: "weak key", err: fmt.Errorf("%w: %w", keyring.ErrImport, errors.New("rsa")), want: 422},
		{name: "audit down", err: keyring.ErrAudit, want: 503},
		{name: "backend", err: keyring.ErrBackend, want: 503},
		{name: "incident hook", err: keyring.ErrIncidentHook, want: 502},
		{name: "bad request", err: adminhttp.ErrBadRequest, want: 400},
		{name: "deadline", err: context.DeadlineExceeded, want: 504},
		{name: "unknown", err: errors.New("boom"), want: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := adminhttp.Status(tc.err); got != tc.want {
				t.Fatalf("Status(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

// TestNewHandlerConfig refuses a handler without keyring or
// authentication.
func TestNewHandlerConfig(t *testing.T) {
	if _, err := adminhttp.NewHandler(adminhttp.Config{Authenticate: authenticate}); !errors.Is(err, adminhttp.ErrConfig) {
		t.Fatalf("no keyring: got %v, want ErrConfig", err)
	}
	ring, err := keyring.New(context.Background(), keyring.Config{Sets: []keyring.SetPolicy{{Name: set, Owner: "o"}}, Now: func() time.Time { return keyringtest.Start }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adminhttp.NewHandler(adminhttp.Config{Keyring: ring}); !errors.Is(err, adminhttp.ErrConfig) {
		t.Fatalf("no Authenticate: got %v, want ErrConfig", err)
	}
}

// TestImportJWKKeepsKID: a JWK's kid is the imported key's kid when the
// request names none, so Core's tokens keep verifying under it.
func TestImportJWKKeepsKID(t *testing.T) {
	s := newServer(t, nil)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jk, err := jwk.Import(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := jk.Set(jwk.KeyIDKey, "core-jwk-7"); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jk)
	if err != nil {
		t.Fatal(err)
	}
	code, body := s.do(t, "alice", "POST", "/sets/access-tokens/import", `{"private_key":`+quote(string(raw))+`}`)
	if code != http.StatusCreated {
		t.Fatalf("status %d (%s), want 201", code, body)
	}
	var v adminhttp.KeyView
	if err := json.Unmarshal(body, &v); err != nil || v.KID != "core-jwk-7" {
		t.Fatalf("imported %s (%v), want kid core-jwk-7", body, err)
	}
	if bytes.Contains(body, []byte(`"d"`)) {
		t.Fatalf("answer holds private key material: %s", body)
	}
}

// TestReportStandby: the standby key that Tick keeps under a standing
// schedule approval is flagged in the report, next to its set's approval.
func TestReportStandby(t *testing.T) {
	s := newServer(t, nil)
	code, body := s.do(t, "alice", "POST", "/sets/access-tokens/keys", "")
	var k adminhttp.KeyView
	if err := json.Unmarshal(body, &k); code != http.StatusCreated || err != nil {
		t.Fatalf("create: %d %s", code, body)
	}
	first := k.KID
	for _, st := range []struct{ as, path string }{
		{"bob", "/keys/" + first + "/approve"}, {"carol", "/keys/" + first + "/activate"}, {"bob", "/sets/access-tokens/schedule/approve"},
	} {
		if code, body := s.do(t, st.as, "POST", st.path, ""); code != http.StatusNoContent {
			t.Fatalf("%s as %s: %d %s", st.path, st.as, code, body)
		}
	}
	if err := s.ring.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	_, answer := s.do(t, "bob", "GET", "/report", "")
	var rep adminhttp.Report
	if err := json.Unmarshal(answer, &rep); err != nil {
		t.Fatal(err)
	}
	var standby []string
	for _, l := range rep.Keys {
		if l.Standby {
			standby = append(standby, l.KID)
			if l.State != "pending" || l.ScheduleApprovedBy != "bob" {
				t.Errorf("standby line %+v: want pending, under bob's standing approval", l)
			}
		}
	}
	if len(standby) != 1 || standby[0] == first {
		t.Fatalf("standby keys in the report %v, want one that is not the active %s: %s", standby, first, answer)
	}
}
