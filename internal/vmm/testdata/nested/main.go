// Command nested is /init of a QEMU guest that gives the vmm tests a
// hardware-style KVM on hosts that lack one: QEMU's software emulation
// (TCG) emulates AMD SVM, so kvm_amd loads in the guest. It loads the
// modules in /mods (irqbypass, kvm, kvm-amd), runs /vmm.test with the
// arguments in ktstr.testargs= (comma-separated) — or, when the initramfs
// has /run.sh, that script with busybox's sh (scripts/test-own-vmm runs the
// whole ktstr pipeline this way) — prints "NESTED-EXIT <status>" and
// powers off. See ../nested-kvm.sh.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/internal/kvm"
)

func main() {
	for _, m := range []struct{ src, dst, fs string }{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"}} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil {
			fmt.Println("mount", m.dst, err)
		}
	}
	// From the command line: ktstr.kvm_amd=vgif=0,vls=0 gives kvm-amd
	// those parameters (the kernel applies a module's parameters from its
	// command line only through modprobe, which this init is not);
	// ktstr.testargs= adds test flags (comma-separated); ktstr.boottopo=A;B
	// sets KTSTR_VMM_BOOT_TOPOLOGIES for the tests.
	cmdline, _ := os.ReadFile("/proc/cmdline")
	var kvmAMD string
	args := []string{"-test.v", "-test.count=1"}
	var env []string
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "ktstr.kvm_amd="); ok {
			kvmAMD = strings.ReplaceAll(v, ",", " ")
		}
		if v, ok := strings.CutPrefix(f, "ktstr.testargs="); ok && v != "" {
			args = append(args, strings.Split(v, ",")...)
		}
		if v, ok := strings.CutPrefix(f, "ktstr.boottopo="); ok && v != "" {
			env = append(env, "KTSTR_VMM_BOOT_TOPOLOGIES="+v)
		}
	}
	for _, m := range []string{"irqbypass", "kvm", "kvm-amd"} {
		f, err := os.Open("/mods/" + m + ".ko")
		if err == nil {
			params := ""
			if m == "kvm-amd" {
				params = kvmAMD
			}
			err = unix.FinitModule(int(f.Fd()), params, 0)
			f.Close()
		}
		if err != nil {
			fmt.Println("load", m, err)
		}
	}
	if err := pinKVMKeys(); err != nil {
		fmt.Println("nested: holding kvm's static keys:", err)
	}
	cmd := exec.Command("/vmm.test", args...)
	if _, err := os.Stat("/run.sh"); err == nil {
		cmd = exec.Command("/bin/sh", "/run.sh")
	}
	cmd.Dir = "/tmp"
	cmd.Env = append(os.Environ(), "HOME=/tmp", "TMPDIR=/tmp", "KTSTR_KERNEL=/vmlinuz", "PATH=/bin")
	cmd.Env = append(cmd.Env, env...)
	if _, err := os.Stat("/pvh-vmlinux"); err == nil {
		cmd.Env = append(cmd.Env, "KTSTR_PVH_KERNEL=/pvh-bzImage", "KTSTR_PVH_VMLINUX=/pvh-vmlinux")
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	status := 0
	if err := cmd.Run(); err != nil {
		status = 1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		}
		fmt.Println(err)
	}
	fmt.Printf("NESTED-EXIT %d\n", status)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// pinKVMKeys creates two VMs that stay open until poweroff: one with an
// in-kernel irqchip and a vCPU whose local APIC is never enabled, one
// without and a vCPU. Between them they hold the static keys that
// creating, running and closing the tests' VMs flips in this (outer)
// kernel at one or more: preempt_notifier_key (in __schedule),
// apic_sw_disabled (a vCPU's APIC is software-disabled until its guest
// enables it) and kvm_has_noapic_vcpu. QEMU's multi-threaded emulation
// can leave the int3 of a static branch patch visible to another CPU
// after the patch is done (seen with QEMU 7.2 and 10.0.2: "Oops: int3"
// at apic_has_pending_timer and in __schedule, as a test's VM came or
// went); with the keys held, the tests' VMs flip none of them after this
// point, while this init runs alone.
func pinKVMKeys() error {
	sys, err := kvm.Open()
	if err != nil {
		return err
	}
	size, err := sys.VCPUMmapSize()
	if err != nil {
		return err
	}
	for _, irqchip := range []bool{true, false} {
		vm, err := sys.CreateVM()
		if err != nil {
			return err
		}
		if irqchip {
			if err := vm.CreateIRQChip(); err != nil {
				return err
			}
		}
		if _, err := vm.CreateVCPU(0, size); err != nil {
			return err
		}
	}
	return nil
}
