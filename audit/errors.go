package audit

import "errors"

// Errors of this package.
var (
	// ErrSinkClosed: Emit on a sink that was closed.
	ErrSinkClosed = errors.New("audit: sink closed")
)
