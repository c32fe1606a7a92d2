package shm

import (
	"sync/atomic"
	"unsafe"
)

// The region is shared with another process or a guest, so every position
// and flag is accessed with atomic loads and stores at 8-byte (or 4-byte)
// aligned offsets of the mapping. Mappings are page-aligned and offsets
// are constants checked by TestOffsetsAligned.

func load64(b []byte, off int) uint64 {
	_ = b[off+7]
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&b[off])))
}

func store64(b []byte, off int, v uint64) {
	_ = b[off+7]
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&b[off])), v)
}

func add64(b []byte, off int, v uint64) {
	_ = b[off+7]
	atomic.AddUint64((*uint64)(unsafe.Pointer(&b[off])), v)
}

func load32(b []byte, off int) uint32 {
	_ = b[off+3]
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[off])))
}

func store32(b []byte, off int, v uint32) {
	_ = b[off+3]
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&b[off])), v)
}

// load8 and store8 use the aligned 32-bit word that holds the byte, since
// sync/atomic has no 8-bit operations; control bytes are only ever changed
// by compare-and-swap on that word.
func load8(b []byte, off int) uint8 {
	w := off &^ 3
	return uint8(load32(b, w) >> (8 * uint(off-w)))
}

func cas8(b []byte, off int, old, new uint8) bool {
	w := off &^ 3
	shift := 8 * uint(off-w)
	p := (*uint32)(unsafe.Pointer(&b[w]))
	for {
		cur := atomic.LoadUint32(p)
		if uint8(cur>>shift) != old {
			return false
		}
		next := cur&^(0xff<<shift) | uint32(new)<<shift
		if atomic.CompareAndSwapUint32(p, cur, next) {
			return true
		}
	}
}
