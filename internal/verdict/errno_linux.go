package verdict

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// errnoName names a negative exit code as an errno ("EINVAL" for -22),
// as ktstr's report does; "" for other codes.
func errnoName(code int32) string {
	if code >= 0 || code == -1<<31 {
		return ""
	}
	return unix.ErrnoName(syscall.Errno(-code))
}
