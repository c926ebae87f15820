package verifier

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on Linux's common
// platforms.
const hugePage = 2 << 20

// mapTableMinBytes is the smallest table mapped outside the Go heap: one
// huge page. Tests lower it.
var mapTableMinBytes = hugePage

// mappedTableBytes is the number of table bytes mapped outside the Go heap
// and not yet unmapped, for tests.
var mappedTableBytes atomic.Int64

// newTableWords returns n zeroed words for t, a table about to be built,
// and whether they are mapped outside the Go heap.
//
// A table of at least mapTableMinBytes is mapped outside the Go heap, aligned to
// and advised onto transparent huge pages, and unmapped once t is
// unreachable. A lookup in a large table is one cache miss at a random
// address; with 4 KiB pages it is also a TLB miss, and in a virtual machine
// the page walk for it costs as much as the miss itself and keeps the
// processor from overlapping lookups. Advice is only advice: where the
// kernel has no huge pages to give (THP off, memory fragmented) the table
// works on small pages. The Go heap is not advised, so nothing else in the
// process changes; the mapped bytes are outside the runtime's accounting
// (GOMEMLIMIT does not see them: RevocationStats.MappedBytes does).
func newTableWords(t *jtiTable, n int) ([]uint64, bool) {
	size := n * 8
	if size < mapTableMinBytes {
		return make([]uint64, n), false
	}
	m, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return make([]uint64, n), false
	}
	start := (hugePage - int(uintptr(unsafe.Pointer(&m[0]))%hugePage)) % hugePage
	b := m[start : start+size]
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) // advice: small pages still work
	mappedTableBytes.Add(int64(len(m)))
	runtime.AddCleanup(t, unmapTable, m)
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), true
}

func unmapTable(m []byte) {
	if syscall.Munmap(m) == nil {
		mappedTableBytes.Add(-int64(len(m)))
	}
}
