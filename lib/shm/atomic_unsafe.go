package shm

import (
	"sync/atomic"
	"unsafe"
)

// The region is shared with another process or a guest, so every position,
// counter and flag is accessed with atomic loads and stores at 8-byte (or
// 4-byte) aligned offsets. Mappings are page-aligned, OpenGuest refuses
// memory that is not 8-byte aligned, and the offsets are constants checked
// by TestOffsets. Each helper slices b first, so an offset outside b
// panics with a bounds error instead of touching memory it does not own;
// the offsets are constants, so that never happens at run time.
//
// sync/atomic operations are sequentially consistent: a store publishes
// every ordinary write made before it (release) and a load makes every
// write published before the stored value visible after it (acquire).
// That is what the rings rely on. On amd64 they compile to MOV loads and
// XCHG stores, on arm64 to LDAR and STLR, which order the same way against
// another process or a vCPU sharing the memory.

// p64 and p32 slice b (a bounds check that reads no memory, so the race
// detector sees only the atomic access) and point at the first byte.
func p64(b []byte, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(unsafe.SliceData(b[off : off+8])))
}

func p32(b []byte, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(unsafe.SliceData(b[off : off+4])))
}

func load64(b []byte, off int) uint64     { return atomic.LoadUint64(p64(b, off)) }
func store64(b []byte, off int, v uint64) { atomic.StoreUint64(p64(b, off), v) }
func add64(b []byte, off int, v uint64)   { atomic.AddUint64(p64(b, off), v) }
func load32(b []byte, off int) uint32     { return atomic.LoadUint32(p32(b, off)) }
func store32(b []byte, off int, v uint32) { atomic.StoreUint32(p32(b, off), v) }
func swap32(b []byte, off int, v uint32) uint32 {
	return atomic.SwapUint32(p32(b, off), v)
}
func cas32(b []byte, off int, old, new uint32) bool {
	return atomic.CompareAndSwapUint32(p32(b, off), old, new)
}

// aligned reports whether b starts on an 8-byte boundary, as the atomic
// accesses need.
func aligned(b []byte) bool {
	return len(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 == 0
}
