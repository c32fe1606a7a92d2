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
	LAPICs    [][2]byte
	IOAPICs   []uint32
	MADTFlags uint32
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
	p := &parsedACPI{}
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
		case "APIC":
			p.MADTFlags = le.Uint32(t[40:])
			if le.Uint32(t[36:]) != lapicAddr {
				return nil, fmt.Errorf("local APIC address %#x", le.Uint32(t[36:]))
			}
			for o := 44; o < len(t); {
				if o+2 > len(t) || t[o+1] < 2 || o+int(t[o+1]) > len(t) {
					return nil, fmt.Errorf("MADT entry at %d overruns the table", o)
				}
				switch t[o] {
				case madtLAPIC:
					if le.Uint32(t[o+4:])&madtLAPICEnabled != 0 {
						p.LAPICs = append(p.LAPICs, [2]byte{t[o+2], t[o+3]})
					}
				case madtIOAPIC:
					p.IOAPICs = append(p.IOAPICs, le.Uint32(t[o+4:]))
				}
				o += int(t[o+1])
			}
		}
	}
	return p, nil
}

func TestACPITables(t *testing.T) {
	for _, cpus := range []int{1, 2, 8, MaxCPUs} {
		t.Run(fmt.Sprint(cpus, " cpus"), func(t *testing.T) {
			b, rsdp, err := acpiTables(acpiAddr, cpus)
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
			var lapics [][2]byte
			for i := range cpus {
				lapics = append(lapics, [2]byte{byte(i), byte(i)})
			}
			want := &parsedACPI{
				Tables: []string{"FACP", "APIC"}, RSDTMatch: true,
				FADTFlags: fadtFlagHWReduced | fadtFlagPwrButton | fadtFlagSlpButton | fadtFlagResetReg,
				BootArch:  iapcVGANotPresent | iapcMSINotSupported | iapcNoCMOSRTC,
				Sleep:     [2]uint64{PortSleepControl, PortSleepStatus}, Reset: PortResetControl,
				DSDT: p.DSDT, LAPICs: lapics, IOAPICs: []uint32{ioapicAddr}, MADTFlags: madtFlagPCATCompat,
			}
			if d := cmp.Diff(want, p); d != "" {
				t.Errorf("tables read back (-want +got):\n%s", d)
			}
			for _, s := range []string{"_S5_", "COM1", "COM2"} {
				if !bytes.Contains(p.DSDT, []byte(s)) {
					t.Errorf("DSDT lacks %s", s)
				}
			}
		})
	}
	if _, _, err := acpiTables(acpiAddr, MaxCPUs+1); err == nil {
		t.Errorf("acpiTables with %d CPUs succeeded", MaxCPUs+1)
	}
}

// TestACPIChecksumsDetectDamage flips each byte of the tables and checks
// that the reader notices, so the checksum test above can fail.
func TestACPIChecksumsDetectDamage(t *testing.T) {
	b, _, err := acpiTables(acpiAddr, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{acpiRSDPOff + 10, acpiXSDTOff + 20, acpiRSDTOff + 30, acpiFADTOff + 200, acpiDSDTOff + 40, acpiMADTOff + 50} {
		c := bytes.Clone(b)
		c[off] ^= 0x01
		if _, err := parseACPI(acpiMem(c)); err == nil {
			t.Errorf("a flipped bit at %#x went unnoticed", off)
		}
	}
}

// TestDSDTDisassembles decompiles the DSDT with ACPICA's iasl, when it is
// installed (Debian: acpica-tools), and checks what it says.
func TestDSDTDisassembles(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("iasl not installed (apt-get install acpica-tools)")
	}
	b, _, err := acpiTables(acpiAddr, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tb := range []struct {
		name string
		off  int
	}{{"dsdt", acpiDSDTOff}, {"facp", acpiFADTOff}, {"apic", acpiMADTOff}} {
		n := int(le.Uint32(b[tb.off+4:]))
		if err := os.WriteFile(filepath.Join(dir, tb.name+".dat"), b[tb.off:tb.off+n], 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(iasl, "-d", filepath.Join(dir, tb.name+".dat")).CombinedOutput()
		if err != nil {
			t.Fatalf("iasl -d %s: %v\n%s", tb.name, err, out)
		}
	}
	dsl, err := os.ReadFile(filepath.Join(dir, "dsdt.dsl"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(strings.Fields(string(dsl)), " ")
	for _, want := range []string{
		`Name (\_S5, Package (0x04) // _S5_: S5 System State { 0x05, 0x05, Zero, Zero })`,
		`Device (COM1) { Name (_HID, EisaId ("PNP0501")`,
		`IO (Decode16, 0x03F8, // Range Minimum 0x03F8, // Range Maximum 0x01, // Alignment 0x08, // Length ) IRQNoFlags () {4}`,
		`IO (Decode16, 0x02F8, // Range Minimum 0x02F8, // Range Maximum 0x01, // Alignment 0x08, // Length ) IRQNoFlags () {3}`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("iasl's DSDT lacks %q:\n%s", want, dsl)
		}
	}
	madt, _ := os.ReadFile(filepath.Join(dir, "apic.dsl"))
	if n := strings.Count(string(madt), "[Processor Local APIC]"); n != 2 {
		t.Errorf("iasl counts %d local APICs in the MADT, want 2", n)
	}
	facp, _ := os.ReadFile(filepath.Join(dir, "facp.dsl"))
	if !hasLine(string(facp), "Hardware Reduced (V5) : 1") {
		t.Errorf("iasl does not see HW_REDUCED_ACPI in the FADT")
	}
}

func hasLine(s, want string) bool {
	for _, l := range strings.Split(s, "\n") {
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
