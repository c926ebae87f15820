package adminhttp

import "errors"

// Errors of this package; match with errors.Is.
var (
	// ErrBadRequest: a request body or query that does not parse, holds an
	// unknown field or lacks a required one. Answered 400.
	ErrBadRequest = errors.New("adminhttp: bad request")
	// ErrUnauthenticated: Config.Authenticate refused the request.
	// Answered 401.
	ErrUnauthenticated = errors.New("adminhttp: unauthenticated")
	// ErrConfig: NewHandler was given an incomplete configuration.
	ErrConfig = errors.New("adminhttp: invalid configuration")
)
