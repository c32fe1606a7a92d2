package shm

import "unsafe"

// alignedBytes returns n zero bytes on an 8-byte boundary, as a mapping
// would be, on the Go heap so that the race detector sees every access.
func alignedBytes(n int) []byte {
	w := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), n)
}
