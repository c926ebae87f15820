//go:build !linux

package verifier

// newTableWords returns n zeroed words for t, a table about to be built,
// and whether they are mapped outside the Go heap: on this platform they
// never are.
func newTableWords(_ *jtiTable, n int) ([]uint64, bool) {
	return make([]uint64, n), false
}
