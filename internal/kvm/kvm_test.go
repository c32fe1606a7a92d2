package kvm

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func requireKVM(t *testing.T) *System {
	t.Helper()
	s, err := Open()
	if err != nil {
		t.Skipf("needs a usable %s: %v", DevicePath, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenMissingDevice(t *testing.T) {
	_, err := OpenPath(t.TempDir() + "/no-kvm")
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("OpenPath(missing) error = %v, want ENOENT", err)
	}
}

// TestVMResources creates a VM with memory, an irqchip and a vCPU and
// closes everything twice.
func TestVMResources(t *testing.T) {
	s := requireKVM(t)
	if n, err := s.CheckExtension(CapImmediateExit); err != nil || n == 0 {
		t.Errorf("CheckExtension(KVM_CAP_IMMEDIATE_EXIT) = %d, %v; want supported", n, err)
	}
	size, err := s.VCPUMmapSize()
	if err != nil {
		t.Fatal(err)
	}
	cpuid, err := s.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpuid) == 0 || cpuid[0].Function != 0 {
		t.Errorf("SupportedCPUID() first entry = %+v, want leaf 0", cpuid[:min(1, len(cpuid))])
	}
	vm, err := s.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetIdentityMapAddr(0xfffbc000); err != nil {
		t.Fatal(err)
	}
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	if err := vm.CreatePIT2(PITSpeakerDummy); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := vm.SetUserMemoryRegion(0, 0, mem, 0); err != nil {
		t.Fatal(err)
	}
	c, err := vm.CreateVCPU(0, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetCPUID2(cpuid); err != nil {
		t.Error(err)
	}
	sr, err := c.GetSregs()
	if err != nil {
		t.Fatal(err)
	}
	if sr.APICBase&0xfffff000 != 0xfee00000 {
		t.Errorf("APIC base = %#x, want 0xfee00000 with an in-kernel irqchip", sr.APICBase)
	}
	l, err := c.GetLAPIC()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetLAPIC(l); err != nil {
		t.Error(err)
	}
	if err := vm.IRQLine(4, true); err != nil {
		t.Error(err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := vm.Close(); err != nil {
		t.Error(err)
	}
	if err := vm.Close(); err != nil {
		t.Errorf("second VM Close = %v, want nil", err)
	}
}
