// Package kvm is the raw KVM ABI for x86-64: the ioctl request numbers,
// the structures passed to them with their C layouts, and thin typed
// wrappers over three kinds of file descriptor.
//
//	/dev/kvm  System   API version, capabilities, supported CPUID, vCPU mmap size
//	VM fd     VM       memory slots, TSS and identity-map pages, irqchip, PIT, IRQ lines
//	vCPU fd   VCPU     registers, CPUID, LAPIC, MSRs, FPU, KVM_RUN and its exit data
//
// Each type owns its descriptor (and the VCPU its kvm_run mapping) and
// has an idempotent Close. The package holds no policy: the machine model
// (memory map, boot protocol, devices, vCPU threads) is internal/vmm.
//
// # The kvm_run page
//
// KVM_RUN returns to user space with the reason in the vCPU's shared
// kvm_run page. The fields this package decodes (x86-64):
//
//	offset  size  field
//	     1     1  immediate_exit (set from any thread: the next KVM_RUN returns EINTR)
//	     8     4  exit_reason
//	    32        union, by exit reason:
//	              IO (2):             direction u8 @32, size u8 @33, port u16 @34,
//	                                  count u32 @36, data_offset u64 @40
//	              MMIO (6):           phys_addr u64 @32, data [8]u8 @40, len u32 @48, is_write u8 @52
//	              FAIL_ENTRY (9):     hardware_entry_failure_reason u64 @32, cpu u32 @40
//	              INTERNAL_ERROR (17): suberror u32 @32, ndata u32 @36, data [16]u64 @40
//	              SYSTEM_EVENT (24):  type u32 @32, ndata u32 @36, data [16]u64 @40
//
// Decoded exit data (IO.Data, MMIO.Data) aliases the page and is valid
// until the next Run; offsets and counts are checked against the mapping
// before they are used.
//
// # Structures
//
// Sizes in bytes, pinned by abi_unsafe_test.go and, where gcc and the
// kernel headers are installed, compared with the C definitions:
//
//	struct                       size   Go type
//	kvm_regs                      144   Regs
//	kvm_sregs                     312   Sregs (8 × kvm_segment 24, 2 × kvm_dtable 16, 7 u64, bitmap 32)
//	kvm_userspace_memory_region    32   UserspaceMemoryRegion
//	kvm_cpuid2 + entries       8+40·n   cpuid2 (n = MaxCPUIDEntries), CPUIDEntry
//	kvm_lapic_state              1024   LAPICState
//	kvm_pit_config                 64   PITConfig
//	kvm_fpu                       416   FPU
//	kvm_msrs + entries         8+16·n   msrs, MSREntry
//	kvm_irq_level                   8   irqLevel
//
// # unsafe
//
// Only kvm_unsafe.go imports unsafe. Its ioctl helper takes an
// unsafe.Pointer and converts it to uintptr inside the Syscall call; each
// caller follows with runtime.KeepAlive on the pointee.
package kvm
