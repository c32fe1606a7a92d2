package vmm

// A few AML (ACPI Machine Language) encodings, enough for the DSDT:
// names, byte and dword constants, packages, buffers, devices and scopes.
// See the ACPI specification, chapter 20 ("ACPI Machine Language
// Specification").

const (
	amlZero       = 0x00
	amlOne        = 0x01
	amlNameOp     = 0x08
	amlBytePrefix = 0x0A
	amlDWordPfx   = 0x0C
	amlScopeOp    = 0x10
	amlBufferOp   = 0x11
	amlPackageOp  = 0x12
	amlExtOp      = 0x5B
	amlDeviceOp   = 0x82
	amlRootChar   = '\\'
)

// amlPkgLength encodes a PkgLength for n bytes of content: the encoded
// length counts its own bytes too (1 to 4 of them).
func amlPkgLength(n int) []byte {
	if n+1 < 1<<6 {
		return []byte{byte(n + 1)}
	}
	for extra := 1; extra <= 3; extra++ {
		total := n + 1 + extra
		if total < 1<<(4+8*extra) {
			b := []byte{byte(extra<<6 | total&0x0f)}
			for i := 0; i < extra; i++ {
				b = append(b, byte(total>>(4+8*i)))
			}
			return b
		}
	}
	panic("vmm: AML package too long")
}

// amlName encodes Name(name, value); name is a 4-character NameSeg or a
// path starting with '\'.
func amlName(name string, value []byte) []byte {
	b := append([]byte{amlNameOp}, name...)
	return append(b, value...)
}

func amlByte(v byte) []byte { return []byte{amlBytePrefix, v} }

func amlDWord(v uint32) []byte {
	return []byte{amlDWordPfx, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// amlEISAID encodes EisaId("PNPxxxx") as a DWord: three 5-bit letters and
// four hex digits, stored big-endian.
func amlEISAID(id string) []byte {
	c := func(i int) uint32 { return uint32(id[i]-'@') & 0x1f }
	h := func(i int) uint32 {
		x := id[i]
		switch {
		case x >= '0' && x <= '9':
			return uint32(x - '0')
		case x >= 'A' && x <= 'F':
			return uint32(x - 'A' + 10)
		}
		return 0
	}
	v := c(0)<<26 | c(1)<<21 | c(2)<<16 | h(3)<<12 | h(4)<<8 | h(5)<<4 | h(6)
	return amlDWord(v>>24 | (v>>8)&0xff00 | (v<<8)&0xff0000 | v<<24)
}

// amlPackage encodes Package(n){elements...}.
func amlPackage(elems ...[]byte) []byte {
	body := []byte{byte(len(elems))}
	for _, e := range elems {
		body = append(body, e...)
	}
	return append(append([]byte{amlPackageOp}, amlPkgLength(len(body))...), body...)
}

// amlBuffer encodes Buffer(){data}.
func amlBuffer(data []byte) []byte {
	body := append(amlByte(byte(len(data))), data...)
	return append(append([]byte{amlBufferOp}, amlPkgLength(len(body))...), body...)
}

// amlDevice encodes Device(name){terms...}.
func amlDevice(name string, terms ...[]byte) []byte {
	body := []byte(name)
	for _, t := range terms {
		body = append(body, t...)
	}
	return append(append([]byte{amlExtOp, amlDeviceOp}, amlPkgLength(len(body))...), body...)
}

// amlScope encodes Scope(path){terms...}.
func amlScope(path string, terms ...[]byte) []byte {
	body := []byte(path)
	for _, t := range terms {
		body = append(body, t...)
	}
	return append(append([]byte{amlScopeOp}, amlPkgLength(len(body))...), body...)
}

// Resource descriptors for _CRS.
func resIO(port uint16, n byte) []byte {
	// IO (Decode16, port, port, 1, n): small item 0x08, length 7.
	return []byte{0x47, 0x01, byte(port), byte(port >> 8), byte(port), byte(port >> 8), 0x01, n}
}

func resIRQ(irq uint8) []byte {
	// IRQNoFlags () {irq}: small item 0x04, length 2 (edge, active high).
	m := uint16(1) << irq
	return []byte{0x22, byte(m), byte(m >> 8)}
}

var resEnd = []byte{0x79, 0x00} // end tag, checksum 0 (ignored)

// dsdtBody is the DSDT's AML:
//
//	Name (\_S5, Package () { 5, 5, 0, 0 })   // SLP_TYPa, SLP_TYPb for poweroff
//	Scope (\_SB) {
//	    Device (COM1) { _HID PNP0501, _UID 1, _STA 0x0F, _CRS { IO 0x3F8/8, IRQ 4 } }
//	    Device (COM2) { _HID PNP0501, _UID 2, _STA 0x0F, _CRS { IO 0x2F8/8, IRQ 3 } }
//	}
//
// With a hardware-reduced FADT Linux has no legacy PIC and maps no ISA
// interrupt by itself: the serial ports get their interrupts through
// these _CRS entries (as under QEMU's microvm machine).
func dsdtBody() []byte {
	com := func(name string, uid byte, port uint16, irq uint8) []byte {
		crs := append(append(resIO(port, 8), resIRQ(irq)...), resEnd...)
		return amlDevice(name,
			amlName("_HID", amlEISAID("PNP0501")),
			amlName("_UID", amlByte(uid)),
			amlName("_STA", amlByte(0x0f)),
			amlName("_CRS", amlBuffer(crs)),
		)
	}
	b := amlName(`\_S5_`, amlPackage(amlByte(5), amlByte(5), []byte{amlZero}, []byte{amlZero}))
	return append(b, amlScope(`\_SB_`, com("COM1", 1, PortCOM1, IRQCOM1), com("COM2", 2, PortCOM2, IRQCOM2))...)
}
