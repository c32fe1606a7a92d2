package workload

import (
	"math"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex(2) operations, without FUTEX_PRIVATE_FLAG: the words are shared
// between processes.
const (
	futexWaitOp = 0
	futexWakeOp = 1
)

// getcpu returns the CPU the calling thread runs on (-1 on error).
func getcpu() int {
	var cpu uint32
	_, _, e := syscall.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0)
	if e != 0 {
		return -1
	}
	return int(cpu)
}

// setComm sets the calling thread's command name (comm).
func setComm(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0, 0, 0)
}

// word32 returns the uint32 at off in a shared mapping, for sync/atomic
// and futex use. off must be 4-byte aligned and inside mem.
func word32(mem []byte, off int) *uint32 {
	_ = mem[off+3]
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

// word64 returns the uint64 at off in a shared mapping; off must be 8-byte
// aligned and inside mem.
func word64(mem []byte, off int) *uint64 {
	_ = mem[off+7]
	return (*uint64)(unsafe.Pointer(&mem[off]))
}

// futexWait sleeps while *addr == val, at most d. The futex is shared (not
// FUTEX_PRIVATE): the word lives in a MAP_SHARED memfd mapping used by
// several processes. Spurious returns, EAGAIN, EINTR and ETIMEDOUT are all
// normal; callers re-check the word.
func futexWait(addr *uint32, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	syscall.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes up to n waiters on addr.
func futexWake(addr *uint32, n int) {
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	syscall.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, uintptr(n), 0, 0, 0)
}

// rawFork forks the calling process with a bare clone(SIGCHLD) and makes
// the child exit at once with status 0 through exit_group. The child runs
// nothing but that system call: no Go code that could touch the runtime's
// locks, stacks or race detector, which is why this function is nosplit and
// norace and calls only the nosplit, norace syscall.RawSyscall6. It returns
// the child's pid to the parent.
//
//go:nosplit
//go:norace
func rawFork() (pid int, errno syscall.Errno) {
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r1 == 0 {
		for {
			syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 0, 0, 0, 0, 0, 0)
		}
	}
	return int(r1), 0
}
