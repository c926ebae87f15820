package adminhttp

import (
	"context"
	"errors"
	"net/http"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/signer"
	"github.com/tokenkms/tokenkms/verifier"
)

// statusRule maps the errors of one kind to an HTTP status and a short
// machine-readable code.
type statusRule struct {
	status int
	code   string
	errs   []error
}

// statusRules are tried in order: the first that matches wins. A refusal
// of the caller (401, 403) comes before the outage that may be joined to
// it (an access denial whose audit event also failed is still a denial).
var statusRules = []statusRule{
	{http.StatusBadRequest, "bad_request", []error{ErrBadRequest, verifier.ErrArgument}},
	{http.StatusUnauthorized, "unauthenticated", []error{ErrUnauthenticated, keyring.ErrNoPrincipal, keyring.ErrPrincipalID}},
	{http.StatusForbidden, "forbidden", []error{keyring.ErrForbidden, keyring.ErrSelfApproval}},
	{http.StatusNotFound, "not_found", []error{keyring.ErrNotFound, keyring.ErrUnknownSet, keyring.ErrUnknownSecret,
		keyring.ErrUnknownDataKey, keyring.ErrSecretUnset}},
	{http.StatusConflict, "conflict", []error{keyring.ErrExists, keyring.ErrConflict, keyring.ErrIllegalState,
		keyring.ErrPrePublication, keyring.ErrApprovalRequired, keyring.ErrNoActiveKey, keyring.ErrFrozen,
		keyring.ErrOverdue, keyring.ErrNotApproved, keyring.ErrSecretRevoked, keyring.ErrDataKeyRetired, keyring.ErrDataKeyDestroyed,
		keyring.ErrDataKeyCompromised, keyring.ErrReviewOverdue}},
	{http.StatusUnprocessableEntity, "unprocessable", []error{keyring.ErrImport, keyring.ErrPolicy,
		keyring.ErrWrongPurpose, keyring.ErrNoOwner, keyring.ErrSecretValue, keyring.ErrCiphertext,
		keyring.ErrCiphertextVersion, keyring.ErrDecrypt, signer.ErrWeakKey, signer.ErrKeyFormat,
		signer.ErrUnsupportedAlgorithm, signer.ErrBadReference, signer.ErrKeyNotFound, signer.ErrKeyDisabled,
		signer.ErrKeyPendingDeletion, signer.ErrDigestSize, signer.ErrConfig, signer.ErrClaims}},
	{http.StatusTooManyRequests, "throttled", []error{signer.ErrThrottled}},
	{http.StatusBadGateway, "bad_gateway", []error{signer.ErrBackendIntegrity, signer.ErrPermissionDenied,
		keyring.ErrIncidentHook, keyring.ErrSecretHook}},
	{http.StatusServiceUnavailable, "unavailable", []error{keyring.ErrAudit, keyring.ErrBackend, keyring.ErrIncident, signer.ErrUnavailable,
		signer.ErrUnwrap, signer.ErrKeyNotActive, audit.ErrSinkClosed, audit.ErrChainFailed, audit.ErrChainBroken,
		verifier.ErrRevocationCheck, verifier.ErrKeySource, filestore.ErrLocked, filestore.ErrClosed,
		pgstore.ErrRevocationsStale}},
	{http.StatusGatewayTimeout, "timeout", []error{context.DeadlineExceeded, context.Canceled}},
}

// Status maps an error of the library to the HTTP status an
// administrative API answers with; nil gives 200, and an error not listed
// (a corrupt store, a database schema newer than the build) 500. Token
// verification errors are not administrative: verifier.Middleware answers
// them (401, 403, 503).
// Hosts that write their own handlers use it too.
//
//	400 bad request          ErrBadRequest, verifier.ErrArgument
//	401 unauthenticated      ErrUnauthenticated, keyring.ErrNoPrincipal, ErrPrincipalID (an id that is not
//	                         canonical: the host's Authenticate must give one Principal.Validate accepts)
//	403 forbidden            keyring.ErrForbidden, ErrSelfApproval
//	404 not found            keyring.ErrNotFound, ErrUnknownSet, ErrUnknownSecret, ErrUnknownDataKey, ErrSecretUnset
//	409 conflict             the key's state refuses the action: keyring.ErrExists, ErrConflict, ErrIllegalState,
//	                         ErrPrePublication, ErrApprovalRequired, ErrNoActiveKey, ErrFrozen, ErrOverdue,
//	                         ErrNotApproved, ErrSecretRevoked, ErrDataKeyRetired, ErrDataKeyDestroyed,
//	                         ErrDataKeyCompromised, ErrReviewOverdue
//	422 unprocessable        the input is refused: keyring.ErrImport, ErrPolicy, ErrWrongPurpose, ErrNoOwner,
//	                         ErrSecretValue, the ciphertext errors; signer.ErrWeakKey, ErrKeyFormat,
//	                         ErrUnsupportedAlgorithm, ErrBadReference, ErrKeyNotFound, ErrKeyDisabled,
//	                         ErrKeyPendingDeletion, ErrDigestSize, ErrConfig, ErrClaims
//	429 throttled            signer.ErrThrottled
//	502 bad gateway          signer.ErrBackendIntegrity, ErrPermissionDenied; keyring.ErrIncidentHook, ErrSecretHook
//	503 unavailable          keyring.ErrAudit (nothing was done), ErrBackend, ErrIncident (an emergency
//	                         rotation that froze the key but could not finish, when its cause says no
//	                         more); signer.ErrUnavailable, ErrUnwrap,
//	                         ErrKeyNotActive; audit.ErrSinkClosed, ErrChainFailed, ErrChainBroken;
//	                         verifier.ErrRevocationCheck, ErrKeySource; filestore.ErrLocked (another
//	                         process holds the store), ErrClosed; pgstore.ErrRevocationsStale
//	504 timeout              context.DeadlineExceeded, context.Canceled
func Status(err error) int {
	s, _ := classify(err)
	return s
}

// Code is the short code of Status(err) that error bodies carry:
// "bad_request", "unauthenticated", "forbidden", "not_found", "conflict",
// "unprocessable", "throttled", "bad_gateway", "unavailable", "timeout",
// "internal"; "" for nil.
func Code(err error) string {
	_, c := classify(err)
	return c
}

func classify(err error) (int, string) {
	if err == nil {
		return http.StatusOK, ""
	}
	for _, r := range statusRules {
		for _, target := range r.errs {
			if errors.Is(err, target) {
				return r.status, r.code
			}
		}
	}
	return http.StatusInternalServerError, "internal"
}
