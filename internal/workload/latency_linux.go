package workload

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ktstr-go/ktstr/internal/hist"
	"golang.org/x/sys/unix"
)

// latency is a latency type's state in its worker.
type latency struct {
	h    hist.Hist
	ts   *uint64 // wake_latency: the message thread's wake time (CLOCK_MONOTONIC ns)
	next uint64  // timer_latency: the next expiry (CLOCK_MONOTONIC ns)
}

// setupLatency picks the step of a latency type.
func (w *worker) setupLatency() error {
	w.lat = &latency{}
	switch w.cfg.Work.Type {
	case WakeLatency:
		if w.shm == nil {
			return errors.New("wake_latency: no shared memory")
		}
		w.lat.ts = w.counter
		if w.cfg.Role == 0 {
			w.step = w.wakeMessage
		} else {
			w.step = w.wakeWorker
		}
	case TimerLatency:
		w.step = w.timerStep
	case OpenLoop:
		if w.shm == nil {
			return errors.New("open_loop: no shared memory")
		}
		// Word A: requests issued; word B: requests taken; the 64-bit
		// word: the generator's start, request k's arrival being
		// start + k*period.
		w.lat.ts = w.counter
		if w.cfg.Role == 0 {
			w.step = w.openGenerate
		} else {
			w.step = w.openServe
		}
	}
	return nil
}

// openGenerate is the generator's step: sleep until the next request's
// arrival time (absolute), then issue every request due by now, however
// late it woke (open loop: arrivals never wait for the servers), and wake
// as many servers.
func (w *worker) openGenerate() bool {
	period := uint64(w.work.SleepUS) * 1000
	if w.lat.next == 0 {
		w.lat.next = monoNow()
		atomic.StoreUint64(w.lat.ts, w.lat.next)
	}
	start := atomic.LoadUint64(w.lat.ts)
	issued := uint64(atomic.LoadUint32(w.a))
	ts := unix.NsecToTimespec(int64(start + (issued+1)*period))
	for {
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			w.fail(fmt.Errorf("open_loop: clock_nanosleep: %w", err))
			return false
		}
	}
	due := (monoNow() - start) / period
	if due > issued {
		atomic.StoreUint32(w.a, uint32(due))
		futexWake(w.a, int(min(due-issued, 1<<20)))
	}
	return true
}

// openServe is a server's step: take the next issued request (or wait
// for one), serve it (loops LCG steps) and record its latency from its
// scheduled arrival: the queueing a slow scheduler causes shows.
func (w *worker) openServe() bool {
	for {
		taken, issued := atomic.LoadUint32(w.b), atomic.LoadUint32(w.a)
		if taken < issued {
			if !atomic.CompareAndSwapUint32(w.b, taken, taken+1) {
				continue
			}
			arrival := atomic.LoadUint64(w.lat.ts) + uint64(taken+1)*uint64(w.work.SleepUS)*1000
			w.burn(w.work.Loops)
			now := monoNow()
			w.lat.h.Record(now - min(now, arrival))
			return true
		}
		if w.stopping() {
			return false
		}
		futexWait(w.a, issued, wakeWait)
	}
}

// wakeMessage is one round of the message thread (schbench's): pause,
// stamp the time, start a generation and wake every worker of the group,
// then wait until all acknowledged it.
func (w *worker) wakeMessage() bool {
	waiters := uint32(w.work.GroupSize - 1)
	sleepNS(int64(w.work.SleepUS) * 1000)
	atomic.StoreUint32(w.b, 0)
	atomic.StoreUint64(w.lat.ts, monoNow())
	atomic.AddUint32(w.a, 1)
	futexWake(w.a, int(waiters))
	return w.awaitAcks(waiters)
}

// wakeWorker waits for a new generation, records now less the message
// thread's stamp (the wake-up latency, measured by the woken task as soon
// as it runs), works, and acknowledges; the last to acknowledge wakes the
// message thread.
func (w *worker) wakeWorker() bool {
	if !w.awaitGeneration() {
		return false
	}
	now, at := monoNow(), atomic.LoadUint64(w.lat.ts)
	w.lat.h.Record(now - min(now, at))
	w.burn(w.work.Loops)
	if atomic.AddUint32(w.b, 1) == uint32(w.work.GroupSize-1) {
		futexWake(w.b, 1)
	}
	return true
}

// timerStep is cyclictest's loop: sleep until an absolute time
// (clock_nanosleep TIMER_ABSTIME on CLOCK_MONOTONIC), record how late it
// woke, work loops steps, and set the next expiry one period later (or one
// period from now when a whole period was missed, so that a stall is one
// late wake-up, not a burst).
func (w *worker) timerStep() bool {
	period := uint64(w.work.SleepUS) * 1000
	if w.lat.next == 0 {
		w.lat.next = monoNow()
	}
	w.lat.next += period
	ts := unix.NsecToTimespec(int64(w.lat.next))
	for {
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			w.fail(fmt.Errorf("timer_latency: clock_nanosleep: %w", err))
			return false
		}
	}
	now := monoNow()
	w.lat.h.Record(now - min(now, w.lat.next))
	w.burn(w.work.Loops)
	if now > w.lat.next+period {
		w.lat.next = now
	}
	return true
}

// sleepNS sleeps d ns (relative), retried on EINTR.
func sleepNS(d int64) {
	ts := unix.NsecToTimespec(d)
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
