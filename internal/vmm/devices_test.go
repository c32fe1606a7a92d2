package vmm

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// uart is a serial port under test with its interrupt line recorded.
type uart struct {
	*serial
	out    bytes.Buffer
	levels []bool
}

func newUART() *uart {
	u := &uart{}
	u.serial = newSerial(&u.out, func(l bool) { u.levels = append(u.levels, l) })
	return u
}

func TestSerialRegisters(t *testing.T) {
	u := newUART()
	for _, c := range []struct {
		name string
		do   func() byte
		want byte
	}{
		{"LSR idle", func() byte { return u.read(uartLSR) }, lsrTHRE | lsrTEMT},
		{"IIR no interrupt", func() byte { return u.read(uartIIR) }, iirNoInt},
		{"IER reads back", func() byte { u.write(uartIER, 0x0d); return u.read(uartIER) }, 0x0d},
		{"IER keeps 4 bits", func() byte { u.write(uartIER, 0xf0); return u.read(uartIER) }, 0x00},
		{"scratch", func() byte { u.write(uartSCR, 0x5a); return u.read(uartSCR) }, 0x5a},
		{"LCR", func() byte { u.write(uartLCR, 0x03); return u.read(uartLCR) }, 0x03},
		{"DLAB divisor low", func() byte { u.write(uartLCR, 0x83); u.write(uartRBR, 0x01); return u.read(uartRBR) }, 0x01},
		{"DLAB divisor high", func() byte { u.write(uartIER, 0x02); return u.read(uartIER) }, 0x02},
		{"IER untouched by DLAB writes", func() byte { u.write(uartLCR, 0x03); return u.read(uartIER) }, 0x00},
		{"RBR empty", func() byte { return u.read(uartRBR) }, 0},
		{"FIFO enabled shows in IIR", func() byte { u.write(uartIIR, 0x07); return u.read(uartIIR) }, iirFIFO | iirNoInt},
		{"MSR idle", func() byte { return u.read(uartMSR) }, msrIdle},
		{"MSR loopback", func() byte { u.write(uartMCR, mcrLoop|0x0b); return u.read(uartMSR) }, 0x20 | 0x10 | 0x80},
		{"MCR reads back", func() byte { return u.read(uartMCR) }, mcrLoop | 0x0b},
	} {
		if got := c.do(); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
	// Loopback output does not reach the console.
	u.write(uartRBR, 'x')
	u.write(uartMCR, 0)
	u.write(uartRBR, 'y')
	u.write(uartRBR, '\n')
	if got := u.out.String(); got != "y\n" {
		t.Errorf("output = %q, want %q", got, "y\n")
	}
	if len(u.levels) != 0 {
		t.Errorf("interrupt line moved with THRI disabled: %v", u.levels)
	}
}

// TestSerialTHREInterrupt follows what Linux's 8250 driver does at start
// up (its test for UARTs that do not reassert THRE) and when it sends.
func TestSerialTHREInterrupt(t *testing.T) {
	u := newUART()
	u.write(uartIIR, fcrEnable)
	steps := []struct {
		name      string
		do        func() byte
		want      byte
		wantLevel bool
	}{
		{"enable THRI", func() byte { u.write(uartIER, ierTHRI); return 0 }, 0, true},
		{"IIR shows THRE", func() byte { return u.read(uartIIR) }, iirFIFO | iirTHRI, false},
		{"IIR again: cleared", func() byte { return u.read(uartIIR) }, iirFIFO | iirNoInt, false},
		{"disable", func() byte { u.write(uartIER, 0); return 0 }, 0, false},
		{"re-enable reasserts", func() byte { u.write(uartIER, ierTHRI); return u.read(uartIIR) }, iirFIFO | iirTHRI, false},
		{"send a byte", func() byte { u.write(uartRBR, 'a'); return 0 }, 0, true},
		{"send another: line stays up", func() byte { u.write(uartRBR, '\n'); return 0 }, 0, true},
		{"ISR reads IIR", func() byte { return u.read(uartIIR) }, iirFIFO | iirTHRI, false},
		{"stop_tx", func() byte { u.write(uartIER, 0); return u.read(uartIIR) }, iirFIFO | iirNoInt, false},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Errorf("%s: got %#x, want %#x", s.name, got, s.want)
		}
		if u.level != s.wantLevel {
			t.Errorf("%s: line %v, want %v", s.name, u.level, s.wantLevel)
		}
	}
	// The line toggles only on changes: up, down, up (re-enable), down,
	// up (send), down.
	if d := cmp.Diff([]bool{true, false, true, false, true, false}, u.levels); d != "" {
		t.Errorf("interrupt line changes (-want +got):\n%s", d)
	}
	if got := u.out.String(); got != "a\n" {
		t.Errorf("output = %q, want %q", got, "a\n")
	}
}

func TestLineWriter(t *testing.T) {
	var b bytes.Buffer
	l := newLineWriter(&b)
	for _, c := range []byte("ab\ncd") {
		l.WriteByte(c)
	}
	if b.String() != "ab\n" {
		t.Errorf("before Flush: %q, want %q", b.String(), "ab\n")
	}
	l.Flush()
	if b.String() != "ab\ncd" {
		t.Errorf("after Flush: %q, want %q", b.String(), "ab\ncd")
	}
	// A long line goes out when the buffer is full.
	b.Reset()
	for range consoleBuf {
		l.WriteByte('x')
	}
	if b.Len() != consoleBuf {
		t.Errorf("a full buffer wrote %d bytes, want %d", b.Len(), consoleBuf)
	}
	// A failing writer is tried once and then output is dropped.
	fw := &failWriter{}
	l = newLineWriter(fw)
	l.WriteByte('\n')
	l.WriteByte('\n')
	if fw.calls != 1 || !errors.Is(l.err, errBroken) {
		t.Errorf("failing writer called %d times, err %v; want 1, errBroken", fw.calls, l.err)
	}
}

var errBroken = errors.New("broken")

type failWriter struct{ calls int }

func (f *failWriter) Write(p []byte) (int, error) { f.calls++; return 0, errBroken }

func TestBus(t *testing.T) {
	var ended []ExitReason
	var com1, com2 bytes.Buffer
	newBus := func() *bus {
		ended = nil
		return &bus{com1: newSerial(&com1, nil), com2: newSerial(&com2, nil), end: func(r ExitReason) { ended = append(ended, r) },
			rtc: rtc{now: func() time.Time { return time.Date(2026, 11, 27, 13, 45, 9, 0, time.UTC) }}}
	}
	in := func(b *bus, port uint16, n int) []byte {
		d := make([]byte, n)
		b.in(port, d)
		return d
	}
	b := newBus()
	for _, c := range []struct {
		name string
		port uint16
		n    int
		want []byte
	}{
		{"COM1 LSR", PortCOM1 + uartLSR, 1, []byte{0x60}},
		{"COM2 IIR", PortCOM2 + uartIIR, 1, []byte{0x01}},
		{"PCI config address", portPCIAddr, 4, []byte{0xff, 0xff, 0xff, 0xff}},
		{"PCI config data", portPCIData, 4, []byte{0xff, 0xff, 0xff, 0xff}},
		{"PCI config data word", portPCIData + 2, 2, []byte{0xff, 0xff}},
		{"i8042 status", portKBDCmd, 1, []byte{0}},
		{"COM3 absent", 0x3e8 + uartIER, 1, []byte{0xff}},
		{"sleep status", PortSleepStatus, 1, []byte{0}},
	} {
		if got := in(b, c.port, c.n); !bytes.Equal(got, c.want) {
			t.Errorf("%s: in(%#x) = % x, want % x", c.name, c.port, got, c.want)
		}
	}
	if n := b.unknown.Load(); n != 4 {
		t.Errorf("unknown port accesses = %d, want 4 (three PCI, one COM3)", n)
	}
	for _, c := range []struct {
		name string
		port uint16
		v    byte
		want []ExitReason
	}{
		{"i8042 reset", portKBDCmd, kbdReset, []ExitReason{ExitReset}},
		{"i8042 other command", portKBDCmd, 0xad, nil},
		{"0xCF9 reset", PortResetControl, 0x06, []ExitReason{ExitReset}},
		{"0xCF9 without RST_CPU", PortResetControl, 0x02, nil},
		{"ACPI S5", PortSleepControl, 5<<2 | slpEnable, []ExitReason{ExitPoweroff}},
		{"ACPI SLP_TYP without SLP_EN", PortSleepControl, 5 << 2, nil},
		{"POST code", portPOST, 0x42, nil},
	} {
		b := newBus()
		b.out(c.port, []byte{c.v})
		if d := cmp.Diff(c.want, ended); d != "" {
			t.Errorf("%s: out(%#x, %#x) ended the VM (-want +got):\n%s", c.name, c.port, c.v, d)
		}
	}
	b = newBus()
	for _, c := range "hi\n" {
		b.out(PortCOM2, []byte{byte(c)})
	}
	if com2.String() != "hi\n" || com1.Len() != 0 {
		t.Errorf("COM2 %q COM1 %q, want %q and nothing", com2.String(), com1.String(), "hi\n")
	}
	// The CMOS clock in BCD.
	for _, c := range []struct {
		reg, want byte
	}{{0x00, 0x09}, {0x02, 0x45}, {0x04, 0x13}, {0x06, 0x06}, {0x07, 0x27}, {0x08, 0x11}, {0x09, 0x26}, {rtcCentury, 0x20}, {0x0a, 0x26}, {0x0b, 0x02}, {0x0d, 0x80}, {0x40, 0}} {
		b.out(portRTCIndex, []byte{c.reg | 0x80}) // with the NMI-disable bit
		if got := in(b, portRTCData, 1)[0]; got != c.want {
			t.Errorf("CMOS register %#x = %#x, want %#x", c.reg, got, c.want)
		}
	}
}
