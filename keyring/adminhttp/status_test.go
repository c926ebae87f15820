package adminhttp_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenkms/tokenkms/audit"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/adminhttp"
	"github.com/tokenkms/tokenkms/keyring/filestore"
	"github.com/tokenkms/tokenkms/keyring/pgstore"
	"github.com/tokenkms/tokenkms/signer"
)

// sentinels are the errors of the packages an administrative call reaches.
var sentinels = map[string]error{
	"keyring.ErrNotFound": keyring.ErrNotFound, "keyring.ErrExists": keyring.ErrExists, "keyring.ErrConflict": keyring.ErrConflict,
	"keyring.ErrUnknownSet": keyring.ErrUnknownSet, "keyring.ErrIllegalState": keyring.ErrIllegalState,
	"keyring.ErrNoActiveKey": keyring.ErrNoActiveKey, "keyring.ErrPrePublication": keyring.ErrPrePublication,
	"keyring.ErrPolicy": keyring.ErrPolicy, "keyring.ErrNoOwner": keyring.ErrNoOwner, "keyring.ErrNoPrincipal": keyring.ErrNoPrincipal,
	"keyring.ErrPrincipalID": keyring.ErrPrincipalID,
	"keyring.ErrForbidden":   keyring.ErrForbidden, "keyring.ErrApprovalRequired": keyring.ErrApprovalRequired,
	"keyring.ErrSelfApproval": keyring.ErrSelfApproval, "keyring.ErrFrozen": keyring.ErrFrozen, "keyring.ErrOverdue": keyring.ErrOverdue,
	"keyring.ErrAudit": keyring.ErrAudit, "keyring.ErrBackend": keyring.ErrBackend, "keyring.ErrWrongPurpose": keyring.ErrWrongPurpose,
	"keyring.ErrCiphertext": keyring.ErrCiphertext, "keyring.ErrCiphertextVersion": keyring.ErrCiphertextVersion,
	"keyring.ErrUnknownDataKey": keyring.ErrUnknownDataKey, "keyring.ErrDecrypt": keyring.ErrDecrypt,
	"keyring.ErrDataKeyRetired": keyring.ErrDataKeyRetired, "keyring.ErrDataKeyDestroyed": keyring.ErrDataKeyDestroyed,
	"keyring.ErrUnknownSecret": keyring.ErrUnknownSecret, "keyring.ErrSecretUnset": keyring.ErrSecretUnset,
	"keyring.ErrSecretRevoked": keyring.ErrSecretRevoked, "keyring.ErrSecretValue": keyring.ErrSecretValue,
	"keyring.ErrSecretHook": keyring.ErrSecretHook, "keyring.ErrIncidentHook": keyring.ErrIncidentHook, "keyring.ErrImport": keyring.ErrImport,
	"keyring.ErrCorruptRecord": keyring.ErrCorruptRecord, "keyring.ErrReviewOverdue": keyring.ErrReviewOverdue,
	"keyring.ErrIncident": keyring.ErrIncident, "keyring.ErrDataKeyCompromised": keyring.ErrDataKeyCompromised,
	"keyring.ErrConfig": keyring.ErrConfig, "keyring.ErrNotApproved": keyring.ErrNotApproved,
	"signer.ErrUnsupportedAlgorithm": signer.ErrUnsupportedAlgorithm, "signer.ErrUnwrap": signer.ErrUnwrap,
	"signer.ErrBadReference": signer.ErrBadReference, "signer.ErrKeyNotFound": signer.ErrKeyNotFound,
	"signer.ErrKeyDisabled": signer.ErrKeyDisabled, "signer.ErrKeyPendingDeletion": signer.ErrKeyPendingDeletion,
	"signer.ErrThrottled": signer.ErrThrottled, "signer.ErrUnavailable": signer.ErrUnavailable,
	"signer.ErrPermissionDenied": signer.ErrPermissionDenied, "signer.ErrBackendIntegrity": signer.ErrBackendIntegrity,
	"signer.ErrKeyNotActive": signer.ErrKeyNotActive, "signer.ErrDigestSize": signer.ErrDigestSize, "signer.ErrConfig": signer.ErrConfig,
	"signer.ErrClaims": signer.ErrClaims, "signer.ErrWeakKey": signer.ErrWeakKey, "signer.ErrKeyFormat": signer.ErrKeyFormat,
	"audit.ErrSinkClosed": audit.ErrSinkClosed, "audit.ErrInvalidEvent": audit.ErrInvalidEvent,
	"audit.ErrInjectedFailure": audit.ErrInjectedFailure, "audit.ErrNoSink": audit.ErrNoSink, "audit.ErrDropped": audit.ErrDropped,
	"audit.ErrChainBroken": audit.ErrChainBroken, "audit.ErrFilePermissions": audit.ErrFilePermissions, "audit.ErrChainFailed": audit.ErrChainFailed,
	"filestore.ErrPermissions": filestore.ErrPermissions, "filestore.ErrFormatVersion": filestore.ErrFormatVersion,
	"filestore.ErrCorrupt": filestore.ErrCorrupt, "filestore.ErrLocked": filestore.ErrLocked, "filestore.ErrClosed": filestore.ErrClosed,
	"filestore.ErrInvalidKey": filestore.ErrInvalidKey, "filestore.ErrConfig": filestore.ErrConfig,
	"pgstore.ErrMigration": pgstore.ErrMigration, "pgstore.ErrSchema": pgstore.ErrSchema, "pgstore.ErrInvalidKey": pgstore.ErrInvalidKey,
	"pgstore.ErrCorrupt": pgstore.ErrCorrupt, "pgstore.ErrRevocationsStale": pgstore.ErrRevocationsStale,
	"pgstore.ErrCacheConfig":  pgstore.ErrCacheConfig,
	"adminhttp.ErrBadRequest": adminhttp.ErrBadRequest, "adminhttp.ErrUnauthenticated": adminhttp.ErrUnauthenticated,
	"adminhttp.ErrConfig": adminhttp.ErrConfig,
}

// internal are the sentinels that mean the deployment itself is broken
// (a corrupt or misconfigured store, a broken sink setup): 500 is right.
var internal = map[string]bool{
	"audit.ErrInvalidEvent": true, "audit.ErrNoSink": true, "audit.ErrDropped": true, "audit.ErrFilePermissions": true,
	"audit.ErrInjectedFailure": true, "filestore.ErrPermissions": true, "filestore.ErrFormatVersion": true,
	"filestore.ErrCorrupt": true, "filestore.ErrInvalidKey": true, "pgstore.ErrMigration": true, "pgstore.ErrSchema": true,
	"pgstore.ErrInvalidKey": true, "pgstore.ErrCorrupt": true, "keyring.ErrCorruptRecord": true, "pgstore.ErrCacheConfig": true, "adminhttp.ErrConfig": true,
	"keyring.ErrConfig":   true,
	"filestore.ErrConfig": true,
}

// declared lists the Err* variables of the package in dir, from its
// source: a sentinel added later is seen here.
func declared(t *testing.T, dir, pkg string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
						out = append(out, pkg+"."+n.Name)
					}
				}
			}
		}
	}
	return out
}

// TestStatusCoversEverySentinel: every sentinel of the packages an
// administrative call reaches has a status of its own (not 500), except
// those that mean the deployment is broken; a new sentinel fails this test
// until it is mapped.
func TestStatusCoversEverySentinel(t *testing.T) {
	for _, p := range []struct{ dir, name string }{
		{"..", "keyring"}, {"../../signer", "signer"}, {"../../audit", "audit"},
		{"../filestore", "filestore"}, {"../pgstore", "pgstore"}, {".", "adminhttp"},
	} {
		for _, name := range declared(t, p.dir, p.name) {
			err, ok := sentinels[name]
			if !ok {
				t.Errorf("%s is not in this test's table: map it in Status and add it here", name)
				continue
			}
			got := adminhttp.Status(err)
			if internal[name] {
				if got != http.StatusInternalServerError {
					t.Errorf("Status(%s) = %d, want 500", name, got)
				}
			} else if got == http.StatusInternalServerError {
				t.Errorf("Status(%s) = 500: give it a status", name)
			}
		}
	}
}
