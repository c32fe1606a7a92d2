package introspect

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// The guest sees the same bytes while its vCPUs run (Hot kernel ops, the
// monitor), so naturally aligned 4- and 8-byte accesses are single atomic
// host instructions, like the kernel's READ_ONCE/WRITE_ONCE, and never
// torn. The slices come from Slice: host mappings of guest RAM, whose
// alignment is the guest-physical address's (mappings are page-aligned).

func aligned(s []byte, n uintptr) bool {
	return len(s) >= int(n) && uintptr(unsafe.Pointer(&s[0]))%n == 0
}

func loadU32(s []byte) uint32 {
	if aligned(s, 4) {
		return atomic.LoadUint32((*uint32)(unsafe.Pointer(&s[0])))
	}
	return binary.LittleEndian.Uint32(s)
}

func loadU64(s []byte) uint64 {
	if aligned(s, 8) {
		return atomic.LoadUint64((*uint64)(unsafe.Pointer(&s[0])))
	}
	return binary.LittleEndian.Uint64(s)
}

func storeU32(s []byte, v uint32) {
	if aligned(s, 4) {
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&s[0])), v)
		return
	}
	binary.LittleEndian.PutUint32(s, v)
}

func storeU64(s []byte, v uint64) {
	if aligned(s, 8) {
		atomic.StoreUint64((*uint64)(unsafe.Pointer(&s[0])), v)
		return
	}
	binary.LittleEndian.PutUint64(s, v)
}

// orU32 ORs v into the u32 at s and returns the old value: one locked
// instruction when aligned (the guest may be updating the same word),
// a plain read-modify-write otherwise.
func orU32(s []byte, v uint32) uint32 {
	if aligned(s, 4) {
		return atomic.OrUint32((*uint32)(unsafe.Pointer(&s[0])), v)
	}
	old := binary.LittleEndian.Uint32(s)
	binary.LittleEndian.PutUint32(s, old|v)
	return old
}
