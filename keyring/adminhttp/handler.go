package adminhttp

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/signer"
)

// OpenAPI is the OpenAPI 3.1 description of the API, which the handler
// also serves at GET /openapi.json. The handler's routes are built from
// it: every operation it names is served, and nothing else.
//
//go:embed openapi.json
var OpenAPI []byte

// Config configures the admin API.
type Config struct {
	// Keyring is the keyring administered. Required.
	Keyring *keyring.Keyring
	// Authenticate returns the principal behind a request: the host's own
	// authentication (mutual TLS, an OIDC token, a session) and its
	// mapping to roles. An error answers 401 without running the action;
	// the keyring then authorises the principal for each action and
	// audits it. Required.
	Authenticate func(*http.Request) (keyring.Principal, error)
	// VerifyAudit, when set, checks the audit trail for GET /audit/verify
	// (for example pgstore's VerifyAudit, or audit.Verify over the chain
	// file) and returns the number of records; an error wrapping
	// audit.ErrChainBroken is answered 200 with ok=false. Without it the
	// route answers 404. Any authenticated principal may call it; the
	// callback finds it in its context (keyring.PrincipalFrom).
	VerifyAudit func(ctx context.Context) (int, error)
	// OnError, when set, receives every error answered with a status of
	// 500 or more, whose body says only its code.
	OnError func(r *http.Request, status int, err error)
	// MaxBodyBytes bounds request bodies; default 64 KiB.
	MaxBodyBytes int64
	// Now is the clock for default revocation times; default time.Now.
	Now func() time.Time
}

// DefaultMaxBodyBytes bounds request bodies when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 10

type handler struct {
	cfg Config
	mux *http.ServeMux
}

// operation serves one operation of the spec: it returns the success
// status and body, or an error that Status maps.
type operation func(h *handler, r *http.Request) (int, any, error)

// operations are the handlers by operationId of openapi.json.
var operations = map[string]operation{
	"listKeys":         (*handler).listKeys,
	"getKey":           (*handler).getKey,
	"report":           (*handler).report,
	"createKey":        (*handler).createKey,
	"rotateSet":        (*handler).rotateSet,
	"importKey":        (*handler).importKey,
	"approveSchedule":  (*handler).approveSchedule,
	"withdrawSchedule": (*handler).withdrawSchedule,
	"reviewKey":        (*handler).reviewKey,
	"approveRetire":    (*handler).approveRetire,
	"approveKey":       (*handler).approveKey,
	"activateKey":      (*handler).activateKey,
	"retireKey":        (*handler).retireKey,
	"emergencyRotate":  (*handler).emergencyRotate,
	"revokeJTI":        (*handler).revokeJTI,
	"revokeKID":        (*handler).revokeKID,
	"rotateSecret":     (*handler).rotateSecret,
	"verifyAudit":      (*handler).verifyAudit,
	"getOpenAPI":       (*handler).openAPI,
}

// Route is one operation of the spec: method, path pattern (net/http
// syntax, which is OpenAPI's) and operationId.
type Route struct {
	Method, Path, OperationID string
}

// Routes lists the operations of OpenAPI, sorted by path then method.
func Routes() ([]Route, error) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		return nil, fmt.Errorf("%w: openapi.json: %w", ErrConfig, err)
	}
	var out []Route
	for path, methods := range doc.Paths {
		for m, op := range methods {
			out = append(out, Route{Method: strings.ToUpper(m), Path: path, OperationID: op.OperationID})
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out, nil
}

// NewHandler returns the admin API as an http.Handler, its routes rooted
// at "/" (mount it under a prefix with http.StripPrefix). Every action
// runs as the principal Config.Authenticate returns; bodies and answers
// are JSON; errors are answered with Status and an ErrorBody.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Keyring == nil || cfg.Authenticate == nil {
		return nil, fmt.Errorf("%w: Keyring and Authenticate are required", ErrConfig)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	routes, err := Routes()
	if err != nil {
		return nil, err
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux()}
	served := map[string]bool{}
	for _, rt := range routes {
		op, ok := operations[rt.OperationID]
		if !ok {
			return nil, fmt.Errorf("%w: openapi.json names operation %q that no handler serves", ErrConfig, rt.OperationID)
		}
		served[rt.OperationID] = true
		h.mux.HandleFunc(rt.Method+" "+rt.Path, h.serve(op, rt.OperationID == "getOpenAPI"))
	}
	for id := range operations {
		if !served[id] {
			return nil, fmt.Errorf("%w: operation %q is missing from openapi.json", ErrConfig, id)
		}
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: "no such operation", Code: "not_found"})
	})
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *handler) serve(op operation, public bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !public {
			p, err := h.cfg.Authenticate(r)
			if err != nil || p.ID == "" {
				writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: ErrUnauthenticated.Error(), Code: "unauthenticated"})
				return
			}
			r = r.WithContext(keyring.WithPrincipal(r.Context(), p))
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
		status, body, err := op(h, r)
		if err != nil {
			h.writeError(w, r, err, body)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, body)
	}
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error, partial any) {
	status, code := classify(err)
	body := ErrorBody{Error: err.Error(), Code: code}
	if status >= 500 {
		body.Error = http.StatusText(status)
		if h.cfg.OnError != nil {
			h.cfg.OnError(r, status, err)
		}
	}
	if v, ok := partial.(*KeyView); ok {
		body.Key = v
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer","code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decode reads a JSON body into v, refusing unknown fields, trailing data
// and an over-long body.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("%w: body over %d bytes", ErrBadRequest, tooLarge.Limit)
		}
		return fmt.Errorf("%w: body: %w", ErrBadRequest, jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: body holds more than one JSON value", ErrBadRequest)
	}
	return nil
}

// jsonError keeps a decoding error's position and field, never the input
// (a private key or a secret may be in it).
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF):
		return errors.New("empty")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return errors.New("invalid JSON")
}

func (h *handler) listKeys(r *http.Request) (int, any, error) {
	f := keyring.Filter{Set: r.URL.Query().Get("set")}
	for _, s := range r.URL.Query()["state"] {
		st, err := ParseState(s)
		if err != nil {
			return 0, nil, err
		}
		f.States = append(f.States, st)
	}
	keys, err := h.cfg.Keyring.Keys(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewKeyList(keys), nil
}

// ParseState reads a state name ("pending", "active", ...), wrapping
// ErrBadRequest when it names none.
func ParseState(s string) (keyring.State, error) {
	for st := keyring.Pending; st <= keyring.Destroyed; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown state %q", ErrBadRequest, s)
}

func (h *handler) getKey(r *http.Request) (int, any, error) {
	k, err := h.cfg.Keyring.Key(r.Context(), r.PathValue("kid"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewKeyView(k), nil
}

func (h *handler) report(r *http.Request) (int, any, error) {
	rep, err := BuildReport(r.Context(), h.cfg.Keyring)
	return http.StatusOK, rep, err
}

// BuildReport reads the keyring's report and key records (a principal
// allowed to read must be in ctx) and joins them.
func BuildReport(ctx context.Context, ring *keyring.Keyring) (Report, error) {
	lines, err := ring.Report(ctx)
	if err != nil {
		return Report{}, err
	}
	keys, err := ring.Keys(ctx, keyring.Filter{})
	if err != nil {
		return Report{}, err
	}
	return NewReport(lines, keys), nil
}

func (h *handler) createKey(r *http.Request) (int, any, error) {
	return keyAnswer(h.cfg.Keyring.Create(r.Context(), r.PathValue("set")))
}

func (h *handler) rotateSet(r *http.Request) (int, any, error) {
	return keyAnswer(h.cfg.Keyring.Rotate(r.Context(), r.PathValue("set")))
}

func keyAnswer(k keyring.Key, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, NewKeyView(k), nil
}

func (h *handler) importKey(r *http.Request) (int, any, error) {
	var req ImportRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	in, err := req.KeyImport()
	if err != nil {
		return 0, nil, err
	}
	return keyAnswer(h.cfg.Keyring.Import(r.Context(), r.PathValue("set"), in))
}

// KeyImport parses the request's private key, if any, into the keyring's
// import description. A JWK's kid is kept when the request names none.
func (req ImportRequest) KeyImport() (keyring.KeyImport, error) {
	in := keyring.KeyImport{KID: req.KID, Ref: req.Ref, CreatedAt: req.CreatedAt}
	if req.PrivateKey == "" {
		return in, nil
	}
	raw := []byte(req.PrivateKey)
	key, kid, err := signer.ParsePrivateKey(raw)
	clear(raw)
	if err != nil {
		return in, err
	}
	in.Private = key
	if in.KID == "" {
		in.KID = kid
	}
	return in, nil
}

func (h *handler) approveSchedule(r *http.Request) (int, any, error) {
	return noContent(h.cfg.Keyring.ApproveSchedule(r.Context(), r.PathValue("set")))
}

func (h *handler) withdrawSchedule(r *http.Request) (int, any, error) {
	return noContent(h.cfg.Keyring.WithdrawSchedule(r.Context(), r.PathValue("set")))
}

func (h *handler) reviewKey(r *http.Request) (int, any, error) {
	return noContent(h.cfg.Keyring.Review(r.Context(), r.PathValue("kid")))
}

func (h *handler) approveRetire(r *http.Request) (int, any, error) {
	return noContent(h.cfg.Keyring.ApproveRetire(r.Context(), r.PathValue("kid")))
}

func (h *handler) approveKey(r *http.Request) (int, any, error) {
	return noContent(h.cfg.Keyring.Approve(r.Context(), r.PathValue("kid")))
}

func (h *handler) activateKey(r *http.Request) (int, any, error) {
	return noContent(h.cfg.Keyring.Activate(r.Context(), r.PathValue("kid")))
}

func (h *handler) retireKey(r *http.Request) (int, any, error) {
	return noContent(h.cfg.Keyring.Retire(r.Context(), r.PathValue("kid")))
}

func noContent(err error) (int, any, error) { return http.StatusNoContent, nil, err }

func (h *handler) emergencyRotate(r *http.Request) (int, any, error) {
	var req EmergencyRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Incident == "" {
		return 0, nil, fmt.Errorf("%w: incident is required", ErrBadRequest)
	}
	kid := r.PathValue("kid")
	fresh, err := h.cfg.Keyring.EmergencyRotate(r.Context(), kid, keyring.Incident{ID: req.Incident, Reason: req.Reason, Severity: req.Severity})
	res := NewEmergencyResult(kid, fresh)
	if err != nil {
		return 0, res.Fresh, err
	}
	return http.StatusOK, res, nil
}

func (h *handler) revokeJTI(r *http.Request) (int, any, error) {
	var req RevokeJTIRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.JTI == "" {
		return 0, nil, fmt.Errorf("%w: jti is required", ErrBadRequest)
	}
	if req.Until.IsZero() {
		req.Until = h.cfg.Now().Add(DefaultJTIRevocation)
	}
	return noContent(h.cfg.Keyring.RevokeJTI(r.Context(), req.JTI, req.Until))
}

func (h *handler) revokeKID(r *http.Request) (int, any, error) {
	var req RevokeKIDRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.KID == "" {
		return 0, nil, fmt.Errorf("%w: kid is required", ErrBadRequest)
	}
	if req.IssuedBefore.IsZero() {
		req.IssuedBefore = h.cfg.Now()
	}
	return noContent(h.cfg.Keyring.RevokeKID(r.Context(), req.KID, req.IssuedBefore))
}

func (h *handler) rotateSecret(r *http.Request) (int, any, error) {
	var req SecretRotateRequest
	err := decode(r, &req)
	defer clear(req.Value)
	if err != nil {
		return 0, nil, err
	}
	reason := ""
	if req.Leak {
		reason = keyring.ReasonLeak
	}
	v, err := h.cfg.Keyring.RotateSecret(r.Context(), r.PathValue("name"), req.Value, reason)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewSecretView(v), nil
}

func (h *handler) verifyAudit(r *http.Request) (int, any, error) {
	if h.cfg.VerifyAudit == nil {
		return 0, nil, fmt.Errorf("%w: this host verifies no audit trail", keyring.ErrNotFound)
	}
	n, err := h.cfg.VerifyAudit(r.Context())
	if errors.Is(err, audit.ErrChainBroken) {
		return http.StatusOK, AuditResult{OK: false, Records: n, Broken: err.Error()}, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, AuditResult{OK: true, Records: n}, nil
}

func (h *handler) openAPI(*http.Request) (int, any, error) {
	return http.StatusOK, json.RawMessage(bytes.TrimSpace(OpenAPI)), nil
}
