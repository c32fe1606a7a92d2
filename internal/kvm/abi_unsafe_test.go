package kvm

import (
	"testing"
	"unsafe"
)

// TestStructLayout pins the Go layouts to the C ones (x86-64).
func TestStructLayout(t *testing.T) {
	sizes := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_regs", unsafe.Sizeof(Regs{}), sizeofRegs},
		{"kvm_sregs", unsafe.Sizeof(Sregs{}), sizeofSregs},
		{"kvm_segment", unsafe.Sizeof(Segment{}), sizeofSegment},
		{"kvm_dtable", unsafe.Sizeof(DTable{}), sizeofDTable},
		{"kvm_userspace_memory_region", unsafe.Sizeof(UserspaceMemoryRegion{}), sizeofMemRegion},
		{"kvm_cpuid_entry2", unsafe.Sizeof(CPUIDEntry{}), sizeofCPUIDEntry},
		{"kvm_cpuid2", unsafe.Sizeof(cpuid2{}), sizeofCPUIDHeader + MaxCPUIDEntries*sizeofCPUIDEntry},
		{"kvm_lapic_state", unsafe.Sizeof(LAPICState{}), sizeofLAPIC},
		{"kvm_pit_config", unsafe.Sizeof(PITConfig{}), sizeofPITConfig},
		{"kvm_fpu", unsafe.Sizeof(FPU{}), sizeofFPU},
		{"kvm_msr_entry", unsafe.Sizeof(MSREntry{}), sizeofMSREntry},
		{"kvm_msrs", unsafe.Sizeof(msrs{}), sizeofMSRsHeader + maxMSRs*sizeofMSREntry},
		{"kvm_irq_level", unsafe.Sizeof(irqLevel{}), sizeofIRQLevel},
		{"kvm_xcrs", unsafe.Sizeof(xcrs{}), sizeofXCRs},
		{"kvm_xcr", unsafe.Sizeof(XCR{}), 16},
	}
	for _, s := range sizes {
		t.Run(s.name, func(t *testing.T) {
			if s.got != s.want {
				t.Errorf("sizeof(%s) = %d, want %d", s.name, s.got, s.want)
			}
		})
	}
	var sr Sregs
	var sg Segment
	var rg Regs
	var fp FPU
	var ce CPUIDEntry
	var mr UserspaceMemoryRegion
	var c2 cpuid2
	var ms msrs
	offsets := []struct {
		name      string
		got, want uintptr
	}{
		{"kvm_regs.rip", unsafe.Offsetof(rg.RIP), 128},
		{"kvm_regs.rflags", unsafe.Offsetof(rg.RFLAGS), 136},
		{"kvm_segment.type", unsafe.Offsetof(sg.Type), 14},
		{"kvm_segment.unusable", unsafe.Offsetof(sg.Unusable), 22},
		{"kvm_sregs.tr", unsafe.Offsetof(sr.TR), 144},
		{"kvm_sregs.gdt", unsafe.Offsetof(sr.GDT), 192},
		{"kvm_sregs.idt", unsafe.Offsetof(sr.IDT), 208},
		{"kvm_sregs.cr0", unsafe.Offsetof(sr.CR0), 224},
		{"kvm_sregs.cr3", unsafe.Offsetof(sr.CR3), 240},
		{"kvm_sregs.efer", unsafe.Offsetof(sr.EFER), 264},
		{"kvm_sregs.apic_base", unsafe.Offsetof(sr.APICBase), 272},
		{"kvm_sregs.interrupt_bitmap", unsafe.Offsetof(sr.InterruptBitmap), 280},
		{"kvm_fpu.fcw", unsafe.Offsetof(fp.FCW), 128},
		{"kvm_fpu.ftwx", unsafe.Offsetof(fp.FTWX), 132},
		{"kvm_fpu.last_opcode", unsafe.Offsetof(fp.LastOpcode), 134},
		{"kvm_fpu.last_ip", unsafe.Offsetof(fp.LastIP), 136},
		{"kvm_fpu.xmm", unsafe.Offsetof(fp.XMM), 152},
		{"kvm_fpu.mxcsr", unsafe.Offsetof(fp.MXCSR), 408},
		{"kvm_cpuid_entry2.flags", unsafe.Offsetof(ce.Flags), 8},
		{"kvm_cpuid_entry2.eax", unsafe.Offsetof(ce.EAX), 12},
		{"kvm_cpuid_entry2.edx", unsafe.Offsetof(ce.EDX), 24},
		{"kvm_cpuid2.entries", unsafe.Offsetof(c2.Entries), 8},
		{"kvm_msrs.entries", unsafe.Offsetof(ms.Entries), 8},
		{"kvm_userspace_memory_region.guest_phys_addr", unsafe.Offsetof(mr.GuestPhysAddr), 8},
		{"kvm_userspace_memory_region.userspace_addr", unsafe.Offsetof(mr.UserspaceAddr), 24},
	}
	for _, o := range offsets {
		t.Run(o.name, func(t *testing.T) {
			if o.got != o.want {
				t.Errorf("offsetof(%s) = %d, want %d", o.name, o.got, o.want)
			}
		})
	}
}

func TestStoreByte(t *testing.T) {
	for off := 0; off < 8; off++ {
		b := []byte{1, 2, 3, 4, 5, 6, 7, 8}
		want := append([]byte(nil), b...)
		want[off] = 0xEE
		storeByte(b, off, 0xEE)
		if string(b) != string(want) {
			t.Errorf("storeByte(_, %d, 0xEE) = %x, want %x", off, b, want)
		}
	}
}
