// Package heaptest measures the live heap, for tests that bound how much
// memory a consumer of guest input keeps (ktstr-dispatch, ktstr-verdict):
// take Live before and after feeding it, with the consumer still alive.
package heaptest

import "runtime"

// Live returns the bytes of live heap objects after a full collection.
func Live() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
