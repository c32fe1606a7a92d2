package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ktstr-go/ktstr/internal/introspect"
	"github.com/ktstr-go/ktstr/internal/vmm"
	"github.com/ktstr-go/ktstr/internal/vmm/qemu"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Bounds of the host side of snapshots and kernel ops.
const (
	// FreezeTimeout bounds the rendezvous of a freeze (ktstr's 30 s).
	FreezeTimeout = 30 * time.Second
	// DumpFreezeTimeout bounds a failure dump's freeze: the run is
	// already ending.
	DumpFreezeTimeout = 5 * time.Second
	// inspectQueue is how many snapshot and kernel-op requests may wait
	// for the worker; more are dropped and counted (the guest's request
	// times out), so a guest that floods the channel costs a bounded
	// queue, never a blocked control handler.
	inspectQueue = 16
	// MaxSnapshots bounds the snapshot files one run writes.
	MaxSnapshots = 64
)

// Snapshot file names in the run directory.
const (
	SnapshotPrefix = "snapshot-"
	FailureDump    = "failure-dump.json"
)

// target is a running VM that can be looked into: frozen and resumed, its
// registers read, its RAM lent.
type target interface {
	freeze(timeout time.Duration) ([]introspect.Regs, error)
	thaw() error
	// liveRegs reads the registers without a freeze (nil, nil if the
	// backend cannot).
	liveRegs() ([]introspect.Regs, error)
	withRAM(fn func([]introspect.Range) error) error
}

type qemuTarget struct{ vm *qemu.VM }

func (q qemuTarget) freeze(t time.Duration) ([]introspect.Regs, error) { return q.vm.Freeze(t) }
func (q qemuTarget) thaw() error                                       { return q.vm.Thaw(FreezeTimeout) }
func (q qemuTarget) liveRegs() ([]introspect.Regs, error)              { return q.vm.Registers(FreezeTimeout) }
func (q qemuTarget) withRAM(fn func([]introspect.Range) error) error   { return q.vm.WithRAM(fn) }

type ownTarget struct{ vm *vmm.VM }

func (o ownTarget) freeze(t time.Duration) ([]introspect.Regs, error) {
	states, err := o.vm.Freeze(t)
	regs := make([]introspect.Regs, len(states))
	for i, s := range states {
		r, sr := s.Regs, s.Sregs
		regs[i] = introspect.Regs{
			RIP: introspect.Hex(r.RIP), RSP: introspect.Hex(r.RSP), RBP: introspect.Hex(r.RBP), RFLAGS: introspect.Hex(r.RFLAGS),
			RAX: introspect.Hex(r.RAX), RBX: introspect.Hex(r.RBX), RCX: introspect.Hex(r.RCX), RDX: introspect.Hex(r.RDX),
			RSI: introspect.Hex(r.RSI), RDI: introspect.Hex(r.RDI), R8: introspect.Hex(r.R8), R9: introspect.Hex(r.R9),
			R10: introspect.Hex(r.R10), R11: introspect.Hex(r.R11), R12: introspect.Hex(r.R12), R13: introspect.Hex(r.R13),
			R14: introspect.Hex(r.R14), R15: introspect.Hex(r.R15),
			CR0: introspect.Hex(sr.CR0), CR2: introspect.Hex(sr.CR2), CR3: introspect.Hex(sr.CR3), CR4: introspect.Hex(sr.CR4),
			EFER: introspect.Hex(sr.EFER), Halted: s.MPState == vmm.MPStateHalted,
		}
	}
	return regs, err
}
func (o ownTarget) thaw() error                          { o.vm.Thaw(); return nil }
func (o ownTarget) liveRegs() ([]introspect.Regs, error) { return nil, nil }
func (o ownTarget) withRAM(fn func([]introspect.Range) error) error {
	return o.vm.WithRAM(func(rs []vmm.RAMRange) error {
		out := make([]introspect.Range, len(rs))
		for i, r := range rs {
			out[i] = introspect.Range{GPA: r.GPA, Mem: r.Mem}
		}
		return fn(out)
	})
}

// inspector answers snapshot and kernel-op requests, and takes failure
// dumps, for one run. The control handler only queues requests (never
// blocks); one worker goroutine answers them in order.
type inspector struct {
	backend string
	runDir  string
	logf    func(string, ...any)
	reply   func(wire.Type, []byte)
	host    *hostFrames // where failure dumps and monitor samples go
	vmlinux string      // "": none; opened by openKernel on first use

	kernelOnce sync.Once
	kernel     *introspect.Kernel // nil: no vmlinux (kerr says why)
	kerr       error

	mu     sync.Mutex // guards t and guest
	t      target     // nil until the VM runs, and for the host backend
	guest  *introspect.Guest
	freeze sync.Mutex // one freeze at a time: worker captures, Cold ops, failure dump

	stats struct {
		sync.Mutex
		captures, kernelOps, frozen latency
	}

	monStop, monDone chan struct{} // the host-side monitor (monitor.go)
	dumped           atomic.Bool   // the run's failure dump is taken

	jobs      chan func()
	capturing atomic.Bool
	snapshots atomic.Int32
	dropped   atomic.Uint64
	quit      chan struct{}
	wg        sync.WaitGroup
}

func newInspector(backend string, logf func(string, ...any), reply func(wire.Type, []byte)) *inspector {
	in := &inspector{backend: backend, logf: logf, reply: reply,
		jobs: make(chan func(), inspectQueue), quit: make(chan struct{}),
		kerr: errors.New("no vmlinux for this kernel: symbols and BTF unavailable (pass --vmlinux)")}
	in.wg.Add(1)
	go in.work()
	return in
}

// configure says where snapshots go (the run directory), where the
// failure dump's and the monitor's frames go, and which vmlinux names
// the kernel's symbols and types ("" none). Run calls it before any
// request can arrive.
func (in *inspector) configure(runDir, vmlinux string, host *hostFrames) {
	in.runDir, in.host, in.vmlinux = runDir, host, vmlinux
}

// openKernel reads the vmlinux's symbols and BTF on the first request
// that looks into the guest, not at start-up: that reading is some tens
// of milliseconds of CPU (a 20 MB ELF), which before QEMU's start was
// on every run's path to the guest's first frame, and a run that looks
// into nothing never pays it.
func (in *inspector) openKernel() (*introspect.Kernel, error) {
	in.kernelOnce.Do(func() {
		if in.vmlinux != "" {
			in.kernel, in.kerr = introspect.OpenKernel(in.vmlinux)
		}
	})
	return in.kernel, in.kerr
}

// attach makes t, a VM of the named backend, the VM to look into (t nil:
// a backend that cannot be looked into).
func (in *inspector) attach(backend string, t target) {
	in.mu.Lock()
	in.backend, in.t = backend, t
	in.mu.Unlock()
}

// latency sums durations: how many, their total and the largest.
type latency struct {
	n        int
	sum, max time.Duration
}

func (l *latency) add(d time.Duration) {
	l.n++
	l.sum += d
	l.max = max(l.max, d)
}

func (l latency) String() string {
	if l.n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d, mean %v, max %v", l.n, (l.sum / time.Duration(l.n)).Round(time.Microsecond), l.max.Round(time.Microsecond))
}

// close stops the worker after the requests already queued, and logs
// what it did: how long requests took from their arrival to the reply,
// and how long the vCPUs stayed frozen.
func (in *inspector) close() {
	close(in.quit)
	in.wg.Wait()
	if n := in.dropped.Load(); n > 0 {
		in.logf("introspection: %d requests dropped: more than %d were waiting", n, inspectQueue)
	}
	in.stats.Lock()
	defer in.stats.Unlock()
	if in.stats.captures.n+in.stats.kernelOps.n > 0 {
		in.logf("introspection: captures %v; frozen %v; kernel ops %v", in.stats.captures, in.stats.frozen, in.stats.kernelOps)
	}
}

func (in *inspector) took(l *latency, d time.Duration) {
	in.stats.Lock()
	l.add(d)
	in.stats.Unlock()
}

func (in *inspector) work() {
	defer in.wg.Done()
	for {
		select {
		case job := <-in.jobs:
			job()
		case <-in.quit:
			for {
				select {
				case job := <-in.jobs:
					job()
				default:
					return
				}
			}
		}
	}
}

// submit queues a job without blocking; false when the queue is full.
func (in *inspector) submit(job func()) bool {
	select {
	case in.jobs <- job:
		return true
	default:
		in.dropped.Add(1)
		return false
	}
}

// snapshot handles an SNRQ effect.
func (in *inspector) snapshot(r *record.Record) {
	t0 := time.Now()
	errReply := func(reason string) func() {
		return func() {
			in.reply(wire.TypeSnapshotReply, wire.AppendSnapshotReply(nil, wire.SnapshotReply{RequestID: r.RequestID, Status: wire.SnapshotErr, Reason: reason}))
		}
	}
	switch r.ReqKind {
	case wire.SnapshotCapture:
		// ktstr's text, checked when the request arrives.
		if !in.capturing.CompareAndSwap(false, true) {
			in.submit(errReply("another snapshot capture is in flight; retry"))
			return
		}
		if !in.submit(func() {
			defer in.capturing.Store(false)
			_, _, err := in.capture(r.ReqTag, "")
			if err != nil {
				errReply(err.Error())()
				return
			}
			in.reply(wire.TypeSnapshotReply, wire.AppendSnapshotReply(nil, wire.SnapshotReply{RequestID: r.RequestID, Status: wire.SnapshotOK}))
			in.took(&in.stats.captures, time.Since(t0))
		}) {
			in.capturing.Store(false)
		}
	case wire.SnapshotWatch:
		in.submit(errReply("snapshot WATCH (hardware watchpoints) is not implemented by ktstr-boot"))
	default:
		in.submit(errReply(fmt.Sprintf("unknown snapshot kind %d", r.ReqKind)))
	}
}

// kernelOp handles a KORQ effect: the request is decoded again from the
// payload ktstr-dispatch validated.
func (in *inspector) kernelOp(r *record.Record) {
	t0 := time.Now()
	in.submit(func() {
		rep := in.doKernelOp(r)
		p, err := payload.MarshalKernelOpReply(rep)
		if err != nil {
			in.logf("introspection: KORP %d: %v", r.RequestID, err)
			return
		}
		in.reply(wire.TypeKernelOpReply, p)
		in.took(&in.stats.kernelOps, time.Since(t0))
	})
}

func (in *inspector) doKernelOp(r *record.Record) *payload.KernelOpReply {
	fail := func(reason string) *payload.KernelOpReply {
		return &payload.KernelOpReply{RequestID: r.RequestID, Reason: wire.TruncateUTF8(reason, payload.KernelOpReasonMax), ReadValues: []payload.Value{}}
	}
	req, err := payload.UnmarshalKernelOpRequest(r.Request)
	if err != nil {
		return fail(err.Error())
	}
	t, g, err := in.target()
	if err != nil {
		return fail(err.Error())
	}
	var regs []introspect.Regs
	if req.Mode == payload.ModeCold {
		in.freeze.Lock()
		defer in.freeze.Unlock()
		regs, err = t.freeze(FreezeTimeout)
		defer t.thaw()
		if err != nil {
			return fail("cold kernel op: freeze: " + err.Error())
		}
	} else if _, perr := g.Paging(nil); perr != nil {
		// The first Hot op on a kernel not at its link address: the
		// page tables come from a vCPU's CR3.
		if regs, err = in.regsForPaging(t); err != nil {
			return fail(err.Error())
		}
	}
	var rep *payload.KernelOpReply
	err = t.withRAM(func([]introspect.Range) error {
		rep = g.KernelOp(req, regs)
		return nil
	})
	if err != nil {
		return fail(err.Error())
	}
	return rep
}

// regsForPaging gets registers to find the page tables with: live where
// the backend can, else from a short freeze.
func (in *inspector) regsForPaging(t target) ([]introspect.Regs, error) {
	if regs, err := t.liveRegs(); err != nil || regs != nil {
		return regs, err
	}
	in.freeze.Lock()
	defer in.freeze.Unlock()
	regs, err := t.freeze(FreezeTimeout)
	t.thaw()
	return regs, err
}

// target returns the VM and its Guest, or why there is none.
func (in *inspector) target() (target, *introspect.Guest, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.t == nil {
		return nil, nil, fmt.Errorf("not supported by the %s backend", in.backend)
	}
	if in.guest == nil {
		k, kerr := in.openKernel()
		if k == nil {
			in.logf("introspection: %v", kerr)
		}
		err := in.t.withRAM(func(rs []introspect.Range) error {
			m, err := introspect.NewPhysMem(rs...)
			if err == nil {
				in.guest = introspect.New(m, k)
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return in.t, in.guest, nil
}

// capture freezes the vCPUs, reads the report, resumes them and writes
// the report into the run directory: snapshot-TAG.json, or failure-dump.json
// when reason is set (a dump ktstr-boot takes on its own). It returns the
// file's path and the report.
func (in *inspector) capture(tag, reason string) (string, *introspect.Report, error) {
	timeout := FreezeTimeout
	if reason != "" {
		timeout = DumpFreezeTimeout
	}
	t, g, err := in.target()
	if err != nil {
		return "", nil, fmt.Errorf("snapshot capture is %w", err)
	}
	name := FailureDump
	if reason == "" {
		if in.snapshots.Add(1) > MaxSnapshots {
			return "", nil, fmt.Errorf("snapshot limit reached: %d per run", MaxSnapshots)
		}
		name = snapshotName(in.runDir, tag)
	}
	in.freeze.Lock()
	start := time.Now()
	regs, ferr := t.freeze(timeout)
	var rep *introspect.Report
	if regs != nil {
		err = t.withRAM(func([]introspect.Range) error {
			rep = g.Capture(regs)
			return nil
		})
	}
	terr := t.thaw()
	frozen := time.Since(start)
	in.freeze.Unlock()
	in.took(&in.stats.frozen, frozen)
	if rep == nil {
		if ferr == nil {
			ferr = err
		}
		return "", nil, fmt.Errorf("snapshot capture: freeze: %v", ferr)
	}
	if ferr != nil {
		rep.Errors = append(rep.Errors, "freeze degraded: "+ferr.Error())
	}
	if terr != nil {
		rep.Errors = append(rep.Errors, "resume: "+terr.Error())
	}
	if _, kerr := in.openKernel(); kerr != nil {
		rep.Errors = append(rep.Errors, kerr.Error())
	}
	in.mu.Lock()
	rep.Backend = in.backend
	in.mu.Unlock()
	rep.Tag, rep.Reason = tag, reason
	rep.Time = start.UTC().Format(time.RFC3339Nano)
	rep.FrozenNS = frozen.Nanoseconds()
	path := filepath.Join(in.runDir, name)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(path, append(b, '\n'), 0o600)
	}
	if err != nil {
		return "", rep, fmt.Errorf("snapshot capture: %w", err)
	}
	if ferr != nil {
		return path, rep, fmt.Errorf("snapshot capture degraded (report in %s): %v", path, ferr)
	}
	return path, rep, nil
}

// snapshotName turns a guest-chosen tag into a file name in dir:
// characters outside [A-Za-z0-9._-] become '_', and a name already taken
// gets the next free "-N" (at most MaxSnapshots files exist).
func snapshotName(dir, tag string) string {
	b := []byte(strings.TrimLeft(tag, "."))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		b = []byte("untagged")
	}
	base := SnapshotPrefix + string(b)
	name := base + ".json"
	for n := 2; ; n++ {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d.json", base, n)
	}
}

// failureDump captures a snapshot on ktstr-boot's own initiative before
// the VM is stopped, logs its summary and returns a note for the result's
// detail ("" when there is nothing to look into).
//
// A run has one failure dump, the first: a stall the monitor saw is a
// better picture than what is left once the scheduler has died of it.
func (in *inspector) failureDump(why string) string {
	in.mu.Lock()
	t := in.t
	in.mu.Unlock()
	if t == nil {
		return ""
	}
	if !in.dumped.CompareAndSwap(false, true) {
		return "; failure dump " + filepath.Join(in.runDir, FailureDump)
	}
	path, rep, err := in.capture("", why)
	if rep == nil {
		in.logf("failure dump: %v", err)
		return ""
	}
	if err != nil {
		in.logf("failure dump: %v", err)
	}
	in.logf("failure dump (%s): %s", why, path)
	sum := rep.Summary()
	for _, l := range sum {
		in.logf("  %s", l)
	}
	stuck, _ := rep.Stalled()
	p, err := payload.MarshalHostDump(&payload.HostDump{Path: path, Reason: why, Summary: sum, StuckCPU: stuck})
	if err == nil {
		in.host.add(wire.TypeHostDump, p)
	}
	return "; failure dump " + path
}
