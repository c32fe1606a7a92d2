package introspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// Regs are one vCPU's registers as a backend captures them.
type Regs struct {
	RIP    Hex `json:"rip"`
	RSP    Hex `json:"rsp"`
	RBP    Hex `json:"rbp"`
	RFLAGS Hex `json:"rflags"`
	RAX    Hex `json:"rax"`
	RBX    Hex `json:"rbx"`
	RCX    Hex `json:"rcx"`
	RDX    Hex `json:"rdx"`
	RSI    Hex `json:"rsi"`
	RDI    Hex `json:"rdi"`
	R8     Hex `json:"r8"`
	R9     Hex `json:"r9"`
	R10    Hex `json:"r10"`
	R11    Hex `json:"r11"`
	R12    Hex `json:"r12"`
	R13    Hex `json:"r13"`
	R14    Hex `json:"r14"`
	R15    Hex `json:"r15"`
	CR0    Hex `json:"cr0"`
	CR2    Hex `json:"cr2"`
	CR3    Hex `json:"cr3"`
	CR4    Hex `json:"cr4"`
	EFER   Hex `json:"efer"`
	// Halted: the vCPU was idle in HLT.
	Halted bool `json:"halted,omitempty"`
}

// Errors about guest state.
var (
	// ErrReadOnly: a write that would land in the kernel's text or
	// read-only data.
	ErrReadOnly = errors.New("introspect: refusing to write kernel text or read-only data")
	// ErrNoPaging: no page-table root that maps the kernel was found.
	ErrNoPaging = errors.New("introspect: kernel page tables not found")
	// ErrMismatch: vmlinux is not the kernel that runs.
	ErrMismatch = errors.New("introspect: vmlinux does not match the running kernel")
	// ErrTaskGone: no task with that pid (and start time) exists.
	ErrTaskGone = errors.New("introspect: task gone")
)

// Limits bound what one caller may make the host read; a hostile guest
// controls the lengths it asks for.
const (
	// MaxRead is the most bytes one read or write may span.
	MaxRead = 64 << 10
	// MaxCPUs bounds per-CPU indexes (the kernel's NR_CPUS limit is 8192;
	// ktstr's kernel has 256).
	MaxCPUs = 8192
	// MaxTasks bounds a walk of the task list.
	MaxTasks = 1 << 16
)

// startKernelMap is __START_KERNEL_map: the kernel image's virtual base,
// where physical address phys_base appears.
const startKernelMap = 0xffffffff80000000

// Guest reads and writes a running (or frozen) guest kernel's state. It is
// safe for concurrent use; the memory itself is shared with the guest, so
// what a read returns while the vCPUs run may change under it, and every
// pointer followed is checked like any other address.
type Guest struct {
	mem *PhysMem
	k   *Kernel // nil: no vmlinux

	mu     sync.Mutex
	paging *Paging // the kernel's own page tables, once found
	roPA   [2]uint64
	rq     *rqLayout // the runqueue layout, once resolved (or rqErr)
	rqErr  error
}

// New returns a Guest over mem. k may be nil (a kernel without vmlinux):
// only physical reads and writes work then.
func New(mem *PhysMem, k *Kernel) *Guest { return &Guest{mem: mem, k: k} }

// Mem is the guest's physical memory.
func (g *Guest) Mem() *PhysMem { return g.mem }

// Kernel is the kernel's vmlinux (nil when there is none).
func (g *Guest) Kernel() *Kernel { return g.k }

// Paging returns the kernel's page tables, finding them the first time:
// the candidates are each vCPU's CR3 (its page frame, and the same with
// PTI's user bit cleared) and init_top_pgt's physical address for a kernel
// loaded where it was linked (phys_base 0: KASLR off). A candidate is the
// kernel's when walking it for init_top_pgt lands on the candidate itself,
// which then serves every later walk (a user process's CR3 may be freed; the
// kernel's top table never is). The running kernel's linux_banner must
// equal vmlinux's.
func (g *Guest) Paging(regs []Regs) (Paging, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paging != nil {
		return *g.paging, nil
	}
	top, _, err := g.k.Symbol("init_top_pgt")
	if err != nil {
		return Paging{}, err
	}
	type cand struct {
		root   uint64
		levels []int
	}
	var cands []cand
	for _, r := range regs {
		if r.CR0&cr0PG == 0 || r.CR3 == 0 {
			continue
		}
		lv := []int{4}
		if r.CR4&cr4LA57 != 0 {
			lv = []int{5}
		}
		root := uint64(r.CR3) & pteAddr
		cands = append(cands, cand{root, lv}, cand{root &^ cr3PTIUser, lv})
	}
	cands = append(cands, cand{top - startKernelMap, []int{4, 5}})
	for _, c := range cands {
		for _, lv := range c.levels {
			p := Paging{Root: c.root, Levels: lv}
			pa, _, err := g.mem.Translate(p, top)
			if err != nil {
				continue
			}
			p.Root = pa
			if pa2, _, err := g.mem.Translate(p, top); err != nil || pa2 != pa {
				continue
			}
			if err := g.checkBanner(p); err != nil {
				return Paging{}, err
			}
			g.roPA = [2]uint64{}
			if start, _, err := g.mem.Translate(p, g.k.roStart); err == nil {
				g.roPA = [2]uint64{start, start + (g.k.roEnd - g.k.roStart)}
			}
			g.paging = &p
			return p, nil
		}
	}
	return Paging{}, fmt.Errorf("%w: no vCPU's CR3 (of %d) nor init_top_pgt at phys_base 0 maps init_top_pgt", ErrNoPaging, len(regs))
}

func (g *Guest) checkBanner(p Paging) error {
	if g.k.Banner == "" {
		return nil
	}
	addr, _, err := g.k.Symbol("linux_banner")
	if err != nil {
		return nil
	}
	b := make([]byte, len(g.k.Banner))
	if err := g.readVirt(p, addr, b); err != nil {
		return fmt.Errorf("%w: linux_banner unreadable: %v", ErrMismatch, err)
	}
	if !bytes.Equal(b, []byte(g.k.Banner)) {
		return fmt.Errorf("%w: the guest's linux_banner is %q, vmlinux's %q", ErrMismatch, cstring(b), g.k.Banner)
	}
	return nil
}

// Translate returns the guest-physical address of kernel virtual va.
func (g *Guest) Translate(va uint64) (uint64, error) {
	p, err := g.Paging(nil)
	if err != nil {
		return 0, err
	}
	pa, _, err := g.mem.Translate(p, va)
	return pa, err
}

// segment is the host bytes of one page-contiguous piece of a virtual
// range.
type segment struct {
	pa  uint64
	mem []byte
}

// segments maps [va, va+n) to host bytes page by page.
func (g *Guest) segments(p Paging, va, n uint64) ([]segment, error) {
	if n > MaxRead {
		return nil, fmt.Errorf("introspect: %d bytes at %#x: more than %d", n, va, MaxRead)
	}
	if va+n < va {
		return nil, &AddrError{Addr: va, Len: n, Virt: true, What: "range wraps", Err: ErrNotMapped}
	}
	var segs []segment
	for n > 0 {
		pa, contig, err := g.mem.Translate(p, va)
		if err != nil {
			var ae *AddrError
			if errors.As(err, &ae) {
				ae.Len = n
			}
			return nil, err
		}
		c := min(contig, n)
		s, err := g.mem.Slice(pa, c)
		if err != nil {
			return nil, &AddrError{Addr: va, Len: n, Virt: true, What: fmt.Sprintf("maps to guest physical %#x, which is not in guest RAM", pa), Err: ErrNotMapped}
		}
		segs = append(segs, segment{pa, s})
		va += c
		n -= c
	}
	return segs, nil
}

func (g *Guest) readVirt(p Paging, va uint64, b []byte) error {
	segs, err := g.segments(p, va, uint64(len(b)))
	if err != nil {
		return err
	}
	for _, s := range segs {
		b = b[copy(b, s.mem):]
	}
	return nil
}

// Read copies len(b) bytes from kernel virtual va.
func (g *Guest) Read(va uint64, b []byte) error {
	p, err := g.Paging(nil)
	if err != nil {
		return err
	}
	return g.readVirt(p, va, b)
}

// writable checks that no byte of [va, va+n) nor its physical pages is in
// the kernel's text or read-only data.
func (g *Guest) writable(va, n uint64, segs []segment) error {
	if g.k != nil && va < g.k.roEnd && va+n > g.k.roStart {
		return &AddrError{Addr: va, Len: n, Virt: true, What: "kernel text or read-only data", Err: ErrReadOnly}
	}
	return g.physWritable(segs)
}

func (g *Guest) physWritable(segs []segment) error {
	g.mu.Lock()
	ro := g.roPA
	g.mu.Unlock()
	for _, s := range segs {
		if ro[1] > ro[0] && s.pa < ro[1] && s.pa+uint64(len(s.mem)) > ro[0] {
			return &AddrError{Addr: s.pa, Len: uint64(len(s.mem)), What: "kernel text or read-only data", Err: ErrReadOnly}
		}
	}
	return nil
}

// Write copies b to kernel virtual va; text and read-only data are
// refused.
func (g *Guest) Write(va uint64, b []byte) error {
	p, err := g.Paging(nil)
	if err != nil {
		return err
	}
	segs, err := g.segments(p, va, uint64(len(b)))
	if err != nil {
		return err
	}
	if err := g.writable(va, uint64(len(b)), segs); err != nil {
		return err
	}
	for _, s := range segs {
		b = b[copy(s.mem, b):]
	}
	return nil
}

// Uint reads an unsigned little-endian integer of size 1, 2, 4 or 8 at va
// (aligned 4- and 8-byte reads are single loads).
func (g *Guest) Uint(va uint64, size uint64) (uint64, error) {
	p, err := g.Paging(nil)
	if err != nil {
		return 0, err
	}
	segs, err := g.segments(p, va, size)
	if err != nil {
		return 0, err
	}
	if len(segs) == 1 {
		switch s := segs[0].mem; size {
		case 1:
			return uint64(s[0]), nil
		case 2:
			return uint64(binary.LittleEndian.Uint16(s)), nil
		case 4:
			return uint64(loadU32(s)), nil
		case 8:
			return loadU64(s), nil
		}
	}
	var b [8]byte
	if size > 8 {
		return 0, fmt.Errorf("introspect: %d-byte integer", size)
	}
	off := 0
	for _, s := range segs {
		off += copy(b[off:], s.mem)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// U64 reads the u64 at va.
func (g *Guest) U64(va uint64) (uint64, error) { return g.Uint(va, 8) }

// SymbolU64 reads the u64 at a symbol.
func (g *Guest) SymbolU64(name string) (uint64, error) {
	a, _, err := g.k.Symbol(name)
	if err != nil {
		return 0, err
	}
	return g.U64(a)
}

// NrCPUs is the kernel's nr_cpu_ids, bounded by MaxCPUs and by the size
// of __per_cpu_offset. It is read each time: early in boot it still holds
// NR_CPUS, until the kernel has counted the possible CPUs.
func (g *Guest) NrCPUs() (int, error) {
	a, _, err := g.k.Symbol("nr_cpu_ids")
	if err != nil {
		return 0, err
	}
	v, err := g.Uint(a, 4)
	if err != nil {
		return 0, err
	}
	_, size, err := g.k.Symbol("__per_cpu_offset")
	if err != nil {
		return 0, err
	}
	limit := uint64(MaxCPUs)
	if size/8 > 0 {
		limit = min(limit, size/8)
	}
	if v == 0 || v > limit {
		return 0, fmt.Errorf("introspect: nr_cpu_ids is %d, want 1..%d", v, limit)
	}
	return int(v), nil
}

// Running reports whether the kernel has finished booting (system_state
// is SYSTEM_RUNNING): before that, per-CPU areas and runqueues may not be
// set up, and what they hold means nothing.
func (g *Guest) Running() (bool, error) {
	a, size, err := g.k.Symbol("system_state")
	if err != nil {
		return false, err
	}
	states, err := g.k.Enum("system_states")
	if err != nil {
		return false, err
	}
	v, err := g.Uint(a, min(max(size, 1), 4))
	if err != nil {
		return false, err
	}
	return states[v] == "SYSTEM_RUNNING", nil
}

// PerCPU returns the address of per-CPU variable name on cpu
// (per_cpu_ptr: its offset plus __per_cpu_offset[cpu]) and its type.
func (g *Guest) PerCPU(name string, cpu int) (uint64, btf.Type, error) {
	off, t, err := g.k.PerCPU(name)
	if err != nil {
		return 0, nil, err
	}
	n, err := g.NrCPUs()
	if err != nil {
		return 0, nil, err
	}
	if cpu < 0 || cpu >= n {
		return 0, nil, fmt.Errorf("introspect: cpu %d out of range (the kernel has %d)", cpu, n)
	}
	tab, _, err := g.k.Symbol("__per_cpu_offset")
	if err != nil {
		return 0, nil, err
	}
	base, err := g.U64(tab + 8*uint64(cpu))
	if err != nil {
		return 0, nil, err
	}
	return base + off, t, nil
}

// String reads a NUL-terminated string of at most max bytes at va.
func (g *Guest) String(va uint64, max int) (string, error) {
	b := make([]byte, max)
	if err := g.Read(va, b); err != nil {
		// A string near the end of a mapping: fall back to what fits
		// on its page.
		n := pageSz - va%pageSz
		if n >= uint64(max) || g.Read(va, b[:n]) != nil {
			return "", err
		}
		b = b[:n]
	}
	return cstring(b), nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
