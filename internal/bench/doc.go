// Package bench measures tokenkms against the crypto floor and the Go JWT
// libraries (golang-jwt v5, go-jose v4, jwx v3), and checks that tokens
// cross between them in both directions. It is a nested module so that the
// peers never enter the library's go.mod; it holds tests only.
//
//	cd internal/bench && go test -race ./...              # interop matrix
//	./scripts/bench                                       # benchmarks
package bench
