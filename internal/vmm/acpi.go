package vmm

import (
	"fmt"

	"github.com/ktstr-go/ktstr/internal/topology"
)

// ACPI tables: enough for Linux to find every vCPU (MADT) and its NUMA
// node and each node's memory and distances (SRAT, SLIT), to power off
// (\_S5 and the sleep registers of a hardware-reduced FADT) and to reset
// (the FADT reset register). They are laid out one after the other,
// 16-byte aligned, from acpiAddr (0xE0000), where the kernel also scans
// for the RSDP when boot_params has no acpi_rsdp_addr:
//
//	table  contents
//	RSDP   ACPI 2.0, 36 bytes: RSDT and XSDT addresses
//	XSDT   FADT, MADT [, SRAT, SLIT] (64-bit pointers)
//	RSDT   the same (32-bit pointers)
//	FADT   revision 6, 276 bytes: HW_REDUCED_ACPI, DSDT, reset and sleep registers
//	DSDT   \_S5 package; COM1 and COM2 as PNP0501 devices with their IRQs
//	MADT   local APIC address, PCAT_COMPAT; per vCPU in CPU order a Local APIC (APIC id up to 254)
//	       or a Local x2APIC (above); one I/O APIC
//	SRAT   with more than one node: per vCPU its node (Local APIC or x2APIC affinity), per node
//	       its RAM ranges (memory affinity)
//	SLIT   with more than one node: the distance matrix
//
// The tables of 252 vCPUs with x2APIC ids take 6 KiB, 9 KiB with an SRAT:
// far less than the 128 KiB BIOS area.
const (
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
	madtX2APIC         = 9
	madtLAPICEnabled   = 1
	madtLAPICSize      = 8
	madtX2APICSize     = 16
	madtIOAPICSize     = 12

	sratLAPIC         = 0
	sratMemory        = 1
	sratX2APIC        = 2
	sratLAPICSize     = 16
	sratMemorySize    = 40
	sratX2APICSize    = 24
	sratEnabled       = 1
	sratHeaderSize    = acpiHeaderSize + 12 // reserved u32 (1) and u64
	slitHeaderSize    = acpiHeaderSize + 8  // number of localities u64
	acpiTableAlign    = 16
	acpiMaxTableBytes = biosEnd - biosAddr

	// MaxCPUs is the most vCPUs the VMM runs: what one x86 machine's
	// 8-bit APIC broadcast id leaves (0 to 254), as for QEMU.
	MaxCPUs = topology.MaxCPUs
)

var (
	acpiOEMID      = [6]byte{'K', 'T', 'S', 'T', 'R', ' '}
	acpiOEMTableID = [8]byte{'K', 'T', 'S', 'T', 'R', 'V', 'M', 'M'}
	acpiCreatorID  = [4]byte{'K', 'T', 'S', 'T'}
)

// acpiTables returns the tables to place at guest-physical base for
// machine t, whose nodes own the RAM ranges nodeRAM (one list per node;
// MemoryMap.NodeRAM), and the RSDP's address.
func acpiTables(base uint64, t topology.Topology, nodeRAM [][]MemRange) ([]byte, uint64, error) {
	if err := t.Validate(); err != nil {
		return nil, 0, fmt.Errorf("vmm: %w", err)
	}
	if len(nodeRAM) != t.Nodes {
		return nil, 0, fmt.Errorf("vmm: RAM ranges for %d nodes, the topology has %d", len(nodeRAM), t.Nodes)
	}
	dsdt := acpiTable("DSDT", 2, dsdtBody())
	tables := [][]byte{madt(t)}
	if t.Nodes > 1 {
		tables = append(tables, srat(t, nodeRAM), slit(t))
	}
	// Offsets: RSDP, XSDT, RSDT, FADT, DSDT, then the others.
	k := 1 + len(tables) // FADT and the others
	at := func(off, n int) int { return int(alignUp(uint64(off+n), acpiTableAlign)) }
	xsdtOff := at(0, rsdpSize)
	rsdtOff := at(xsdtOff, acpiHeaderSize+8*k)
	fadtOff := at(rsdtOff, acpiHeaderSize+4*k)
	dsdtOff := at(fadtOff, fadtSize)
	offs := []int{fadtOff}
	end := at(dsdtOff, len(dsdt))
	for _, tb := range tables {
		offs = append(offs, end)
		end = at(end, len(tb))
	}
	if end > acpiMaxTableBytes {
		return nil, 0, fmt.Errorf("vmm: ACPI tables for %s take %d bytes, the BIOS area holds %d", t, end, acpiMaxTableBytes)
	}
	b := make([]byte, end)
	copy(b[dsdtOff:], dsdt)
	for i, tb := range tables {
		copy(b[offs[i+1]:], tb)
	}

	// FADT.
	f := b[fadtOff : fadtOff+fadtSize]
	le.PutUint32(f[40:], uint32(base)+uint32(dsdtOff)) // DSDT
	f[108] = rtcCentury
	le.PutUint16(f[109:], iapcVGANotPresent|iapcMSINotSupported|iapcNoCMOSRTC)
	le.PutUint32(f[112:], fadtFlagPwrButton|fadtFlagSlpButton|fadtFlagResetReg|fadtFlagHWReduced)
	gas(f[116:], PortResetControl) // RESET_REG
	f[128] = resetValue
	f[131] = 0                                                    // FADT minor version
	le.PutUint64(f[140:], base+uint64(dsdtOff))                   // X_DSDT
	gas(f[244:], PortSleepControl)                                // SLEEP_CONTROL_REG
	gas(f[256:], PortSleepStatus)                                 // SLEEP_STATUS_REG
	copy(f[268:], []byte{'K', 'T', 'S', 'T', 'R', 'V', 'M', 'M'}) // hypervisor vendor identity
	acpiHeader(f, "FACP", fadtRevision)

	// XSDT and RSDT.
	x := b[xsdtOff : xsdtOff+acpiHeaderSize+8*k]
	r := b[rsdtOff : rsdtOff+acpiHeaderSize+4*k]
	for i, off := range offs {
		le.PutUint64(x[acpiHeaderSize+8*i:], base+uint64(off))
		le.PutUint32(r[acpiHeaderSize+4*i:], uint32(base)+uint32(off))
	}
	acpiHeader(x, "XSDT", 1)
	acpiHeader(r, "RSDT", 1)

	// RSDP.
	p := b[:rsdpSize]
	copy(p, "RSD PTR ")
	copy(p[9:], acpiOEMID[:])
	p[15] = 2 // revision: ACPI 2.0+
	le.PutUint32(p[16:], uint32(base)+uint32(rsdtOff))
	le.PutUint32(p[20:], rsdpSize)
	le.PutUint64(p[24:], base+uint64(xsdtOff))
	p[8] = -sum(p[:20])
	p[32] = -sum(p)
	return b, base, nil
}

// madt is the Multiple APIC Description Table: one entry per vCPU in CPU
// order (the order Linux numbers them), Local APIC while the id fits
// xAPIC, Local x2APIC above; then the I/O APIC.
func madt(t topology.Topology) []byte {
	body := make([]byte, 8, 8+madtX2APICSize*t.CPUs()+madtIOAPICSize)
	le.PutUint32(body[0:], lapicAddr)
	le.PutUint32(body[4:], madtFlagPCATCompat)
	for cpu := range t.CPUs() {
		id := t.APICID(cpu)
		if id <= maxXAPICID {
			e := []byte{madtLAPIC, madtLAPICSize, byte(cpu), byte(id), 0, 0, 0, 0} // ACPI processor UID, APIC id
			le.PutUint32(e[4:], madtLAPICEnabled)
			body = append(body, e...)
			continue
		}
		e := make([]byte, madtX2APICSize)
		e[0], e[1] = madtX2APIC, madtX2APICSize
		le.PutUint32(e[4:], id)
		le.PutUint32(e[8:], madtLAPICEnabled)
		le.PutUint32(e[12:], uint32(cpu)) // ACPI processor UID
		body = append(body, e...)
	}
	io := make([]byte, madtIOAPICSize)
	io[0], io[1] = madtIOAPIC, madtIOAPICSize
	io[2] = 0 // I/O APIC id
	le.PutUint32(io[4:], ioapicAddr)
	le.PutUint32(io[8:], 0) // global system interrupt base
	return acpiTable("APIC", 5, append(body, io...))
}

// srat is the System Resource Affinity Table: each vCPU's node (its
// proximity domain) by APIC id, then each node's RAM ranges.
func srat(t topology.Topology, nodeRAM [][]MemRange) []byte {
	body := make([]byte, sratHeaderSize-acpiHeaderSize)
	le.PutUint32(body[0:], 1) // reserved, 1 for compatibility
	for cpu := range t.CPUs() {
		id, node := t.APICID(cpu), uint32(t.Loc(cpu).Node)
		if id <= maxXAPICID {
			e := make([]byte, sratLAPICSize)
			e[0], e[1] = sratLAPIC, sratLAPICSize
			e[2] = byte(node) // proximity domain bits 0-7
			e[3] = byte(id)
			le.PutUint32(e[4:], sratEnabled)
			e[9], e[10], e[11] = byte(node>>8), byte(node>>16), byte(node>>24) // proximity domain bits 8-31
			body = append(body, e...)
			continue
		}
		e := make([]byte, sratX2APICSize)
		e[0], e[1] = sratX2APIC, sratX2APICSize
		le.PutUint32(e[4:], node)
		le.PutUint32(e[8:], id)
		le.PutUint32(e[12:], sratEnabled)
		body = append(body, e...)
	}
	for node, rs := range nodeRAM {
		for _, r := range rs {
			e := make([]byte, sratMemorySize)
			e[0], e[1] = sratMemory, sratMemorySize
			le.PutUint32(e[2:], uint32(node))
			le.PutUint64(e[8:], r.Start)
			le.PutUint64(e[16:], r.End-r.Start)
			le.PutUint32(e[28:], sratEnabled)
			body = append(body, e...)
		}
	}
	return acpiTable("SRAT", 3, body)
}

// slit is the System Locality Information Table: the nodes' distances.
func slit(t topology.Topology) []byte {
	body := make([]byte, 8, 8+t.Nodes*t.Nodes)
	le.PutUint64(body, uint64(t.Nodes))
	for i := range t.Nodes {
		for j := range t.Nodes {
			body = append(body, byte(t.Distance(i, j)))
		}
	}
	return acpiTable("SLIT", 1, body)
}

// acpiTable returns a table: the header, with its checksum, and body.
func acpiTable(sig string, rev byte, body []byte) []byte {
	t := make([]byte, acpiHeaderSize+len(body))
	copy(t[acpiHeaderSize:], body)
	acpiHeader(t, sig, rev)
	return t
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

// CheckTopology says whether the own VMM can give a guest the shape t:
// every valid topology (up to MaxCPUs vCPUs; APIC ids above 254 come up
// in x2APIC mode). Whether this host's KVM takes that many vCPUs and
// APIC ids Start checks.
func CheckTopology(t topology.Topology) error {
	return t.Validate()
}
