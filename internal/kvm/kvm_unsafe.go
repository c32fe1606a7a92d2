package kvm

// Everything in this package that needs unsafe is in this file: the ioctl
// helper that passes a pointer to the kernel, the methods that hand it Go
// structs, the host address of a memory mapping, and the byte store into
// kvm_run.

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl issues an ioctl whose argument points to memory the kernel reads
// or writes. The pointer is converted to uintptr inside the Syscall call
// expression, as unsafe.Pointer's rules require; callers keep the pointee
// alive with runtime.KeepAlive after the call.
func ioctl(n int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(n), req, uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return r, e
		}
		return r, nil
	}
}

// SetUserMemoryRegion maps mem (page-aligned, a whole number of pages,
// memory that stays mapped as long as the VM runs) into the guest at
// guestPhys as memory slot slot (KVM_SET_USER_MEMORY_REGION).
func (v *VM) SetUserMemoryRegion(slot uint32, guestPhys uint64, mem []byte, flags uint32) error {
	if len(mem) == 0 {
		return fmt.Errorf("kvm: memory slot %d: empty", slot)
	}
	r := UserspaceMemoryRegion{
		Slot: slot, Flags: flags, GuestPhysAddr: guestPhys,
		MemorySize: uint64(len(mem)), UserspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))),
	}
	_, err := ioctl(v.fd.n, reqSetUserMemoryRegion, unsafe.Pointer(&r))
	runtime.KeepAlive(&r)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_USER_MEMORY_REGION slot %d at %#x size %#x: %w", slot, guestPhys, len(mem), err)
	}
	return nil
}

// SetIdentityMapAddr sets the page KVM uses for an identity page table
// in unpaged modes on Intel (KVM_SET_IDENTITY_MAP_ADDR).
func (v *VM) SetIdentityMapAddr(addr uint64) error {
	a := addr
	_, err := ioctl(v.fd.n, reqSetIdentityMapAddr, unsafe.Pointer(&a))
	runtime.KeepAlive(&a)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_IDENTITY_MAP_ADDR %#x: %w", addr, err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel i8254 timer.
func (v *VM) CreatePIT2(flags uint32) error {
	c := PITConfig{Flags: flags}
	_, err := ioctl(v.fd.n, reqCreatePIT2, unsafe.Pointer(&c))
	runtime.KeepAlive(&c)
	if err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// IRQLine sets the level of an interrupt line of the in-kernel irqchip
// (KVM_IRQ_LINE); an edge is a raise followed by a lower.
func (v *VM) IRQLine(irq uint32, level bool) error {
	l := irqLevel{IRQ: irq}
	if level {
		l.Level = 1
	}
	_, err := ioctl(v.fd.n, reqIRQLine, unsafe.Pointer(&l))
	runtime.KeepAlive(&l)
	if err != nil {
		return fmt.Errorf("kvm: KVM_IRQ_LINE %d: %w", irq, err)
	}
	return nil
}

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID: the CPUID leaves this
// host and KVM can give a guest.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	c := new(cpuid2)
	c.Nent = MaxCPUIDEntries
	_, err := ioctl(s.fd.n, reqGetSupportedCPUID, unsafe.Pointer(c))
	runtime.KeepAlive(c)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	if c.Nent > MaxCPUIDEntries {
		return nil, fmt.Errorf("kvm: KVM_GET_SUPPORTED_CPUID: %d entries", c.Nent)
	}
	return append([]CPUIDEntry(nil), c.Entries[:c.Nent]...), nil
}

// SetCPUID2 sets the vCPU's CPUID table (at most MaxCPUIDEntries).
func (c *VCPU) SetCPUID2(entries []CPUIDEntry) error {
	if len(entries) > MaxCPUIDEntries {
		return fmt.Errorf("kvm: KVM_SET_CPUID2: %d entries, at most %d", len(entries), MaxCPUIDEntries)
	}
	t := new(cpuid2)
	t.Nent = uint32(copy(t.Entries[:], entries))
	_, err := ioctl(c.fd.n, reqSetCPUID2, unsafe.Pointer(t))
	runtime.KeepAlive(t)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_CPUID2 vcpu %d: %w", c.ID, err)
	}
	return nil
}

// GetRegs reads the general-purpose registers.
func (c *VCPU) GetRegs() (Regs, error) {
	var r Regs
	_, err := ioctl(c.fd.n, reqGetRegs, unsafe.Pointer(&r))
	runtime.KeepAlive(&r)
	if err != nil {
		return r, fmt.Errorf("kvm: KVM_GET_REGS vcpu %d: %w", c.ID, err)
	}
	return r, nil
}

// SetRegs writes the general-purpose registers.
func (c *VCPU) SetRegs(r Regs) error {
	_, err := ioctl(c.fd.n, reqSetRegs, unsafe.Pointer(&r))
	runtime.KeepAlive(&r)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_REGS vcpu %d: %w", c.ID, err)
	}
	return nil
}

// GetSregs reads the special registers.
func (c *VCPU) GetSregs() (Sregs, error) {
	var s Sregs
	_, err := ioctl(c.fd.n, reqGetSregs, unsafe.Pointer(&s))
	runtime.KeepAlive(&s)
	if err != nil {
		return s, fmt.Errorf("kvm: KVM_GET_SREGS vcpu %d: %w", c.ID, err)
	}
	return s, nil
}

// SetSregs writes the special registers.
func (c *VCPU) SetSregs(s Sregs) error {
	_, err := ioctl(c.fd.n, reqSetSregs, unsafe.Pointer(&s))
	runtime.KeepAlive(&s)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_SREGS vcpu %d: %w", c.ID, err)
	}
	return nil
}

// GetLAPIC reads the local APIC register page.
func (c *VCPU) GetLAPIC() (*LAPICState, error) {
	l := new(LAPICState)
	_, err := ioctl(c.fd.n, reqGetLAPIC, unsafe.Pointer(l))
	runtime.KeepAlive(l)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_GET_LAPIC vcpu %d: %w", c.ID, err)
	}
	return l, nil
}

// SetLAPIC writes the local APIC register page.
func (c *VCPU) SetLAPIC(l *LAPICState) error {
	_, err := ioctl(c.fd.n, reqSetLAPIC, unsafe.Pointer(l))
	runtime.KeepAlive(l)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_LAPIC vcpu %d: %w", c.ID, err)
	}
	return nil
}

// SetMSRs writes model-specific registers and returns how many KVM
// accepted: it stops at the first one it refuses.
func (c *VCPU) SetMSRs(entries []MSREntry) (int, error) {
	if len(entries) > maxMSRs {
		return 0, fmt.Errorf("kvm: KVM_SET_MSRS: %d entries, at most %d", len(entries), maxMSRs)
	}
	m := new(msrs)
	m.NMSRs = uint32(copy(m.Entries[:], entries))
	r, err := ioctl(c.fd.n, reqSetMSRs, unsafe.Pointer(m))
	runtime.KeepAlive(m)
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_SET_MSRS vcpu %d: %w", c.ID, err)
	}
	return int(r), nil
}

// SetFPU writes the x87/SSE state.
func (c *VCPU) SetFPU(f *FPU) error {
	_, err := ioctl(c.fd.n, reqSetFPU, unsafe.Pointer(f))
	runtime.KeepAlive(f)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_FPU vcpu %d: %w", c.ID, err)
	}
	return nil
}

// GetXCRs reads the extended control registers (XCR0).
func (c *VCPU) GetXCRs() ([]XCR, error) {
	x := new(xcrs)
	_, err := ioctl(c.fd.n, reqGetXCRs, unsafe.Pointer(x))
	runtime.KeepAlive(x)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_GET_XCRS vcpu %d: %w", c.ID, err)
	}
	return append([]XCR(nil), x.XCRs[:min(x.NXCRs, maxXCRs)]...), nil
}

// SetXCRs writes extended control registers; KVM refuses an XCR0 the
// vCPU's CPUID (leaf 0xD) does not allow.
func (c *VCPU) SetXCRs(regs []XCR) error {
	if len(regs) > maxXCRs {
		return fmt.Errorf("kvm: KVM_SET_XCRS: %d registers, at most %d", len(regs), maxXCRs)
	}
	x := new(xcrs)
	x.NXCRs = uint32(copy(x.XCRs[:], regs))
	_, err := ioctl(c.fd.n, reqSetXCRs, unsafe.Pointer(x))
	runtime.KeepAlive(x)
	if err != nil {
		return fmt.Errorf("kvm: KVM_SET_XCRS vcpu %d: %w", c.ID, err)
	}
	return nil
}

// GetMPState reads the vCPU's multiprocessing state (MPState*).
func (c *VCPU) GetMPState() (uint32, error) {
	var s uint32
	_, err := ioctl(c.fd.n, reqGetMPState, unsafe.Pointer(&s))
	runtime.KeepAlive(&s)
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_GET_MP_STATE vcpu %d: %w", c.ID, err)
	}
	return s, nil
}

// storeByte stores v at b[off] with an atomic 32-bit read-modify-write
// of the aligned word around it, so that a store from one thread and the
// kernel's read on another are a well-defined pair.
func storeByte(b []byte, off int, v byte) {
	if off < 0 || off >= len(b) {
		panic(errors.New("kvm: storeByte out of range"))
	}
	w := off &^ 3
	p := (*uint32)(unsafe.Pointer(&b[w]))
	shift := uint(off-w) * 8
	for {
		old := atomic.LoadUint32(p)
		nw := old&^(0xff<<shift) | uint32(v)<<shift
		if atomic.CompareAndSwapUint32(p, old, nw) {
			return
		}
	}
}
