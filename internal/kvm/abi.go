package kvm

// The KVM ABI for x86-64, as in the kernel's include/uapi/linux/kvm.h and
// arch/x86/include/uapi/asm/kvm.h. Every struct here is passed to the
// kernel by pointer, so its Go layout must equal the C layout: the sizes
// and offsets are pinned by tests (abi_unsafe_test.go), and checked
// against the system's headers where a C compiler is installed.

// APIVersion is the only KVM API version there has ever been.
const APIVersion = 12

// ioctl request numbers: _IOC(dir, 0xAE, nr, size).
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
	kvmIO    = 0xAE
)

func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | kvmIO<<8 | nr }

// Sizes of the structs passed by pointer (checked against unsafe.Sizeof).
const (
	sizeofRegs        = 144
	sizeofSregs       = 312
	sizeofSegment     = 24
	sizeofDTable      = 16
	sizeofMemRegion   = 32
	sizeofCPUIDEntry  = 40
	sizeofCPUIDHeader = 8
	sizeofLAPIC       = 1024
	sizeofPITConfig   = 64
	sizeofFPU         = 416
	sizeofMSRsHeader  = 8
	sizeofMSREntry    = 16
	sizeofIRQLevel    = 8
	sizeofMPState     = 4
	sizeofXCRs        = 392
)

// Request numbers.
var (
	reqGetAPIVersion       = ioc(iocNone, 0x00, 0)
	reqCreateVM            = ioc(iocNone, 0x01, 0)
	reqCheckExtension      = ioc(iocNone, 0x03, 0)
	reqGetVCPUMmapSize     = ioc(iocNone, 0x04, 0)
	reqGetSupportedCPUID   = ioc(iocRead|iocWrite, 0x05, sizeofCPUIDHeader)
	reqCreateVCPU          = ioc(iocNone, 0x41, 0)
	reqSetUserMemoryRegion = ioc(iocWrite, 0x46, sizeofMemRegion)
	reqSetTSSAddr          = ioc(iocNone, 0x47, 0)
	reqSetIdentityMapAddr  = ioc(iocWrite, 0x48, 8)
	reqCreateIRQChip       = ioc(iocNone, 0x60, 0)
	reqIRQLine             = ioc(iocWrite, 0x61, sizeofIRQLevel)
	reqCreatePIT2          = ioc(iocWrite, 0x77, sizeofPITConfig)
	reqRun                 = ioc(iocNone, 0x80, 0)
	reqGetRegs             = ioc(iocRead, 0x81, sizeofRegs)
	reqSetRegs             = ioc(iocWrite, 0x82, sizeofRegs)
	reqGetSregs            = ioc(iocRead, 0x83, sizeofSregs)
	reqSetSregs            = ioc(iocWrite, 0x84, sizeofSregs)
	reqSetMSRs             = ioc(iocWrite, 0x89, sizeofMSRsHeader)
	reqSetFPU              = ioc(iocWrite, 0x8d, sizeofFPU)
	reqGetLAPIC            = ioc(iocRead, 0x8e, sizeofLAPIC)
	reqSetLAPIC            = ioc(iocWrite, 0x8f, sizeofLAPIC)
	reqSetCPUID2           = ioc(iocWrite, 0x90, sizeofCPUIDHeader)
	reqGetMPState          = ioc(iocRead, 0x98, sizeofMPState)
	reqGetXCRs             = ioc(iocRead, 0xa6, sizeofXCRs)
	reqSetXCRs             = ioc(iocWrite, 0xa7, sizeofXCRs)
)

// Exit reasons (kvm_run.exit_reason) the VMM handles or reports.
const (
	ExitUnknown       = 0
	ExitException     = 1
	ExitIO            = 2
	ExitHypercall     = 3
	ExitDebug         = 4
	ExitHLT           = 5
	ExitMMIO          = 6
	ExitIRQWindowOpen = 7
	ExitShutdown      = 8
	ExitFailEntry     = 9
	ExitIntr          = 10
	ExitInternalError = 17
	ExitSystemEvent   = 24
)

// ExitName returns the kernel's name for an exit reason.
func ExitName(reason uint32) string {
	switch reason {
	case ExitUnknown:
		return "KVM_EXIT_UNKNOWN"
	case ExitException:
		return "KVM_EXIT_EXCEPTION"
	case ExitIO:
		return "KVM_EXIT_IO"
	case ExitHypercall:
		return "KVM_EXIT_HYPERCALL"
	case ExitDebug:
		return "KVM_EXIT_DEBUG"
	case ExitHLT:
		return "KVM_EXIT_HLT"
	case ExitMMIO:
		return "KVM_EXIT_MMIO"
	case ExitIRQWindowOpen:
		return "KVM_EXIT_IRQ_WINDOW_OPEN"
	case ExitShutdown:
		return "KVM_EXIT_SHUTDOWN"
	case ExitFailEntry:
		return "KVM_EXIT_FAIL_ENTRY"
	case ExitIntr:
		return "KVM_EXIT_INTR"
	case ExitInternalError:
		return "KVM_EXIT_INTERNAL_ERROR"
	case ExitSystemEvent:
		return "KVM_EXIT_SYSTEM_EVENT"
	}
	return "KVM_EXIT_" + itoa(uint64(reason))
}

// System event types (kvm_run.system_event.type).
const (
	SystemEventShutdown = 1
	SystemEventReset    = 2
	SystemEventCrash    = 3
)

// Internal error suberrors (kvm_run.internal.suberror).
const (
	InternalErrorEmulation      = 1
	InternalErrorSimulEx        = 2
	InternalErrorDeliveryEv     = 3
	InternalErrorUnexpectedExit = 4
)

// IO exit directions.
const (
	IOIn  = 0
	IOOut = 1
)

// Capabilities for CheckExtension.
const (
	CapIRQChip       = 0
	CapNrVCPUs       = 9
	CapNrMemslots    = 10
	CapPIT2          = 33
	CapXCRs          = 56
	CapMaxVCPUs      = 66
	CapMaxVCPUID     = 128
	CapImmediateExit = 136
)

// Flags.
const (
	PITSpeakerDummy          = 1 // KVM_PIT_SPEAKER_DUMMY: port 0x61 handled in the kernel
	CPUIDFlagSignificantIndx = 1 // KVM_CPUID_FLAG_SIGNIFCANT_INDEX
)

// kvm_run layout (x86-64). The union starts at 32.
const (
	runImmediateExit = 1
	runExitReason    = 8
	runUnion         = 32
	// RunMinSize is the part of kvm_run this package reads; the mapping
	// is KVM_GET_VCPU_MMAP_SIZE bytes, larger.
	RunMinSize = 304
)

// Regs is struct kvm_regs.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment is struct kvm_segment.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8
	S        uint8
	L        uint8
	G        uint8
	AVL      uint8
	Unusable uint8
	_        uint8
}

// DTable is struct kvm_dtable (GDTR, IDTR).
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs is struct kvm_sregs.
type Sregs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               DTable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	InterruptBitmap        [4]uint64
}

// UserspaceMemoryRegion is struct kvm_userspace_memory_region.
type UserspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// CPUIDEntry is struct kvm_cpuid_entry2.
type CPUIDEntry struct {
	Function uint32
	Index    uint32
	Flags    uint32
	EAX      uint32
	EBX      uint32
	ECX      uint32
	EDX      uint32
	_        [3]uint32
}

// MaxCPUIDEntries bounds the CPUID table (the kernel's
// KVM_MAX_CPUID_ENTRIES).
const MaxCPUIDEntries = 256

// cpuid2 is struct kvm_cpuid2 with room for MaxCPUIDEntries entries.
type cpuid2 struct {
	Nent    uint32
	_       uint32
	Entries [MaxCPUIDEntries]CPUIDEntry
}

// LAPICState is struct kvm_lapic_state: the local APIC's register page.
type LAPICState struct {
	Regs [1024]byte
}

// Local APIC register offsets used by the VMM.
const (
	LAPICLVT0 = 0x350
	LAPICLVT1 = 0x360
)

// PITConfig is struct kvm_pit_config.
type PITConfig struct {
	Flags uint32
	_     [15]uint32
}

// FPU is struct kvm_fpu.
type FPU struct {
	FPR        [8][16]byte
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]byte
	MXCSR      uint32
	_          uint32
}

// XCR is struct kvm_xcr: one extended control register (XCR0 is 0).
type XCR struct {
	XCR   uint32
	_     uint32
	Value uint64
}

// maxXCRs is the kernel's KVM_MAX_XCRS.
const maxXCRs = 16

// xcrs is struct kvm_xcrs.
type xcrs struct {
	NXCRs uint32
	Flags uint32
	XCRs  [maxXCRs]XCR
	_     [16]uint64
}

// MSREntry is struct kvm_msr_entry.
type MSREntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

// maxMSRs bounds one SetMSRs call.
const maxMSRs = 32

// msrs is struct kvm_msrs with room for maxMSRs entries.
type msrs struct {
	NMSRs   uint32
	_       uint32
	Entries [maxMSRs]MSREntry
}

// irqLevel is struct kvm_irq_level.
type irqLevel struct {
	IRQ   uint32
	Level uint32
}

// MP states (struct kvm_mp_state).
const (
	MPStateRunnable      = 0
	MPStateUninitialized = 1
	MPStateInitReceived  = 2
	MPStateHalted        = 3
	MPStateSIPIReceived  = 4
)

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
