package vmm

import (
	"errors"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/topology"
)

// TestFreeze freezes a guest whose boot vCPU spins and whose second vCPU
// waits for a SIPI: both stop, their registers come back (vCPU 0 in long
// mode at the spin loop), the guest's memory is readable while frozen,
// and after Thaw a second freeze works the same.
func TestFreeze(t *testing.T) {
	requireKVM(t)
	var a asm
	a.movRDI(0x200000).movRAX(0x1234).storeRAX().jmpSelf()
	vm, err := Start(Config{Program: a.b, MemoryMB: 32, Topology: topology.Topology{Nodes: 1, LLCs: 1, Cores: 2, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	spin := KernelAddr + uint64(len(a.b)) - 2
	stored := func() bool {
		var ok bool
		vm.WithRAM(func(rs []RAMRange) error { ok = rs[0].Mem[0x200000] == 0x34; return nil })
		return ok
	}
	for deadline := time.Now().Add(10 * time.Second); !stored(); {
		if time.Now().After(deadline) {
			t.Fatal("the program did not store its value")
		}
		time.Sleep(time.Millisecond)
	}
	for round := range 2 {
		states, err := vm.Freeze(10 * time.Second)
		if err != nil {
			vm.Thaw()
			t.Fatalf("round %d: Freeze: %v", round, err)
		}
		if len(states) != 2 {
			t.Fatalf("round %d: %d states, want 2", round, len(states))
		}
		s := states[0]
		if s.Err != nil || s.Regs.RIP != spin || s.Sregs.CR0&(1<<31) == 0 || s.Sregs.CR3 != pml4Addr {
			t.Errorf("round %d: vCPU 0: RIP %#x CR0 %#x CR3 %#x err %v; want RIP %#x, paging on, CR3 %#x", round, s.Regs.RIP, s.Sregs.CR0, s.Sregs.CR3, s.Err, spin, pml4Addr)
		}
		if states[1].Err != nil || states[1].MPState == 0 {
			t.Errorf("round %d: vCPU 1: mp_state %d err %v; want waiting for SIPI", round, states[1].MPState, states[1].Err)
		}
		var v uint64
		err = vm.WithRAM(func(rs []RAMRange) error {
			v = uint64(rs[0].Mem[0x200000]) | uint64(rs[0].Mem[0x200001])<<8
			return nil
		})
		if err != nil || v != 0x1234 {
			t.Errorf("round %d: RAM at 0x200000 = %#x, %v; want 0x1234", round, v, err)
		}
		vm.Thaw()
	}
	vm.Thaw() // no freeze: a no-op
	select {
	case <-vm.Done():
		t.Fatal("the VM ended after the thaws")
	case <-time.After(20 * time.Millisecond):
	}
	vm.Kill()
	<-vm.Done()
	if _, err := vm.Freeze(time.Second); !errors.Is(err, ErrFreeze) {
		t.Errorf("Freeze after the end: %v, want ErrFreeze", err)
	}
	vm.Thaw()
	if err := vm.WithRAM(func([]RAMRange) error { return nil }); !errors.Is(err, ErrReleased) {
		t.Errorf("WithRAM after the end: %v, want ErrReleased", err)
	}
}
