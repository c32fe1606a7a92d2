package workload

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sigWait waits up to d for a signal of set (blocked on this thread) and
// reports whether one came.
func sigWait(set *unix.Sigset_t, d time.Duration) bool {
	ts := unix.NsecToTimespec(int64(d))
	_, _, e := syscall.Syscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(set)), 0, uintptr(unsafe.Pointer(&ts)), 8, 0, 0)
	return e == 0
}
