package vmm

import (
	"fmt"
	"strings"

	"github.com/ktstr-go/ktstr/internal/kvm"
)

// ExitReason is how a VM ended.
type ExitReason int

const (
	// ExitRunning: the VM has not ended.
	ExitRunning ExitReason = iota
	// ExitShutdown: KVM_EXIT_SHUTDOWN, a triple fault. Linux's reboot
	// with reboot=t (what the guest agent uses) ends this way; so does
	// a guest that crashes badly enough to fault while handling a fault.
	ExitShutdown
	// ExitReset: the guest reset the machine: 0xFE to the i8042 command
	// port (reboot=k), the reset control register 0xCF9 (reboot=p, or
	// reboot=a through the FADT's RESET_REG), or KVM_SYSTEM_EVENT_RESET.
	ExitReset
	// ExitPoweroff: the guest powered off through ACPI (SLP_EN in the
	// FADT's sleep control register: Linux's poweroff), or
	// KVM_SYSTEM_EVENT_SHUTDOWN.
	ExitPoweroff
	// ExitHalt: the boot vCPU executed HLT with interrupts disabled and
	// KVM returned KVM_EXIT_HLT. With the in-kernel irqchip KVM handles
	// HLT itself, so a VM started by Start does not end this way: a guest
	// that halts for good is left to the caller's watchdog.
	ExitHalt
	// ExitCrash: KVM_SYSTEM_EVENT_CRASH.
	ExitCrash
	// ExitKilled: Kill was called.
	ExitKilled
	// ExitError: the VMM could not go on: KVM_EXIT_FAIL_ENTRY,
	// KVM_EXIT_INTERNAL_ERROR, an exit it does not handle, or a failed
	// KVM_RUN. The error is a *RunError.
	ExitError
)

func (r ExitReason) String() string {
	switch r {
	case ExitRunning:
		return "running"
	case ExitShutdown:
		return "shutdown"
	case ExitReset:
		return "reset"
	case ExitPoweroff:
		return "poweroff"
	case ExitHalt:
		return "halt"
	case ExitCrash:
		return "crash"
	case ExitKilled:
		return "killed"
	case ExitError:
		return "error"
	}
	return fmt.Sprintf("ExitReason(%d)", int(r))
}

// RunError describes why a vCPU could not go on.
type RunError struct {
	VCPU     int      // the CPU number (not the APIC id)
	Exit     uint32   // KVM exit reason; 0 when Err is set
	Suberror uint32   // KVM_EXIT_INTERNAL_ERROR's suberror
	Data     []uint64 // KVM_EXIT_INTERNAL_ERROR's or KVM_EXIT_SYSTEM_EVENT's data words
	Hardware uint64   // KVM_EXIT_FAIL_ENTRY's hardware entry failure reason
	RIP      uint64   // the vCPU's RIP at the exit, when it could be read
	HaveRIP  bool
	Err      error // a failed ioctl
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vmm: vcpu %d: ", e.VCPU)
	switch {
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	case e.Exit == kvm.ExitInternalError:
		fmt.Fprintf(&b, "KVM_EXIT_INTERNAL_ERROR suberror %d (%s)", e.Suberror, suberrorName(e.Suberror))
	case e.Exit == kvm.ExitFailEntry:
		fmt.Fprintf(&b, "KVM_EXIT_FAIL_ENTRY hardware reason %#x", e.Hardware)
	default:
		b.WriteString(kvm.ExitName(e.Exit))
	}
	if len(e.Data) > 0 {
		b.WriteString(" data")
		for _, d := range e.Data {
			fmt.Fprintf(&b, " %#x", d)
		}
	}
	if e.HaveRIP {
		fmt.Fprintf(&b, " at rip %#x", e.RIP)
	}
	return b.String()
}

func (e *RunError) Unwrap() error { return e.Err }

func suberrorName(s uint32) string {
	switch s {
	case kvm.InternalErrorEmulation:
		return "instruction emulation failed"
	case kvm.InternalErrorSimulEx:
		return "exception while delivering an exception"
	case kvm.InternalErrorDeliveryEv:
		return "exit while delivering an event"
	case kvm.InternalErrorUnexpectedExit:
		return "unexpected hardware exit"
	}
	return "unknown"
}
