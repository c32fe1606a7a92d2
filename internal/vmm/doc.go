// Package vmm is ktstr-boot's own virtual machine monitor for x86-64 on
// KVM: it boots a bzImage (or runs a flat 64-bit program), gives the guest
// the shared region as its own memory slot, and reports how the VM ended.
// It is small on purpose: no PCI, no virtio, no disk; the data path is the
// shared region, and the two serial ports carry the console.
//
// # Backends
//
// Probe tells the kinds of /dev/kvm apart. On hardware KVM (kvm_intel or
// kvm_amd) Linux boots. On a software backend such as PVM (kvm_pvm), which
// emulates guest instructions, the KVM API works and small programs run,
// but a stock kernel stops early with KVM_EXIT_INTERNAL_ERROR (it meets an
// instruction the emulator lacks): use Config.Program there, or QEMU.
//
// # Guest physical memory
//
//	address                 size          contents
//	0x0000_0000             0x500         real-mode IVT and BDA (RAM, left zero)
//	0x0000_0500             0x30          GDT: null, null, code64 0x10, data 0x18, TSS 0x20 (16 bytes)
//	0x0000_0580             0x68          TSS (zero; TR points here, busy)
//	0x0000_7000             4 KiB         boot_params, the "zero page" (RSI at entry)
//	0x0000_9000             4 KiB         PML4
//	0x0000_A000             4 KiB         PDPT (first 512 GiB)
//	0x0000_B000             4 KiB × n     page directories, 2 MiB pages: the first 4 GiB, the region's GiB blocks, RAM above 4 GiB (up to 16 directories in all)
//	0x0001_B000             up to 20 KiB  with Vmlinux: hvm_start_info, its module list (the initrd) and memory map (EBX at the PVH entry)
//	0x0002_0000             up to 64 KiB  kernel command line, NUL-terminated
//	0x0009_FC00             1 KiB         EBDA (E820 reserved, empty)
//	0x000E_0000             128 KiB       BIOS area (E820 reserved): RSDP, XSDT, RSDT, FADT, DSDT, MADT [, SRAT, SLIT]
//	0x0010_0000             image         protected-mode kernel (bzImage from (setup_sects+1)×512), or Program
//	segments' p_paddr       vmlinux       with Vmlinux instead: its PT_LOAD segments at their physical addresses (16 MiB up)
//	high in low RAM         initrd        page-aligned, as high as initrd_addr_max and RAM allow
//	up to 3 GiB             —             end of low RAM
//	RegionBase (GiB-aligned) RegionSize   the shared region: memory slot 2, MAP_SHARED on the region file, not in E820
//	0xC000_0000–0xFFFF_FFFF —             32-bit MMIO hole: IOAPIC 0xFEC00000, LAPIC 0xFEE00000, KVM's TSS 0xFFFBD000 and identity page 0xFFFBC000
//	0x1_0000_0000           the rest      RAM above 4 GiB when MemoryMB is over 3 GiB (memory slot 1)
//
// The region goes at the first GiB boundary at or above the end of low RAM
// when it fits below the hole, otherwise at the first GiB boundary above
// all RAM. Only its guest-visible part is mapped; the host-only trailer
// page after it in the file stays out of the guest (a guest access just
// past the region is an MMIO exit and is dropped). Start appends
// " KTSTR_SHM_BASE=0x... KTSTR_SHM_SIZE=0x..." to the command line; the
// guest agent maps that range through /dev/mem.
//
// The E820 table lists RAM [0, 0x9FC00) and [1 MiB, end of low RAM) (and
// RAM above 4 GiB), the EBDA and BIOS area as reserved, and nothing else.
// With more than one NUMA node each node owns a contiguous run of RAM in
// RAM order (low RAM first, then above 4 GiB: a node may have a range on
// each side of the hole), and the RAM entries are split where one node's
// run ends.
//
// # Boot sequence
//
//  1. Open /dev/kvm, check API version 12 and KVM_CAP_IMMEDIATE_EXIT;
//     KVM_CREATE_VM; KVM_SET_TSS_ADDR 0xFFFBD000; KVM_SET_IDENTITY_MAP_ADDR
//     0xFFFBC000; KVM_CREATE_IRQCHIP (PIC, IOAPIC, LAPICs in the kernel);
//     KVM_CREATE_PIT2 (speaker port in the kernel).
//  2. Map RAM anonymous (MADV_HUGEPAGE), the region file MAP_SHARED; memory
//     slots 0 (low RAM), 1 (high RAM), 2 (region).
//  3. Parse the setup header from 0x1f1 (protocol 2.12 or later, XLF_KERNEL_64);
//     copy the protected-mode kernel to 1 MiB; check that RAM holds
//     max(1 MiB, pref_address) + init_size; place the initrd.
//     With Vmlinux the setup header is only read (version, command line
//     and initrd limits) and the ELF's PT_LOAD segments are copied to
//     their physical addresses instead; its entry is the Xen
//     PHYS32_ENTRY note's (PVHEntry).
//  4. Write the command line, the ACPI tables, the zero page (setup header
//     copied; type_of_loader 0xFF, LOADED_HIGH|CAN_USE_HEAP, cmd_line_ptr,
//     ramdisk_image/size, E820 at 0x2d0, acpi_rsdp_addr at 0x070) or, with
//     Vmlinux, the hvm_start_info (version 1: command line, RSDP, the
//     initrd as its one module, the E820 table as its memory map), the GDT
//     and TSS, and the identity page tables.
//  5. Check KVM_CAP_MAX_VCPUS and KVM_CAP_MAX_VCPU_ID against the
//     topology. Per vCPU, in CPU order: KVM_CREATE_VCPU with the APIC id
//     as the vCPU id, map kvm_run, KVM_SET_CPUID2 from
//     KVM_GET_SUPPORTED_CPUID with the topology set (see Topology), LAPIC
//     LINT0 ExtINT and LINT1 NMI, MSR_IA32_MISC_ENABLE fast strings,
//     MTRRs on with write-back default, FPU control words, XCR0 =
//     every feature CPUID leaf 0xD allows (KVM_SET_XCRS), and, when an
//     APIC id exceeds 254, IA32_APIC_BASE in x2APIC mode. The boot vCPU
//     (CPU 0, APIC id 0) gets long mode (CR0 PE|ET|NE|PG, CR4 PAE, EFER
//     LME|LMA, CS 0x10, data 0x18, TR 0x20), RIP = 1 MiB + 0x200 (a
//     Program: 1 MiB), RSI = the zero page, RFLAGS = 2; with Vmlinux it
//     gets 32-bit protected mode instead (CR0 PE|ET|NE, no paging, CR4
//     and EFER 0, flat 32-bit code and data), RIP = the PVH entry, EBX =
//     the start info. The others wait in the in-kernel LAPIC for the
//     guest's INIT/SIPI.
//  6. One goroutine per vCPU, each on its own locked OS thread, runs
//     KVM_RUN in a loop.
//
// Start undoes every step that succeeded when a later one fails.
//
// XCR0 is preset because Linux sets the same value with XSETBV anyway,
// and because under QEMU 7.2's emulated SVM (make test-nested's outer
// machine until QEMU 10 replaced it) the guest's XSETBV never reaches
// the nested KVM: KVM then kept XCR0 = 1, restored it at every VM entry
// and reported 576 bytes of XSAVE state in CPUID 0xD, and Linux warned
// in fpu__init_system_xstate.
//
// # Topology
//
// Config.Topology is the machine shape (internal/topology): N nodes, L
// LLCs, C cores per LLC, T threads per core, CPUs numbered thread first.
// CPU i's APIC id is topology.APICID: llc << (coreBits+threadBits) |
// core << threadBits | thread. One package holds every LLC; the cache
// leaves carve the LLCs out of it. CPUID per vCPU (cpuidFor):
//
//	leaf 1               initial APIC id, addressable ids, HTT, hypervisor
//	leaf 4 (Intel)       L1/L2 shared by a core's threads, L3 by the LLC (an L3 added where the host has none)
//	leaves 0xB, 0x1F     SMT level (thread bits), core level spanning the package, terminator
//	0x80000008 ECX       CPUs - 1, APIC id bits of the package
//	AMD                  TopologyExtensions; 0x8000001D made up (L1d, L1i, L2 per core, L3 per
//	                     LLC); 0x80000006 to match; 0x8000001E: extended APIC id, package-wide
//	                     core id, threads - 1, node id: the NUMA node, or the LLC before family
//	                     0x17 (Linux takes those families' LLC from it); 0x80000026 dropped
//	0x40000001 EAX       KVM_FEATURE_MSI_EXT_DEST_ID when an APIC id exceeds 254
//
// Linux reads the LLC groups (cache/index3/shared_cpu_list), SMT siblings
// and packages back from these as the topology says. On AMD family 0x17
// models up to 0x1F (Zen 1) Linux fixes the LLC at APIC id bits 3 and up,
// which this layout does not follow: a guest there sees other LLCs.
//
// APIC ids above 254 (max-cpu's reach 433) cannot be reached in xAPIC
// mode, and Linux drops MADT x2APIC entries above 254 unless firmware left
// x2APIC on: those machines start every vCPU in x2APIC mode, advertise
// KVM_FEATURE_MSI_EXT_DEST_ID (without it Linux brings up no CPU above
// 255) and put irqaffinity= on the command line, listing the CPUs with ids
// up to 254: KVM's in-kernel I/O APIC delivers to 8-bit destinations
// only, so device interrupts (the serial ports, the timer) must stay on
// them. The vCPUs' IPIs go through the x2APIC and reach every CPU.
//
// # ACPI
//
// The tables (see acpi.go) let Linux find every vCPU (MADT: one Local
// APIC per vCPU in CPU order, a Local x2APIC for ids above 254, one I/O
// APIC), its NUMA node and each node's memory and distances (SRAT, SLIT,
// with more than one node), declare a hardware-reduced
// platform (FADT: no PM timer, SCI or PIC; no CMOS RTC, VGA or MSI), name
// the reset register (port 0xCF9) and the sleep control and status
// registers (ports 0x600 and 0x601), and give \_S5 and the two serial
// ports with their interrupts (DSDT) — without those _CRS entries a
// hardware-reduced Linux maps no ISA interrupt and user-space console
// output fails with EIO.
//
// # Devices (port I/O)
//
//	port         device
//	0x3F8–0x3FF  COM1, 16550A, IRQ 4: Config.Console
//	0x2F8–0x2FF  COM2, 16550A, IRQ 3: Config.COM2
//	0x70, 0x71   CMOS clock, read-only: UTC time in BCD, never updating
//	0x60, 0x64   i8042: reads 0; 0xFE to 0x64 resets (ExitReset)
//	0xCF9        reset control: a write with bit 2 resets (ExitReset)
//	0x600        ACPI sleep control: SLP_EN (0x20) powers off (ExitPoweroff)
//	0x601        ACPI sleep status: reads 0
//	0xCF8–0xCFF  PCI configuration: all ones, no host bridge
//	0x80         POST code: ignored
//	other        reads all ones, writes ignored (counted in Stats.UnknownPorts)
//
// The UARTs transmit at once, never receive, and model their interrupt as
// a level (THR empty and its interrupt enabled) so Linux's interrupt-driven
// tty output works. Console output is buffered by line and flushed when
// the VM ends. PIC, PIT, IOAPIC and LAPICs are KVM's. MMIO outside RAM and
// the region reads all ones and drops writes.
//
// # Exits
//
//	KVM exit                 action
//	IO (2)                   the port devices above; string I/O element by element
//	MMIO (6)                 reads all ones, writes dropped
//	HLT (5)                  boot vCPU with IF clear: ExitHalt; else run on (the in-kernel irqchip handles HLT, so it rarely comes)
//	SHUTDOWN (8)             ExitShutdown: a triple fault, which is how Linux reboots with reboot=t
//	SYSTEM_EVENT (24)        SHUTDOWN: ExitPoweroff; RESET: ExitReset; CRASH: ExitCrash
//	FAIL_ENTRY (9)           ExitError, hardware reason in the *RunError
//	INTERNAL_ERROR (17)      ExitError, suberror and data words in the *RunError
//	INTR (10), EINTR         run again (signals, immediate_exit)
//	anything else            ExitError
//
// The first exit that ends the VM wins. Ending sets immediate_exit in
// every vCPU's kvm_run and sends its thread SIGURG (which the Go runtime
// already uses and otherwise ignores), so each KVM_RUN returns; when every
// thread is done, the consoles are flushed, vCPUs, VM, mappings and
// /dev/kvm are closed, and Done is closed. Kill ends the VM the same way
// with ExitKilled.
package vmm
