package vmm

import (
	"io"
	"sync"
)

// 8250/16550A UART registers (offset from the base port).
const (
	uartRBR = 0 // read: receive buffer; write: THR; DLAB: divisor low
	uartIER = 1 // interrupt enable; DLAB: divisor high
	uartIIR = 2 // read: interrupt identification; write: FCR
	uartLCR = 3
	uartMCR = 4
	uartLSR = 5
	uartMSR = 6
	uartSCR = 7

	lcrDLAB    = 0x80
	ierTHRI    = 0x02 // transmitter holding register empty interrupt
	iirNoInt   = 0x01
	iirTHRI    = 0x02
	iirFIFO    = 0xc0 // FIFOs enabled (16550A)
	fcrEnable  = 0x01
	lsrTHRE    = 0x20
	lsrTEMT    = 0x40
	mcrLoop    = 0x10
	msrIdle    = 0xb0 // DCD, DSR, CTS
	PortCOM1   = 0x3f8
	PortCOM2   = 0x2f8
	IRQCOM1    = 4
	IRQCOM2    = 3
	consoleBuf = 4096
)

// serial is a 16550A UART that transmits at once and never receives.
// Bytes the guest writes go to a buffered writer, flushed at each newline
// and when the VM ends. The interrupt line is modelled as a level (THR
// empty and its interrupt enabled) and set through irq when it changes;
// the guest's ISA edge-triggered pin sees each rise.
type serial struct {
	mu      sync.Mutex
	out     *lineWriter
	irq     func(level bool)
	ier     byte
	lcr     byte
	mcr     byte
	scr     byte
	dll     byte
	dlm     byte
	fifo    bool
	thrIntr bool // a THR-empty interrupt is pending
	level   bool // current level of the interrupt line
}

func newSerial(w io.Writer, irq func(bool)) *serial {
	if irq == nil {
		irq = func(bool) {}
	}
	return &serial{out: newLineWriter(w), irq: irq, dll: 12}
}

// read returns the register at offset off.
func (s *serial) read(off uint16) byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v byte
	switch off {
	case uartRBR:
		if s.lcr&lcrDLAB != 0 {
			v = s.dll
		}
	case uartIER:
		if s.lcr&lcrDLAB != 0 {
			v = s.dlm
		} else {
			v = s.ier
		}
	case uartIIR:
		v = iirNoInt
		if s.ier&ierTHRI != 0 && s.thrIntr {
			v = iirTHRI
			s.thrIntr = false // reading IIR clears a THR-empty interrupt
		}
		if s.fifo {
			v |= iirFIFO
		}
	case uartLCR:
		v = s.lcr
	case uartMCR:
		v = s.mcr
	case uartLSR:
		v = lsrTHRE | lsrTEMT
	case uartMSR:
		if s.mcr&mcrLoop != 0 {
			// Loopback: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD.
			m := s.mcr
			v = (m&0x01)<<5 | (m&0x02)<<3 | (m&0x04)<<4 | (m&0x08)<<4
		} else {
			v = msrIdle
		}
	case uartSCR:
		v = s.scr
	}
	s.update()
	return v
}

// write sets the register at offset off.
func (s *serial) write(off uint16, v byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch off {
	case uartRBR:
		if s.lcr&lcrDLAB != 0 {
			s.dll = v
			break
		}
		if s.mcr&mcrLoop == 0 {
			s.out.WriteByte(v)
		}
		s.thrIntr = true // transmitted at once: THR is empty again
	case uartIER:
		if s.lcr&lcrDLAB != 0 {
			s.dlm = v
			break
		}
		if v&ierTHRI != 0 && s.ier&ierTHRI == 0 {
			s.thrIntr = true // enabling the interrupt with THR empty raises it
		}
		s.ier = v & 0x0f
	case uartIIR: // FCR
		s.fifo = v&fcrEnable != 0
	case uartLCR:
		s.lcr = v
	case uartMCR:
		s.mcr = v & 0x1f
	case uartSCR:
		s.scr = v
	}
	s.update()
}

// update sets the interrupt line to its current level.
func (s *serial) update() {
	l := s.ier&ierTHRI != 0 && s.thrIntr
	if l != s.level {
		s.level = l
		s.irq(l)
	}
}

func (s *serial) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Flush()
}

// lineWriter buffers console bytes and writes them in lines. It remembers
// the first write error and then drops output: a console that cannot be
// written must not stop the guest.
type lineWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func newLineWriter(w io.Writer) *lineWriter {
	if w == nil {
		w = io.Discard
	}
	return &lineWriter{w: w, buf: make([]byte, 0, consoleBuf)}
}

func (l *lineWriter) WriteByte(c byte) error {
	l.buf = append(l.buf, c)
	if c == '\n' || len(l.buf) == cap(l.buf) {
		l.Flush()
	}
	return nil
}

func (l *lineWriter) Flush() {
	if len(l.buf) > 0 && l.err == nil {
		_, l.err = l.w.Write(l.buf)
	}
	l.buf = l.buf[:0]
}
