package drain

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/lib/shm"
)

// BootWatch returns a BootAlive function for the ktstr-boot that created
// a region, named by its pid and start time (the region's BootPID and
// BootStart; pid 0 or less: unknown, always alive), and a function that
// releases what it holds.
//
// It holds the process, not its number. A pidfd (pidfd_open(2)) opened
// now refers to one process until it is closed and becomes readable once
// that process has exited, even while its pid still resolves (a zombie
// not yet reaped, or a new process that reused the number), which
// kill(pid, 0) cannot tell. Right after opening it, the process's start
// time is compared with the one recorded at creation: a different one
// means the ktstr-boot had already exited and its pid was reused before
// the watch began. A kernel without pidfds (before Linux 5.3) falls back
// to kill(pid, 0); a start time of 0 or an unreadable /proc skips the
// comparison.
func BootWatch(pid int, start uint64) (alive func() bool, release func()) {
	if pid <= 0 {
		return func() bool { return true }, func() {}
	}
	dead := func() bool { return false }
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return dead, func() {}
	case err != nil:
		return func() bool { return syscall.Kill(pid, 0) != syscall.ESRCH }, func() {}
	}
	if now, err := shm.ProcessStart(pid); start != 0 && err == nil && now != start {
		unix.Close(fd)
		return dead, func() {} // another process has this pid now
	}
	gone := false
	alive = func() bool {
		if !gone {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			gone = err == nil && n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0
		}
		return !gone
	}
	return alive, func() { unix.Close(fd) }
}
