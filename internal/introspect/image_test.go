package introspect

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// A synthetic guest: RAM, page tables, a kernel image and the kernel data
// structures a report reads, laid out the way Linux lays them out (with
// smaller structs), and a matching symbol table and BTF.
const (
	imgRAM     = 24 << 20 // RAM at [0, 24 MiB)
	imgHighGPA = 1 << 32  // and 1 MiB at 4 GiB
	imgHigh    = 1 << 20

	kText     = 0xffffffff81000000 // _text, at physical 16 MiB (phys_base 0)
	kRoEnd    = 0xffffffff81200000 // __end_rodata
	kData     = 0xffffffff81200000 // writable data starts here
	kTopPgt   = 0xffffffff81200000 // init_top_pgt
	kBanner   = 0xffffffff81100000 // linux_banner, in rodata
	kPerCPUOf = 0xffffffff81100100 // __per_cpu_offset (4 CPUs)
	kNrCPUs   = 0xffffffff81201000 // nr_cpu_ids
	kJiffies  = 0xffffffff81201008
	kVar      = 0xffffffff81201010 // a harmless u64 variable
	kInitTask = 0xffffffff81202000
	kScxOps   = 0xffffffff81203000
	kScxState = 0xffffffff81203100 // scx_ops_enable_state_var
	kExitKind = 0xffffffff81203104
	kExitInfo = 0xffffffff81203108 // scx_exit_info (pointer)
	kRejected = 0xffffffff81203110 // scx_nr_rejected
	kSysState = 0xffffffff81203118 // system_state

	directMap uint64 = 0xffff888000000000 // page_offset_base with 4-level paging
	pcpuBase  uint64 = 0xffffc90000000000 // vmalloc'ed per-CPU areas, 64 KiB per CPU
	rqOff            = 0x100              // runqueues' per-CPU offset
	imgCPUs          = 4

	banner = "Linux version 6.12.0-synthetic"
)

// Task layout in the synthetic BTF.
const (
	tsState, tsPID, tsStart, tsComm, tsTasks, tsThread, tsSignal, tsSCX, tsUnion, tsSize = 0, 8, 16, 24, 40, 56, 72, 80, 104, 128
	scxRunnableNode, scxRunnableAt                                                       = 0, 16
	rqNr, rqClock, rqCurr, rqSCX, rqSize                                                 = 0, 8, 16, 24, 56
	scxrqDSQ, scxrqRunnable, scxrqNr                                                     = 0, 8, 24
)

type image struct {
	t      testing.TB
	low    []byte
	high   []byte
	mem    *PhysMem
	levels int
	top    uint64 // physical address of the top table
	next   uint64 // next free page-table page
	k      *Kernel
}

func u32T() *btf.Int  { return &btf.Int{Name: "unsigned int", Size: 4} }
func u64T() *btf.Int  { return &btf.Int{Name: "long long unsigned int", Size: 8} }
func intT() *btf.Int  { return &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed} }
func charT() *btf.Int { return &btf.Int{Name: "char", Size: 1, Encoding: btf.Char} }

// syntheticBTF is the subset of the kernel's types the package reads.
func syntheticBTF(t testing.TB) []byte {
	t.Helper()
	u32, u64, i32, char := u32T(), u64T(), intT(), charT()
	lh := &btf.Struct{Name: "list_head", Size: 16}
	lh.Members = []btf.Member{{Name: "next", Type: &btf.Pointer{Target: lh}}, {Name: "prev", Type: &btf.Pointer{Target: lh}, Offset: 64}}
	sig := &btf.Struct{Name: "signal_struct", Size: 16, Members: []btf.Member{{Name: "thread_head", Type: lh}}}
	see := &btf.Struct{Name: "sched_ext_entity", Size: 24, Members: []btf.Member{
		{Name: "runnable_node", Type: lh, Offset: scxRunnableNode * 8}, {Name: "runnable_at", Type: u64, Offset: scxRunnableAt * 8}}}
	anon := &btf.Union{Size: 8, Members: []btf.Member{{Name: "ux", Type: u64}, {Name: "uy", Type: u32}}}
	ts := &btf.Struct{Name: "task_struct", Size: tsSize}
	ts.Members = []btf.Member{
		{Name: "__state", Type: &btf.Volatile{Type: u32}, Offset: tsState * 8},
		{Name: "flags_bit", Type: u32, Offset: 4 * 8, BitfieldSize: 3},
		{Name: "pid", Type: &btf.Typedef{Name: "pid_t", Type: i32}, Offset: tsPID * 8},
		{Name: "start_time", Type: u64, Offset: tsStart * 8},
		{Name: "comm", Type: &btf.Array{Type: char, Index: u32, Nelems: 16}, Offset: tsComm * 8},
		{Name: "tasks", Type: lh, Offset: tsTasks * 8},
		{Name: "thread_node", Type: lh, Offset: tsThread * 8},
		{Name: "signal", Type: &btf.Pointer{Target: sig}, Offset: tsSignal * 8},
		{Name: "scx", Type: see, Offset: tsSCX * 8},
		{Name: "", Type: anon, Offset: tsUnion * 8},
	}
	dsq := &btf.Struct{Name: "scx_dispatch_q", Size: 8, Members: []btf.Member{{Name: "nr", Type: u32}}}
	scxrq := &btf.Struct{Name: "scx_rq", Size: 32, Members: []btf.Member{
		{Name: "local_dsq", Type: dsq, Offset: scxrqDSQ * 8}, {Name: "runnable_list", Type: lh, Offset: scxrqRunnable * 8}, {Name: "nr_running", Type: u32, Offset: scxrqNr * 8}}}
	rq := &btf.Struct{Name: "rq", Size: rqSize, Members: []btf.Member{
		{Name: "nr_running", Type: u32, Offset: rqNr * 8}, {Name: "clock", Type: u64, Offset: rqClock * 8},
		{Name: "curr", Type: &btf.Pointer{Target: ts}, Offset: rqCurr * 8}, {Name: "scx", Type: scxrq, Offset: rqSCX * 8}}}
	ops := &btf.Struct{Name: "sched_ext_ops", Size: 136, Members: []btf.Member{
		{Name: "flags", Type: u64}, {Name: "name", Type: &btf.Array{Type: char, Index: u32, Nelems: 128}, Offset: 64}}}
	exitKind := &btf.Enum{Name: "scx_exit_kind", Size: 4, Values: []btf.EnumValue{
		{Name: "SCX_EXIT_NONE", Value: 0}, {Name: "SCX_EXIT_DONE", Value: 1}, {Name: "SCX_EXIT_ERROR_STALL", Value: 1026}}}
	state := &btf.Enum{Name: "scx_ops_enable_state", Size: 4, Values: []btf.EnumValue{
		{Name: "SCX_OPS_ENABLING", Value: 0}, {Name: "SCX_OPS_ENABLED", Value: 1}, {Name: "SCX_OPS_DISABLING", Value: 2}, {Name: "SCX_OPS_DISABLED", Value: 3}}}
	ei := &btf.Struct{Name: "scx_exit_info", Size: 32, Members: []btf.Member{
		{Name: "kind", Type: exitKind}, {Name: "exit_code", Type: &btf.Int{Name: "long long int", Size: 8, Encoding: btf.Signed}, Offset: 64},
		{Name: "reason", Type: &btf.Pointer{Target: &btf.Const{Type: char}}, Offset: 128}, {Name: "msg", Type: &btf.Pointer{Target: char}, Offset: 192}}}
	sysStates := &btf.Enum{Name: "system_states", Size: 4, Values: []btf.EnumValue{
		{Name: "SYSTEM_BOOTING", Value: 0}, {Name: "SYSTEM_SCHEDULING", Value: 1}, {Name: "SYSTEM_FREEING_INITMEM", Value: 2}, {Name: "SYSTEM_RUNNING", Value: 3}}}
	rqVar := &btf.Var{Name: "runqueues", Type: rq, Linkage: btf.GlobalVar}
	ds := &btf.Datasec{Name: ".data..percpu", Size: rqOff + rqSize, Vars: []btf.VarSecinfo{{Type: rqVar, Offset: rqOff, Size: rqSize}}}
	b, err := btf.NewBuilder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []btf.Type{ts, rq, ops, exitKind, state, ei, sysStates, ds} {
		if _, err := b.Add(typ); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func syntheticSyms() []elfSym {
	return []elfSym{
		{Name: "_text", Value: kText, Global: true},
		{Name: "__end_rodata", Value: kRoEnd, Global: true},
		{Name: "init_top_pgt", Value: kTopPgt, Size: 4096, Global: true},
		{Name: "linux_banner", Value: kBanner, Size: uint64(len(banner) + 1), Global: true},
		{Name: "__per_cpu_offset", Value: kPerCPUOf, Size: 8 * imgCPUs, Global: true},
		{Name: "nr_cpu_ids", Value: kNrCPUs, Size: 4, Global: true},
		{Name: "jiffies", Value: kJiffies, Global: true},
		{Name: "ktstr_var", Value: kVar, Size: 8, Global: true},
		{Name: "init_task", Value: kInitTask, Size: tsSize, Global: true},
		{Name: "scx_ops", Value: kScxOps, Size: 136},
		{Name: "scx_ops_enable_state_var", Value: kScxState, Size: 4},
		{Name: "scx_exit_kind", Value: kExitKind, Size: 4},
		{Name: "scx_exit_info", Value: kExitInfo, Size: 8},
		{Name: "scx_nr_rejected", Value: kRejected, Size: 8},
		{Name: "system_state", Value: kSysState, Size: 4, Global: true},
		{Name: "runqueues", Value: rqOff, Size: rqSize, Global: true, PerCPU: true},
		{Name: "dup", Value: 1}, {Name: "dup", Value: 2},
	}
}

// newImage builds the synthetic guest with levels-deep page tables.
func newImage(t testing.TB, levels int) *image { return newImageAt(t, levels, 0) }

// newImageAt builds it with the kernel image physBase bytes above where it
// was linked (phys_base, as KASLR or a relocating loader leaves it).
func newImageAt(t testing.TB, levels int, physBase uint64) *image {
	t.Helper()
	im := &image{t: t, low: make([]byte, imgRAM), high: make([]byte, imgHigh), levels: levels,
		top: kTopPgt - startKernelMap + physBase, next: kTopPgt - startKernelMap + physBase + 0x100000}
	var err error
	im.mem, err = NewPhysMem(Range{GPA: imgHighGPA, Mem: im.high}, Range{GPA: 0, Mem: im.low})
	if err != nil {
		t.Fatal(err)
	}
	// The kernel image: 2 MiB pages, [_text, +4 MiB) at 16 MiB.
	im.mapPage(kText, kText-startKernelMap+physBase, 2<<20)
	im.mapPage(kData, kData-startKernelMap+physBase, 2<<20)
	// The direct map: one 1 GiB page over all low memory.
	im.mapPage(directMap, 0, 1<<30)
	// Per-CPU areas: 4 KiB pages, CPU 3's in high memory.
	for cpu := range imgCPUs {
		pa := uint64(0x400000 + cpu*0x10000)
		if cpu == 3 {
			pa = imgHighGPA
		}
		im.mapPage(pcpuBase+uint64(cpu)*0x10000, pa, 4096)
		im.put64(kPerCPUOf+8*uint64(cpu), pcpuBase+uint64(cpu)*0x10000)
	}
	im.k, err = newKernel(syntheticSyms(), syntheticBTF(t))
	if err != nil {
		t.Fatal(err)
	}
	im.k.Banner = banner
	im.putBytes(kBanner, append([]byte(banner), 0))
	im.put32(kNrCPUs, imgCPUs)
	im.put64(kJiffies, 100000)
	return im
}

// table returns the table an entry points at, creating it.
func (im *image) table(entryPA uint64) uint64 {
	e := binary.LittleEndian.Uint64(im.low[entryPA:])
	if e&ptePresent != 0 {
		return e & pteAddr
	}
	pa := im.next
	im.next += pageSz
	binary.LittleEndian.PutUint64(im.low[entryPA:], pa|ptePresent|2)
	return pa
}

// mapPage maps one page of size (4 KiB, 2 MiB or 1 GiB) at va to pa.
func (im *image) mapPage(va, pa, size uint64) {
	tab := im.top
	stop := map[uint64]int{4096: 1, 2 << 20: 2, 1 << 30: 3}[size]
	for level := im.levels; level > stop; level-- {
		shift := uint(12 + 9*(level-1))
		tab = im.table(tab + ((va>>shift)&511)*8)
	}
	shift := uint(12 + 9*(stop-1))
	e := pa | ptePresent | 2
	if stop > 1 {
		e |= ptePageSize
	}
	binary.LittleEndian.PutUint64(im.low[tab+((va>>shift)&511)*8:], e)
}

func (im *image) pa(va uint64) uint64 {
	p := Paging{Root: im.top, Levels: im.levels}
	pa, _, err := im.mem.Translate(p, va)
	if err != nil {
		im.t.Fatalf("translate %#x: %v", va, err)
	}
	return pa
}

func (im *image) putBytes(va uint64, b []byte) {
	s, err := im.mem.Slice(im.pa(va), uint64(len(b)))
	if err != nil {
		im.t.Fatal(err)
	}
	copy(s, b)
}

func (im *image) put64(va, v uint64) { im.putBytes(va, binary.LittleEndian.AppendUint64(nil, v)) }
func (im *image) put32(va uint64, v uint32) {
	im.putBytes(va, binary.LittleEndian.AppendUint32(nil, v))
}

func (im *image) get64(va uint64) uint64 {
	s, err := im.mem.Slice(im.pa(va), 8)
	if err != nil {
		im.t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(s)
}

// A task in the direct map at physical pa.
func (im *image) task(pa uint64, pid int32, start uint64, comm string) uint64 {
	va := directMap + pa
	im.put32(va+tsPID, uint32(pid))
	im.put64(va+tsStart, start)
	im.putBytes(va+tsComm, append([]byte(comm), make([]byte, 16-len(comm))...))
	return va
}

// link makes the list at head hold the nodes, in order.
func (im *image) link(head uint64, nodes ...uint64) {
	all := append([]uint64{head}, nodes...)
	for i, n := range all {
		im.put64(n, all[(i+1)%len(all)])
		im.put64(n+8, all[(i+len(all)-1)%len(all)])
	}
}

// populate fills in tasks, runqueues and sched_ext state:
//
//	init_task (pid 0, "swapper/0")
//	process 100 "worker" with thread 101 "worker-t"
//	process 200 "stuck", runnable on CPU 2 since jiffy 99000
func (im *image) populate() {
	init := uint64(kInitTask)
	im.putBytes(init+tsComm, []byte("swapper/0\x00"))
	initSig := directMap + 0x500000
	im.put64(init+tsSignal, initSig)
	p100 := im.task(0x510000, 100, 1111, "worker")
	t101 := im.task(0x511000, 101, 2222, "worker-t")
	p200 := im.task(0x512000, 200, 3333, "stuck")
	sig100, sig200 := directMap+0x520000, directMap+0x521000
	im.put64(p100+tsSignal, sig100)
	im.put64(t101+tsSignal, sig100)
	im.put64(p200+tsSignal, sig200)
	im.link(init+tsTasks, p100+tsTasks, p200+tsTasks)
	im.link(initSig, init+tsThread)
	im.link(sig100, p100+tsThread, t101+tsThread)
	im.link(sig200, p200+tsThread)
	for cpu := range imgCPUs {
		rq := pcpuBase + uint64(cpu)*0x10000 + rqOff
		im.put32(rq+rqNr, uint32(cpu))
		im.put64(rq+rqClock, 5_000_000+uint64(cpu))
		curr := init
		if cpu == 1 {
			curr = t101
		}
		im.put64(rq+rqCurr, curr)
		im.put32(rq+rqSCX+scxrqNr, uint32(cpu))
		im.put32(rq+rqSCX+scxrqDSQ, uint32(10*cpu))
		head := rq + rqSCX + scxrqRunnable
		switch cpu {
		case 2:
			im.put64(p200+tsSCX+scxRunnableAt, 99000)
			im.put64(p100+tsSCX+scxRunnableAt, 99990)
			im.link(head, p100+tsSCX+scxRunnableNode, p200+tsSCX+scxRunnableNode)
		default:
			im.link(head)
		}
	}
	im.putBytes(kScxOps+8, []byte("simple\x00"))
	im.put32(kScxState, 1)
	im.put32(kExitKind, 0)
	ei := directMap + 0x530000
	im.put64(kExitInfo, ei)
	im.put64(kRejected, ^uint64(0)) // -1: signed
	im.put32(kSysState, 3)          // SYSTEM_RUNNING
}

func (im *image) guest() *Guest { return New(im.mem, im.k) }
