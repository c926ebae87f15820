// Package adminhttp serves the keyring's administration as JSON over
// net/http: list, show and report keys; create, approve, activate, rotate,
// retire, import; approval of a rotated data key's retirement; emergency
// rotation and the review of its break-glass key; revocation by jti or
// kid; standing schedule approval and its withdrawal; secret rotation;
// audit-trail verification. The
// routes and their answers are described by OpenAPI (openapi.json, served
// at GET /openapi.json), from which the handler builds its routes.
//
//	h, err := adminhttp.NewHandler(adminhttp.Config{
//		Keyring:      ring,
//		Authenticate: func(r *http.Request) (keyring.Principal, error) { return hostAuth(r) },
//	})
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//
// # Security
//
// The host authenticates each request (Config.Authenticate: mutual TLS,
// an OIDC token, a session) and maps the caller to a keyring.Principal;
// the keyring then authorises every action for that principal's roles,
// keeps two people on every activation, and audits each call, denied
// ones included. An import body carries a private key: serve the API
// over TLS only, and never log request bodies. Error answers never echo a
// request body; answers of 500 and more carry only their code (the cause
// goes to Config.OnError).
//
// # Errors
//
// Status maps every error of the library to an HTTP status (hosts with
// their own handlers use it too); Code gives the short code that error
// bodies (ErrorBody) carry.
package adminhttp
