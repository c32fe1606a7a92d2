package vmm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktstr-go/ktstr/internal/topology"
)

// acpiMem is guest memory from the BIOS area up, for reading the tables
// back the way the kernel finds them.
type acpiMem []byte

func (m acpiMem) at(addr uint64, n int) ([]byte, error) {
	if addr < biosAddr || addr-biosAddr+uint64(n) > uint64(len(m)) {
		return nil, fmt.Errorf("address %#x+%d outside the tables", addr, n)
	}
	return m[addr-biosAddr : addr-biosAddr+uint64(n)], nil
}

// table reads and checks one table: signature, length within memory,
// checksum.
func (m acpiMem) table(addr uint64, sig string) ([]byte, error) {
	h, err := m.at(addr, acpiHeaderSize)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != sig {
		return nil, fmt.Errorf("table at %#x is %q, want %q", addr, h[:4], sig)
	}
	t, err := m.at(addr, int(le.Uint32(h[4:])))
	if err != nil {
		return nil, err
	}
	if s := sum(t); s != 0 {
		return nil, fmt.Errorf("%s checksum: bytes sum to %#x", sig, s)
	}
	return t, nil
}

// parsedACPI is what the kernel learns from the tables.
type parsedACPI struct {
	Tables    []string // XSDT entries' signatures
	RSDTMatch bool     // the RSDT lists the same tables
	FADTFlags uint32
	BootArch  uint16
	Sleep     [2]uint64 // sleep control and status ports
	Reset     uint64
	DSDT      []byte // AML
	CPUs      []madtCPU
	IOAPICs   []uint32
	MADTFlags uint32
	// SRAT and SLIT.
	Affinity  []sratCPU
	Memory    []sratRange
	Distances [][]int
	// Addr is each table's address, by signature.
	Addr map[string]uint64
}

// madtCPU is an enabled Local APIC (X2 false) or Local x2APIC entry.
type madtCPU struct {
	UID, APIC uint32
	X2        bool
}

// sratCPU is an enabled Local APIC (X2 false) or x2APIC affinity entry.
type sratCPU struct {
	APIC, Node uint32
	X2         bool
}

// sratRange is an enabled memory affinity entry.
type sratRange struct {
	Node       uint32
	Start, End uint64
}

// parseACPI finds the RSDP by scanning the BIOS area on 16-byte
// boundaries, as Linux does without acpi_rsdp_addr, and follows it.
func parseACPI(m acpiMem) (*parsedACPI, error) {
	var rsdp []byte
	for o := 0; o+rsdpSize <= len(m); o += 16 {
		if string(m[o:o+8]) == "RSD PTR " {
			rsdp = m[o : o+rsdpSize]
			break
		}
	}
	if rsdp == nil {
		return nil, fmt.Errorf("no RSDP")
	}
	if sum(rsdp[:20]) != 0 || sum(rsdp) != 0 || rsdp[15] != 2 {
		return nil, fmt.Errorf("RSDP checksums %#x, %#x, revision %d", sum(rsdp[:20]), sum(rsdp), rsdp[15])
	}
	p := &parsedACPI{Addr: map[string]uint64{"XSDT": le.Uint64(rsdp[24:])}}
	xsdt, err := m.table(le.Uint64(rsdp[24:]), "XSDT")
	if err != nil {
		return nil, err
	}
	rsdt, err := m.table(uint64(le.Uint32(rsdp[16:])), "RSDT")
	if err != nil {
		return nil, err
	}
	n := (len(xsdt) - acpiHeaderSize) / 8
	p.RSDTMatch = (len(rsdt)-acpiHeaderSize)/4 == n
	for i := range n {
		addr := le.Uint64(xsdt[acpiHeaderSize+8*i:])
		if p.RSDTMatch && uint64(le.Uint32(rsdt[acpiHeaderSize+4*i:])) != addr {
			p.RSDTMatch = false
		}
		h, err := m.at(addr, 4)
		if err != nil {
			return nil, err
		}
		sig := string(h)
		p.Tables = append(p.Tables, sig)
		p.Addr[sig] = addr
		t, err := m.table(addr, sig)
		if err != nil {
			return nil, err
		}
		switch sig {
		case "FACP":
			if len(t) != fadtSize {
				return nil, fmt.Errorf("FADT of %d bytes", len(t))
			}
			p.FADTFlags, p.BootArch = le.Uint32(t[112:]), le.Uint16(t[109:])
			p.Reset = le.Uint64(t[120:])
			p.Sleep = [2]uint64{le.Uint64(t[248:]), le.Uint64(t[260:])}
			x := le.Uint64(t[140:])
			if uint64(le.Uint32(t[40:])) != x {
				return nil, fmt.Errorf("DSDT %#x != X_DSDT %#x", le.Uint32(t[40:]), x)
			}
			d, err := m.table(x, "DSDT")
			if err != nil {
				return nil, err
			}
			p.DSDT = d[acpiHeaderSize:]
			p.Addr["DSDT"] = x
		case "APIC":
			p.MADTFlags = le.Uint32(t[40:])
			if le.Uint32(t[36:]) != lapicAddr {
				return nil, fmt.Errorf("local APIC address %#x", le.Uint32(t[36:]))
			}
			for o := 44; o < len(t); {
				if o+2 > len(t) || t[o+1] < 2 || o+int(t[o+1]) > len(t) {
					return nil, fmt.Errorf("MADT entry at %d overruns the table", o)
				}
				switch e := t[o : o+int(t[o+1])]; {
				case e[0] == madtLAPIC && len(e) == madtLAPICSize:
					if le.Uint32(e[4:])&madtLAPICEnabled != 0 {
						p.CPUs = append(p.CPUs, madtCPU{UID: uint32(e[2]), APIC: uint32(e[3])})
					}
				case e[0] == madtX2APIC && len(e) == madtX2APICSize:
					if le.Uint32(e[8:])&madtLAPICEnabled != 0 {
						p.CPUs = append(p.CPUs, madtCPU{UID: le.Uint32(e[12:]), APIC: le.Uint32(e[4:]), X2: true})
					}
				case e[0] == madtIOAPIC && len(e) == madtIOAPICSize:
					p.IOAPICs = append(p.IOAPICs, le.Uint32(e[4:]))
				default:
					return nil, fmt.Errorf("MADT entry type %d of %d bytes", e[0], len(e))
				}
				o += int(t[o+1])
			}
		case "SRAT":
			if len(t) < sratHeaderSize {
				return nil, fmt.Errorf("SRAT of %d bytes", len(t))
			}
			for o := sratHeaderSize; o < len(t); {
				if o+2 > len(t) || t[o+1] < 2 || o+int(t[o+1]) > len(t) {
					return nil, fmt.Errorf("SRAT entry at %d overruns the table", o)
				}
				switch e := t[o : o+int(t[o+1])]; {
				case e[0] == sratLAPIC && len(e) == sratLAPICSize:
					if le.Uint32(e[4:])&sratEnabled != 0 {
						node := uint32(e[2]) | uint32(e[9])<<8 | uint32(e[10])<<16 | uint32(e[11])<<24
						p.Affinity = append(p.Affinity, sratCPU{APIC: uint32(e[3]), Node: node})
					}
				case e[0] == sratX2APIC && len(e) == sratX2APICSize:
					if le.Uint32(e[12:])&sratEnabled != 0 {
						p.Affinity = append(p.Affinity, sratCPU{APIC: le.Uint32(e[8:]), Node: le.Uint32(e[4:]), X2: true})
					}
				case e[0] == sratMemory && len(e) == sratMemorySize:
					if le.Uint32(e[28:])&sratEnabled != 0 {
						start := le.Uint64(e[8:])
						p.Memory = append(p.Memory, sratRange{Node: le.Uint32(e[2:]), Start: start, End: start + le.Uint64(e[16:])})
					}
				default:
					return nil, fmt.Errorf("SRAT entry type %d of %d bytes", e[0], len(e))
				}
				o += int(t[o+1])
			}
		case "SLIT":
			if len(t) < slitHeaderSize {
				return nil, fmt.Errorf("SLIT of %d bytes", len(t))
			}
			n := le.Uint64(t[acpiHeaderSize:])
			if n > 255 || uint64(len(t)) != slitHeaderSize+n*n {
				return nil, fmt.Errorf("SLIT of %d bytes for %d localities", len(t), n)
			}
			for i := range n {
				row := make([]int, n)
				for j := range n {
					row[j] = int(t[slitHeaderSize+i*n+j])
				}
				p.Distances = append(p.Distances, row)
			}
		}
	}
	return p, nil
}

// testShapes are the machine shapes the topology tests run: every preset
// with its memory, and odd ones (three threads per core, cores and LLCs
// that are not powers of two, APIC ids above 255 with NUMA, node memory
// crossing the 32-bit hole, one CPU).
func testShapes() []topology.Named {
	shapes := topology.Presets()
	for _, s := range []struct {
		n, l, c, t, mem int
	}{
		{1, 1, 1, 1, 256}, {1, 3, 5, 3, 512}, {2, 6, 7, 3, 1024}, {3, 9, 9, 3, 4500}, {3, 3, 3, 1, 4500},
		{1, 254, 1, 1, 2048}, {2, 2, 1, 2, 256},
	} {
		tp := topology.Topology{Nodes: s.n, LLCs: s.l, Cores: s.c, Threads: s.t}
		shapes = append(shapes, topology.Named{Name: tp.String(), Topology: tp, MemoryMB: s.mem})
	}
	return shapes
}

// shapeMemory plans the memory of shape s, split over its nodes.
func shapeMemory(t *testing.T, s topology.Named) MemoryMap {
	t.Helper()
	m, err := PlanMemory(uint64(s.MemoryMB)*mib, 16*mib)
	if err != nil {
		t.Fatal(err)
	}
	if s.Topology.Nodes > 1 {
		mem, err := s.Topology.NodeMemory(s.MemoryMB)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SplitNodes(mem); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestACPITables builds the tables for every test shape, reads them back
// the way Linux finds them and compares what they say with the
// topology: the MADT lists every CPU in CPU order with its APIC id (an
// x2APIC entry above 254), the SRAT each CPU's node and each node's RAM,
// the SLIT the distances.
func TestACPITables(t *testing.T) {
	for _, s := range testShapes() {
		t.Run(s.Name, func(t *testing.T) {
			tp := s.Topology
			m := shapeMemory(t, s)
			b, rsdp, err := acpiTables(acpiAddr, tp, m.NodeRAM())
			if err != nil {
				t.Fatal(err)
			}
			if rsdp != acpiAddr || uint64(len(b)) > biosEnd-biosAddr {
				t.Fatalf("RSDP at %#x, %d bytes of tables; want %#x, within the BIOS area", rsdp, len(b), acpiAddr)
			}
			p, err := parseACPI(acpiMem(b))
			if err != nil {
				t.Fatal(err)
			}
			want := &parsedACPI{
				Tables: []string{"FACP", "APIC"}, RSDTMatch: true,
				FADTFlags: fadtFlagHWReduced | fadtFlagPwrButton | fadtFlagSlpButton | fadtFlagResetReg,
				BootArch:  iapcVGANotPresent | iapcMSINotSupported | iapcNoCMOSRTC,
				Sleep:     [2]uint64{PortSleepControl, PortSleepStatus}, Reset: PortResetControl,
				DSDT: p.DSDT, IOAPICs: []uint32{ioapicAddr}, MADTFlags: madtFlagPCATCompat, Addr: p.Addr,
			}
			for cpu := range tp.CPUs() {
				id := tp.APICID(cpu)
				want.CPUs = append(want.CPUs, madtCPU{UID: uint32(cpu), APIC: id, X2: id > 254})
			}
			if tp.Nodes > 1 {
				want.Tables = append(want.Tables, "SRAT", "SLIT")
				for cpu := range tp.CPUs() {
					id := tp.APICID(cpu)
					want.Affinity = append(want.Affinity, sratCPU{APIC: id, Node: uint32(tp.Loc(cpu).Node), X2: id > 254})
				}
				for node, rs := range m.NodeRAM() {
					for _, r := range rs {
						want.Memory = append(want.Memory, sratRange{Node: uint32(node), Start: r.Start, End: r.End})
					}
				}
				for i := range tp.Nodes {
					row := make([]int, tp.Nodes)
					for j := range row {
						row[j] = tp.Distance(i, j)
					}
					want.Distances = append(want.Distances, row)
				}
			}
			if d := cmp.Diff(want, p); d != "" {
				t.Errorf("tables read back (-want +got):\n%s", d)
			}
			for _, s := range []string{"_S5_", "COM1", "COM2"} {
				if !bytes.Contains(p.DSDT, []byte(s)) {
					t.Errorf("DSDT lacks %s", s)
				}
			}
			if tp.Nodes > 1 {
				checkNodeMemory(t, p.Memory, m, s)
			}
		})
	}
	if _, _, err := acpiTables(acpiAddr, cores(MaxCPUs+1), [][]MemRange{{{0, 256 * mib}}}); err == nil {
		t.Errorf("acpiTables with %d CPUs succeeded", MaxCPUs+1)
	}
	if _, _, err := acpiTables(acpiAddr, topology.Topology{Nodes: 2, LLCs: 2, Cores: 1, Threads: 1}, [][]MemRange{{{0, 256 * mib}}}); err == nil {
		t.Errorf("acpiTables with RAM for 1 of 2 nodes succeeded")
	}
}

// checkNodeMemory checks the SRAT's memory ranges against the shape's
// node memory: each node's ranges add up to its share, cover RAM only,
// and follow each other in RAM order.
func checkNodeMemory(t *testing.T, got []sratRange, m MemoryMap, s topology.Named) {
	t.Helper()
	mem, _ := s.Topology.NodeMemory(s.MemoryMB)
	sizes := make([]uint64, len(mem))
	var prev uint64
	for _, r := range got {
		sizes[r.Node] += r.End - r.Start
		inRAM := r.End <= m.LowRAM || r.Start >= highRAMStart && r.End <= highRAMStart+m.HighRAM
		if !inRAM || r.Start < prev {
			t.Errorf("node %d memory %#x-%#x: outside RAM or out of order", r.Node, r.Start, r.End)
		}
		prev = r.End
	}
	for i, mb := range mem {
		if sizes[i] != uint64(mb)*mib {
			t.Errorf("node %d has %d MiB in the SRAT, want %d", i, sizes[i]/mib, mb)
		}
	}
}

// TestACPIChecksumsDetectDamage flips a byte in each table and checks
// that the reader notices, so the checksum test above can fail.
func TestACPIChecksumsDetectDamage(t *testing.T) {
	s, _ := topology.Preset("numa2-4llc")
	m := shapeMemory(t, s)
	b, _, err := acpiTables(acpiAddr, s.Topology, m.NodeRAM())
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseACPI(acpiMem(b))
	if err != nil {
		t.Fatal(err)
	}
	offs := []int{10} // the RSDP
	for _, sig := range []string{"XSDT", "FACP", "DSDT", "APIC", "SRAT", "SLIT"} {
		a, ok := p.Addr[sig]
		if !ok {
			t.Fatalf("no %s", sig)
		}
		offs = append(offs, int(a-acpiAddr)+acpiHeaderSize+1)
	}
	for _, off := range offs {
		c := bytes.Clone(b)
		c[off] ^= 0x01
		if _, err := parseACPI(acpiMem(c)); err == nil {
			t.Errorf("a flipped bit at %#x went unnoticed", off)
		}
	}
}

// disassemble writes each table of b (tables placed at acpiAddr) to dir
// and decompiles it with iasl; it returns the text per signature.
func disassemble(t *testing.T, iasl string, b []byte) map[string]string {
	t.Helper()
	p, err := parseACPI(acpiMem(b))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := map[string]string{}
	for sig, addr := range p.Addr {
		if sig == "XSDT" || sig == "RSDT" {
			continue
		}
		off := int(addr - acpiAddr)
		n := int(le.Uint32(b[off+4:]))
		dat := filepath.Join(dir, strings.ToLower(sig)+".dat")
		if err := os.WriteFile(dat, b[off:off+n], 0o600); err != nil {
			t.Fatal(err)
		}
		if msg, err := exec.Command(iasl, "-d", dat).CombinedOutput(); err != nil {
			t.Fatalf("iasl -d %s: %v\n%s", sig, err, msg)
		}
		dsl, err := os.ReadFile(strings.TrimSuffix(dat, ".dat") + ".dsl")
		if err != nil {
			t.Fatal(err)
		}
		out[sig] = string(dsl)
	}
	return out
}

// TestACPIDisassembles decompiles the tables with ACPICA's iasl, when it
// is installed (Debian: acpica-tools), and checks what it says: the
// DSDT's devices, the FADT's flags, the MADT's local APIC and x2APIC
// entries (max-cpu's ids reach 433), the SRAT's proximity domains and
// the SLIT's matrix.
func TestACPIDisassembles(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("iasl not installed (apt-get install acpica-tools)")
	}
	tables := func(tp topology.Topology, memMB int) map[string]string {
		s := topology.Named{Name: tp.String(), Topology: tp, MemoryMB: memMB}
		b, _, err := acpiTables(acpiAddr, tp, shapeMemory(t, s).NodeRAM())
		if err != nil {
			t.Fatal(err)
		}
		return disassemble(t, iasl, b)
	}

	small := tables(cores(2), 256)
	s := strings.Join(strings.Fields(small["DSDT"]), " ")
	for _, want := range []string{
		`Name (\_S5, Package (0x04) // _S5_: S5 System State { 0x05, 0x05, Zero, Zero })`,
		`Device (COM1) { Name (_HID, EisaId ("PNP0501")`,
		`IO (Decode16, 0x03F8, // Range Minimum 0x03F8, // Range Maximum 0x01, // Alignment 0x08, // Length ) IRQNoFlags () {4}`,
		`IO (Decode16, 0x02F8, // Range Minimum 0x02F8, // Range Maximum 0x01, // Alignment 0x08, // Length ) IRQNoFlags () {3}`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("iasl's DSDT lacks %q:\n%s", want, small["DSDT"])
		}
	}
	if n := strings.Count(small["APIC"], "[Processor Local APIC]"); n != 2 {
		t.Errorf("iasl counts %d local APICs in the MADT, want 2", n)
	}
	if !hasLine(small["FACP"], "Hardware Reduced (V5) : 1") {
		t.Errorf("iasl does not see HW_REDUCED_ACPI in the FADT")
	}
	if _, ok := small["SRAT"]; ok {
		t.Errorf("one node, yet an SRAT")
	}

	// max-cpu: LLCs 0-7 (APIC ids up to 241) are local APICs, LLCs 8-13
	// (ids 256 to 433) local x2APICs.
	p, _ := topology.Preset("max-cpu")
	big := tables(p.Topology, p.MemoryMB)
	if n, x := strings.Count(big["APIC"], "[Processor Local APIC]"), strings.Count(big["APIC"], "[Processor Local x2APIC]"); n != 144 || x != 108 {
		t.Errorf("iasl counts %d local APICs and %d local x2APICs in max-cpu's MADT, want 144 and 108", n, x)
	}
	if !hasLine(big["APIC"], "Processor x2Apic ID : 000001B1") {
		t.Errorf("iasl does not see x2APIC id 433 (0x1B1) in max-cpu's MADT")
	}

	// Three nodes of 1500 MiB: node 1's RAM ends at 3000 MiB, node 2's
	// crosses the hole (72 MiB below it, 1428 MiB above 4 GiB); custom distances.
	d, err := topology.ParseDistances("10,15,30;15,10,25;30,25,10", 3)
	if err != nil {
		t.Fatal(err)
	}
	numa := tables(topology.Topology{Nodes: 3, LLCs: 3, Cores: 2, Threads: 2, Distances: d}, 4500)
	srat := numa["SRAT"]
	for node, cpus := range [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}} {
		got := strings.Count(srat, fmt.Sprintf("Proximity Domain Low(8) : %02X", node))
		if got != len(cpus) {
			t.Errorf("iasl sees %d local APIC affinity entries for node %d, want %d", got, node, len(cpus))
		}
	}
	for _, want := range []string{
		"Proximity Domain : 00000001", "Base Address : 000000005DC00000", "Address Length : 000000005DC00000", // node 1: 1500 MiB from 1500 MiB
		"Proximity Domain : 00000002", "Base Address : 00000000BB800000", "Address Length : 0000000004800000", // node 2: 72 MiB up to 3 GiB
		"Base Address : 0000000100000000", "Address Length : 0000000059400000", // and 1428 MiB above 4 GiB
	} {
		if !hasLine(srat, want) {
			t.Errorf("iasl's SRAT lacks %q:\n%s", want, srat)
		}
	}
	for _, want := range []string{"Localities : 0000000000000003", "Locality 0 : 0A 0F 1E", "Locality 1 : 0F 0A 19", "Locality 2 : 1E 19 0A"} {
		if !hasLine(numa["SLIT"], want) {
			t.Errorf("iasl's SLIT lacks %q:\n%s", want, numa["SLIT"])
		}
	}
}

// hasLine reports whether iasl's output s has the line want, white space
// collapsed and the "[offset length]" prefix left out.
func hasLine(s, want string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "[") {
			if _, rest, ok := strings.Cut(l, "]"); ok {
				l = rest
			}
		}
		if strings.Join(strings.Fields(l), " ") == want {
			return true
		}
	}
	return false
}

func TestAMLEncodings(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want []byte
	}{
		{"EisaId PNP0501", amlEISAID("PNP0501"), []byte{0x0c, 0x41, 0xd0, 0x05, 0x01}},
		{"EisaId PNP0A03", amlEISAID("PNP0A03"), []byte{0x0c, 0x41, 0xd0, 0x0a, 0x03}},
		{"PkgLength 0", amlPkgLength(0), []byte{0x01}},
		{"PkgLength 62", amlPkgLength(62), []byte{0x3f}},
		{"PkgLength 63", amlPkgLength(63), []byte{0x41, 0x04}}, // 65 = 0x41
		{"PkgLength 4093", amlPkgLength(4093), []byte{0x4f, 0xff}},
		{"PkgLength 4094", amlPkgLength(4094), []byte{0x81, 0x00, 0x01}}, // 4097
		{"IRQ 4", resIRQ(4), []byte{0x22, 0x10, 0x00}},
		{"IRQ 9", resIRQ(9), []byte{0x22, 0x00, 0x02}},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = % x, want % x", c.name, c.got, c.want)
		}
	}
}
