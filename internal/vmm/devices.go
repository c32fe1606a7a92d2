package vmm

import (
	"sync"
	"sync/atomic"
	"time"
)

// Ports the VMM answers. Everything else reads as all ones (nothing
// there) and ignores writes.
const (
	portRTCIndex = 0x70
	portRTCData  = 0x71
	portKBDData  = 0x60
	portKBDCmd   = 0x64
	portPCIAddr  = 0xcf8
	portPCIData  = 0xcfc
	portPOST     = 0x80
	kbdReset     = 0xfe // i8042 command: pulse the CPU reset line
	resetCPU     = 0x04 // reset control register (0xCF9) bit: reset
	slpEnable    = 0x20 // sleep control register: SLP_EN
)

// bus dispatches port I/O to the devices. Its methods are called from
// the vCPU threads; each device has its own lock.
type bus struct {
	com1, com2 *serial
	rtc        rtc
	// end is called when the guest resets or powers off the machine.
	end func(ExitReason)
	// unknown counts accesses to ports nothing answers.
	unknown atomic.Uint64
}

// in fills data (1, 2 or 4 bytes) with what port answers.
func (b *bus) in(port uint16, data []byte) {
	switch {
	case port >= PortCOM1 && port < PortCOM1+8:
		data[0] = b.com1.read(port - PortCOM1)
		fillOnes(data[1:])
	case port >= PortCOM2 && port < PortCOM2+8:
		data[0] = b.com2.read(port - PortCOM2)
		fillOnes(data[1:])
	case port == portRTCIndex || port == portRTCData:
		data[0] = b.rtc.read(port)
		fillOnes(data[1:])
	case port == portKBDCmd || port == portKBDData:
		// Status: output buffer empty, input buffer empty; data: 0.
		clear(data)
	case port == PortSleepStatus:
		clear(data)
	default:
		// 0xCF8-0xCFF included: no PCI host bridge, no devices.
		if port != portPOST {
			b.unknown.Add(1)
		}
		fillOnes(data)
	}
}

// out delivers data (1, 2 or 4 bytes) written to port.
func (b *bus) out(port uint16, data []byte) {
	v := data[0]
	switch {
	case port >= PortCOM1 && port < PortCOM1+8:
		b.com1.write(port-PortCOM1, v)
	case port >= PortCOM2 && port < PortCOM2+8:
		b.com2.write(port-PortCOM2, v)
	case port == portRTCIndex || port == portRTCData:
		b.rtc.write(port, v)
	case port == portKBDCmd:
		if v == kbdReset {
			b.end(ExitReset)
		}
	case port == PortResetControl && len(data) == 1:
		if v&resetCPU != 0 {
			b.end(ExitReset)
		}
	case port == PortSleepControl:
		if v&slpEnable != 0 {
			b.end(ExitPoweroff)
		}
	case port == portPOST, port == portKBDData:
	default:
		b.unknown.Add(1)
	}
}

func fillOnes(b []byte) {
	for i := range b {
		b[i] = 0xff
	}
}

// rtc is a read-only MC146818 CMOS clock showing the host's UTC time in
// BCD, 24-hour mode, never in an update cycle; other CMOS bytes read 0.
// The FADT says there is no CMOS RTC, so Linux registers no rtc device,
// but early code may still read the time here.
type rtc struct {
	mu    sync.Mutex
	index byte
	now   func() time.Time
}

func (r *rtc) write(port uint16, v byte) {
	if port == portRTCIndex {
		r.mu.Lock()
		r.index = v & 0x7f // bit 7 is the NMI mask
		r.mu.Unlock()
	}
}

func (r *rtc) read(port uint16) byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if port == portRTCIndex {
		return r.index
	}
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	t := now().UTC()
	switch r.index {
	case 0x00:
		return bcd(t.Second())
	case 0x02:
		return bcd(t.Minute())
	case 0x04:
		return bcd(t.Hour())
	case 0x06:
		return bcd(int(t.Weekday()) + 1)
	case 0x07:
		return bcd(t.Day())
	case 0x08:
		return bcd(int(t.Month()))
	case 0x09:
		return bcd(t.Year() % 100)
	case rtcCentury:
		return bcd(t.Year() / 100)
	case 0x0a:
		return 0x26 // 32.768 kHz time base, 1024 Hz rate, UIP clear
	case 0x0b:
		return 0x02 // 24-hour, BCD
	case 0x0d:
		return 0x80 // valid RAM and time
	}
	return 0
}

func bcd(v int) byte { return byte(v/10<<4 | v%10) }
