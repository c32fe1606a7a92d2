package vmm

import (
	"fmt"

	"github.com/ktstr-go/ktstr/internal/topology"
)

// ACPI tables: just enough for Linux to find every vCPU (MADT), to power
// off (\_S5 and the sleep registers of a hardware-reduced FADT) and to
// reset (the FADT reset register). Placed at acpiAddr (0xE0000), where
// the kernel also scans for the RSDP when boot_params has no
// acpi_rsdp_addr.
//
//	offset  table  contents
//	0x000   RSDP   ACPI 2.0, 36 bytes: RSDT and XSDT addresses
//	0x040   XSDT   FADT, MADT (64-bit pointers)
//	0x080   RSDT   FADT, MADT (32-bit pointers)
//	0x0C0   FADT   revision 6, 276 bytes: HW_REDUCED_ACPI, DSDT, reset and sleep registers
//	0x1E0   DSDT   \_S5 package; COM1 and COM2 as PNP0501 devices with their IRQs
//	0x300   MADT   local APIC address, PCAT_COMPAT; one Local APIC per vCPU; one I/O APIC
const (
	acpiRSDPOff = 0x000
	acpiXSDTOff = 0x040
	acpiRSDTOff = 0x080
	acpiFADTOff = 0x0C0
	acpiDSDTOff = 0x1E0
	acpiMADTOff = 0x300

	acpiHeaderSize = 36
	rsdpSize       = 36
	fadtSize       = 276
	fadtRevision   = 6

	// Ports of the devices the FADT names.
	PortSleepControl = 0x600 // write SLP_TYP<<2 | SLP_EN (0x20): power off
	PortSleepStatus  = 0x601
	PortResetControl = 0xCF9 // write with bit 2 (0x04) set: reset
	resetValue       = 0x06

	// FADT fields.
	fadtFlagPwrButton   = 1 << 4  // no fixed-feature power button
	fadtFlagSlpButton   = 1 << 5  // no fixed-feature sleep button
	fadtFlagResetReg    = 1 << 10 // RESET_REG is supported
	fadtFlagHWReduced   = 1 << 20 // HW_REDUCED_ACPI: no PM1 blocks, no SCI, no PM timer
	iapcVGANotPresent   = 1 << 2
	iapcMSINotSupported = 1 << 3
	iapcNoCMOSRTC       = 1 << 5
	gasSystemIO         = 1
	rtcCentury          = 0x32 // CMOS register the FADT names as the century

	madtFlagPCATCompat = 1
	madtLAPIC          = 0
	madtIOAPIC         = 1
	madtLAPICEnabled   = 1

	// MaxCPUs is the most vCPUs the MADT's 8-bit APIC ids describe
	// (0xFF is the broadcast id).
	MaxCPUs = 254
)

var (
	acpiOEMID      = [6]byte{'K', 'T', 'S', 'T', 'R', ' '}
	acpiOEMTableID = [8]byte{'K', 'T', 'S', 'T', 'R', 'V', 'M', 'M'}
	acpiCreatorID  = [4]byte{'K', 'T', 'S', 'T'}
)

// acpiTables returns the tables to place at guest-physical base for cpus
// vCPUs (APIC ids 0 to cpus-1) and the RSDP's address.
func acpiTables(base uint64, cpus int) ([]byte, uint64, error) {
	if cpus < 1 || cpus > MaxCPUs {
		return nil, 0, fmt.Errorf("vmm: %d vCPUs: want 1 to %d", cpus, MaxCPUs)
	}
	madtLen := acpiHeaderSize + 8 + 8*cpus + 12
	b := make([]byte, acpiMADTOff+madtLen)

	// DSDT.
	aml := dsdtBody()
	if acpiHeaderSize+len(aml) > acpiMADTOff-acpiDSDTOff {
		return nil, 0, fmt.Errorf("vmm: DSDT of %d bytes overlaps the MADT", acpiHeaderSize+len(aml))
	}
	dsdt := b[acpiDSDTOff : acpiDSDTOff+acpiHeaderSize+len(aml)]
	copy(dsdt[acpiHeaderSize:], aml)
	acpiHeader(dsdt, "DSDT", 2)

	// FADT.
	f := b[acpiFADTOff : acpiFADTOff+fadtSize]
	le.PutUint32(f[40:], uint32(base+acpiDSDTOff)) // DSDT
	f[108] = rtcCentury
	le.PutUint16(f[109:], iapcVGANotPresent|iapcMSINotSupported|iapcNoCMOSRTC)
	le.PutUint32(f[112:], fadtFlagPwrButton|fadtFlagSlpButton|fadtFlagResetReg|fadtFlagHWReduced)
	gas(f[116:], PortResetControl) // RESET_REG
	f[128] = resetValue
	f[131] = 0                                                    // FADT minor version
	le.PutUint64(f[140:], base+acpiDSDTOff)                       // X_DSDT
	gas(f[244:], PortSleepControl)                                // SLEEP_CONTROL_REG
	gas(f[256:], PortSleepStatus)                                 // SLEEP_STATUS_REG
	copy(f[268:], []byte{'K', 'T', 'S', 'T', 'R', 'V', 'M', 'M'}) // hypervisor vendor identity
	acpiHeader(f, "FACP", fadtRevision)

	// MADT.
	m := b[acpiMADTOff : acpiMADTOff+madtLen]
	le.PutUint32(m[36:], lapicAddr)
	le.PutUint32(m[40:], madtFlagPCATCompat)
	o := 44
	for i := range cpus {
		m[o], m[o+1] = madtLAPIC, 8
		m[o+2], m[o+3] = byte(i), byte(i) // ACPI processor UID, APIC id
		le.PutUint32(m[o+4:], madtLAPICEnabled)
		o += 8
	}
	m[o], m[o+1] = madtIOAPIC, 12
	m[o+2] = 0 // I/O APIC id
	le.PutUint32(m[o+4:], ioapicAddr)
	le.PutUint32(m[o+8:], 0) // global system interrupt base
	acpiHeader(m, "APIC", 5)

	// XSDT and RSDT.
	x := b[acpiXSDTOff : acpiXSDTOff+acpiHeaderSize+16]
	le.PutUint64(x[36:], base+acpiFADTOff)
	le.PutUint64(x[44:], base+acpiMADTOff)
	acpiHeader(x, "XSDT", 1)
	r := b[acpiRSDTOff : acpiRSDTOff+acpiHeaderSize+8]
	le.PutUint32(r[36:], uint32(base+acpiFADTOff))
	le.PutUint32(r[40:], uint32(base+acpiMADTOff))
	acpiHeader(r, "RSDT", 1)

	// RSDP.
	p := b[acpiRSDPOff : acpiRSDPOff+rsdpSize]
	copy(p, "RSD PTR ")
	copy(p[9:], acpiOEMID[:])
	p[15] = 2 // revision: ACPI 2.0+
	le.PutUint32(p[16:], uint32(base+acpiRSDTOff))
	le.PutUint32(p[20:], rsdpSize)
	le.PutUint64(p[24:], base+acpiXSDTOff)
	p[8] = -sum(p[:20])
	p[32] = -sum(p)
	return b, base + acpiRSDPOff, nil
}

// acpiHeader fills the common 36-byte header of table t (its whole
// length) and sets the checksum so that all bytes sum to zero.
func acpiHeader(t []byte, sig string, rev byte) {
	copy(t[0:4], sig)
	le.PutUint32(t[4:], uint32(len(t)))
	t[8] = rev
	t[9] = 0
	copy(t[10:16], acpiOEMID[:])
	copy(t[16:24], acpiOEMTableID[:])
	le.PutUint32(t[24:], 1)
	copy(t[28:32], acpiCreatorID[:])
	le.PutUint32(t[32:], 1)
	t[9] = -sum(t)
}

// gas writes a 12-byte Generic Address Structure for one byte-wide I/O
// port.
func gas(b []byte, port uint64) {
	b[0] = gasSystemIO
	b[1] = 8 // register bit width
	b[2] = 0 // bit offset
	b[3] = 1 // access size: byte
	le.PutUint64(b[4:], port)
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// CheckTopology says whether the own VMM can give a guest the shape t.
func CheckTopology(t topology.Topology) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.CPUs() > MaxCPUs {
		return fmt.Errorf("vmm: %s is %d vCPUs, at most %d", t, t.CPUs(), MaxCPUs)
	}
	return nil
}
