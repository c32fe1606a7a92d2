package vmm

import (
	"errors"
	"testing"

	"github.com/ktstr-go/ktstr/internal/kvm"
	"golang.org/x/sys/unix"
)

func TestExitReasonString(t *testing.T) {
	for r, want := range map[ExitReason]string{
		ExitRunning: "running", ExitShutdown: "shutdown", ExitReset: "reset", ExitPoweroff: "poweroff",
		ExitHalt: "halt", ExitCrash: "crash", ExitKilled: "killed", ExitError: "error", 99: "ExitReason(99)",
	} {
		if got := r.String(); got != want {
			t.Errorf("ExitReason(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

func TestRunError(t *testing.T) {
	for _, c := range []struct {
		e    *RunError
		want string
	}{
		{&RunError{VCPU: 1, Exit: kvm.ExitInternalError, Suberror: 1, Data: []uint64{0x1, 0xc4e2}, RIP: 0xffffffff81000000, HaveRIP: true},
			"vmm: vcpu 1: KVM_EXIT_INTERNAL_ERROR suberror 1 (instruction emulation failed) data 0x1 0xc4e2 at rip 0xffffffff81000000"},
		{&RunError{Exit: kvm.ExitFailEntry, Hardware: 0x80000021}, "vmm: vcpu 0: KVM_EXIT_FAIL_ENTRY hardware reason 0x80000021"},
		{&RunError{Exit: 1234}, "vmm: vcpu 0: KVM_EXIT_1234"},
		{&RunError{VCPU: 2, Err: unix.EFAULT}, "vmm: vcpu 2: bad address"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
	if !errors.Is(&RunError{Err: unix.EFAULT}, unix.EFAULT) {
		t.Errorf("RunError does not unwrap to its ioctl error")
	}
}
