package vmm

import (
	"testing"
	"time"
)

// BenchmarkIOExit measures one port write that exits to the VMM and back
// (an OUT to the POST port 0x80 in a loop of b.N), the VM's start and end
// amortized over the loop.
func BenchmarkIOExit(b *testing.B) {
	requireKVM(b)
	var a asm
	// mov ecx, N; L: out 0x80, al; dec ecx; jnz L; reset
	a.movECX(uint32(b.N)).out(portPOST).decECX().jnz(-6).reset()
	b.ResetTimer()
	vm, err := Start(Config{Program: a.b, MemoryMB: 32})
	if err != nil {
		b.Fatal(err)
	}
	<-vm.Done()
	b.StopTimer()
	if r, err := vm.Exit(); r != ExitReset || err != nil {
		b.Fatalf("Exit() = %v, %v; want reset", r, err)
	}
	if st := vm.Stats(); st.IOExits != uint64(b.N)+1 {
		b.Fatalf("%d IO exits, want %d", st.IOExits, b.N+1)
	}
}

// BenchmarkStart measures Start up to the guest's first instruction (an
// OUT, so it exits at once) and reports the setup and first-exit times.
func BenchmarkStart(b *testing.B) {
	requireKVM(b)
	var a asm
	a.out(portPOST).reset()
	var setup, first time.Duration
	for range b.N {
		vm, err := Start(Config{Program: a.b, MemoryMB: 256, Topology: cores(2)})
		if err != nil {
			b.Fatal(err)
		}
		<-vm.Done()
		st := vm.Stats()
		setup += st.Setup
		first += st.FirstExit
	}
	b.ReportMetric(float64(setup.Nanoseconds())/float64(b.N), "setup-ns/op")
	b.ReportMetric(float64(first.Nanoseconds())/float64(b.N), "first-exit-ns/op")
}
