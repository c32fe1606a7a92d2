package boot

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// replyQueue bounds the replies waiting for the host-to-guest ring; a
// guest that floods requests and never reads its replies loses the
// excess (counted), it cannot stall the control server.
const replyQueue = 64

// handler acts on control records from ktstr-dispatch. The control server
// calls handle with its lock held, one record at a time, and handle never
// blocks: a kill is a one-slot channel (the first one wins), a watchdog
// deadline replaces the previous one and wakes the watchdog through a
// one-slot channel, and replies are queued for a writer goroutine. What
// the guest sends therefore decides neither whether ktstr-boot can stop
// nor how much it logs.
type handler struct {
	backend string
	logf    func(string, ...any)
	region  *shm.Region
	ins     *inspector    // snapshots, kernel ops, failure dumps, monitor
	kill    chan string   // one slot: why the VM is to be stopped
	moved   chan struct{} // one slot: a new deadline is waiting in next

	mu        sync.Mutex
	next      time.Time // the latest deadline asked for
	deadlines int       // how many were asked for

	replies chan []byte // frames for the host-to-guest ring
	dropped int         // replies the full queue refused (under mu)
	failed  int         // replies the ring refused (reply writer only)
	stop    chan struct{}
	wg      sync.WaitGroup
}

// newHandler returns a handler. Replies wait in its queue until attach
// gives it the region; Close stops its reply writer.
func newHandler(backend string, logf func(string, ...any)) *handler {
	h := &handler{
		backend: backend, logf: logf,
		kill: make(chan string, 1), moved: make(chan struct{}, 1),
		replies: make(chan []byte, replyQueue), stop: make(chan struct{}),
	}
	h.ins = newInspector(backend, logf, h.reply)
	return h
}

// attach starts writing replies into region's host-to-guest ring.
func (h *handler) attach(region *shm.Region) {
	h.region = region
	rx := region.RX().NewProducer(time.Second)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			select {
			case <-h.stop:
				return
			case f := <-h.replies:
				// The first failure is logged, the rest counted: the
				// guest (a full or corrupt ring) does not decide how much
				// ktstr-boot logs.
				if err := rx.Write(f); err != nil {
					if h.failed == 0 {
						h.logf("reply %v: %v (further failures are counted)", wire.Type(binary.LittleEndian.Uint32(f)), err)
					}
					h.failed++
				}
			}
		}
	}()
}

// Close stops the reply writer (after at most one ring wait) and logs
// how many replies were dropped or could not be written. The region must stay mapped until it
// returns; the control server must be closed first.
func (h *handler) Close() {
	select {
	case <-h.stop:
		return
	default:
	}
	h.ins.close() // its worker's last replies go into the queue first
	close(h.stop)
	h.wg.Wait()
	if h.failed > 0 {
		h.logf("could not write %d replies to the guest: its ring was full or corrupt", h.failed)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dropped > 0 {
		h.logf("dropped %d replies to the guest: it sent requests faster than it read the answers", h.dropped)
	}
}

func (h *handler) handle(r *record.Record) {
	switch r.Effect {
	case record.EffectKill:
		why := "scheduler exited (SCDX without an exit code)"
		if r.HasExitCode {
			why = fmt.Sprintf("scheduler exited (SCDX exit code %d)", r.ExitCode)
		}
		select {
		case h.kill <- why:
		default:
		}
	case record.EffectWatchdogDeadline:
		// deadline_ns and at_ns share ktstr-dispatch's clock; the
		// remaining budget is their difference.
		rem := time.Duration(int64(r.DeadlineNS) - r.AtNS)
		h.mu.Lock()
		h.next = time.Now().Add(rem)
		h.deadlines++
		h.mu.Unlock()
		select {
		case h.moved <- struct{}{}:
		default:
		}
	case record.EffectSnapshotRequest:
		h.ins.snapshot(r)
	case record.EffectKernelOpRequest:
		h.ins.kernelOp(r)
	}
}

// reply queues one frame for the host-to-guest ring, header and payload
// in one write, so a reply is never split. A full queue drops it.
func (h *handler) reply(t wire.Type, p []byte) {
	select {
	case h.replies <- wire.AppendFrame(nil, t, p):
	default:
		h.mu.Lock()
		h.dropped++
		h.mu.Unlock()
	}
}

// deadline returns the latest deadline asked for and how many were.
func (h *handler) deadline() (time.Time, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next, h.deadlines
}

// machine is a running guest of any backend: a VM, or the agent in this
// process (host mode).
type machine interface {
	Done() <-chan struct{}
	// Kill stops the guest; Done closes once it has stopped.
	Kill()
	// Err is the backend's own failure once Done is closed; nil when the
	// guest ended by itself (reboot, poweroff, reset). A *crashError is
	// the guest's failure.
	Err() error
}

// doneCheck is how often watch looks at the guest state for the agent's
// "done" (set right after its EXIT frame), which ends a VM at once. The
// guest cannot wake ktstr-boot, so this is a poll; each one wakes a host
// thread, which on a small host running emulated vCPUs is taken from the
// guest (a 2 ms period measurably slowed the guest's boot on a 2-CPU
// host), while 10 ms adds at most that much to the end of a run.
const doneCheck = 10 * time.Millisecond

// watch is the one watchdog of every backend. It runs until the guest
// ends, and returns a non-zero reason if it had to stop it: a signal to
// ktstr-boot, a kill effect, or the deadline. The deadline starts at
// timeout; watchdog_deadline effects move it, but never past timeout
// from start, which stays an absolute ceiling.
//
// A VM whose agent marked itself done (shm.GuestDone, right after its
// EXIT frame: nothing the run needs comes after) is stopped at once and
// the run ends as a poweroff: waiting for the guest kernel to restart
// itself costs tens of milliseconds under emulation, more on a loaded
// host, and only delays the verdict. The region stays readable after
// the VM is gone, so every frame the agent committed before it is read.
// A guest that marks itself done early only ends its own run early, as
// a reboot would. A host-mode agent (no VM) ends by itself.
func (h *handler) watch(vm machine, start time.Time, timeout time.Duration) Result {
	ceiling := start.Add(timeout)
	hard := time.NewTimer(time.Until(ceiling))
	defer hard.Stop()
	soft := time.NewTimer(softDelay(time.Until(ceiling)))
	defer soft.Stop()
	// An interrupted ktstr-boot stops its guest and still closes the
	// region, so the pipeline ends with a VM end record that says so.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stop := func() {
		vm.Kill()
		<-vm.Done()
	}
	// One line for the first deadline the guest's progress sets, one
	// summary for the rest: the guest decides when the deadline moves,
	// not how much ktstr-boot logs.
	capped := false
	defer func() {
		at, n := h.deadline()
		if n > 1 {
			note := ""
			if capped {
				note = " (capped by --timeout)"
			}
			h.logf("watchdog: the deadline was moved %d times, last to %v after the start%s", n, at.Sub(start).Round(time.Millisecond), note)
		}
	}()
	var doneTick <-chan time.Time
	if h.backend != "host" && h.region != nil {
		t := time.NewTicker(doneCheck)
		defer t.Stop()
		doneTick = t.C
	}
	for {
		select {
		case <-vm.Done():
			return Result{}
		case <-doneTick:
			if h.region.GuestState() == shm.GuestDone {
				stop()
				return Result{Reason: wire.EndPoweroff}
			}
		case sig := <-sigs:
			stop()
			return Result{Reason: wire.EndKilled, Detail: fmt.Sprintf("ktstr-boot interrupted by %v", sig)}
		case why := <-h.kill:
			dump := h.ins.failureDump(why)
			t0 := time.Now()
			stop()
			return Result{Reason: wire.EndKilled, Detail: fmt.Sprintf("%s; VM stopped %v after the kill request%s", why, time.Since(t0).Round(time.Microsecond), dump)}
		case <-h.moved:
			at, n := h.deadline()
			if at.After(ceiling) {
				at, capped = ceiling, true
			}
			rem := time.Until(at)
			hard.Reset(max(rem, 0))
			soft.Reset(softDelay(rem))
			if n == 1 {
				h.logf("watchdog: deadline in %v", rem.Round(time.Millisecond))
			}
		case <-soft.C:
			h.region.SetControl(shm.CtlShutdown, 0xD3)
		case <-hard.C:
			why := fmt.Sprintf("watchdog deadline passed after %v", time.Since(start).Round(time.Millisecond))
			dump := h.ins.failureDump(why)
			stop()
			return Result{Reason: wire.EndTimeout, Detail: why + dump}
		}
	}
}

// softDelay is when to ask the guest to shut down gracefully: 3 s before
// the hard deadline when the budget is over 5 s (ktstr's rule), else never
// (a timer that does not fire within the run).
func softDelay(budget time.Duration) time.Duration {
	if budget > 5*time.Second {
		return budget - 3*time.Second
	}
	return 24 * time.Hour
}
