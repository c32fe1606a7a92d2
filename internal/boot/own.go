package boot

import (
	"fmt"
	"io"

	"github.com/ktstr-go/ktstr/internal/vmm"
)

// ownVM adapts the own VMM to machine.
type ownVM struct {
	vm *vmm.VM
}

// startOwn boots the kernel under ktstr-boot's own KVM VMM (through
// vmlinux's PVH entry when vmlinux is not ""): the region is its own
// memory slot above RAM, announced on the command line as
// KTSTR_SHM_BASE/KTSTR_SHM_SIZE; COM1 and COM2 go to con and com.
func startOwn(cfg Config, vmlinux, initrd, cmdline, regionPath string, regionSize uint64, con, com io.Writer) (*ownVM, error) {
	vm, err := vmm.Start(vmm.Config{
		Kernel: cfg.Kernel, Vmlinux: vmlinux, Initrd: initrd, Cmdline: cmdline,
		Topology: cfg.Topology, MemoryMB: max(cfg.MemoryMB, 128),
		RegionPath: regionPath, RegionSize: regionSize,
		Console: con, COM2: com,
	})
	if err != nil {
		return nil, fmt.Errorf("own VMM: %w", err)
	}
	return &ownVM{vm: vm}, nil
}

func (o *ownVM) Done() <-chan struct{} { return o.vm.Done() }
func (o *ownVM) Kill()                 { o.vm.Kill() }

// Err is the VMM's failure, if the VM ended on one (an internal error, a
// failed entry, an unknown exit); a reboot, reset, poweroff, halt or
// triple fault is the guest's doing and classified from its state.
func (o *ownVM) Err() error {
	r, err := o.vm.Exit()
	if r == vmm.ExitError {
		if err == nil {
			err = fmt.Errorf("vmm: %v", r)
		}
		return err
	}
	return nil
}
