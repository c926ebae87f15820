package adminhttp_test

import (
	"errors"
	"fmt"

	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/adminhttp"
	"github.com/tokenkms/tokenkms/signer"
)

// A host with its own handlers answers library errors with Status.
func ExampleStatus() {
	for _, err := range []error{
		fmt.Errorf("approve k1: %w", keyring.ErrSelfApproval),
		fmt.Errorf("%w: %w", keyring.ErrImport, signer.ErrWeakKey),
		keyring.ErrPrePublication,
		errors.Join(keyring.ErrAudit, errors.New("disk full")),
	} {
		fmt.Println(adminhttp.Status(err), adminhttp.Code(err))
	}
	// Output:
	// 403 forbidden
	// 422 unprocessable
	// 409 conflict
	// 503 unavailable
}
