package workload

import (
	"fmt"
	"math"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Scheduling policies a worker can run under (SpawnSpec.Policy).
var policies = map[string]uint32{
	"normal": unix.SCHED_NORMAL, "batch": unix.SCHED_BATCH, "idle": unix.SCHED_IDLE,
	"fifo": unix.SCHED_FIFO, "rr": unix.SCHED_RR, "ext": 7, // SCHED_EXT
}

// setPolicy puts every thread of this process under policy.
func setPolicy(policy string, prio int) error {
	p, ok := policies[policy]
	if !ok {
		return fmt.Errorf("unknown policy %q", policy)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: p, Priority: uint32(prio)}
	if p == unix.SCHED_NORMAL || p == unix.SCHED_BATCH || p == 7 {
		// Keep the nice value already set.
		if n, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err == nil {
			attr.Nice = int32(20 - n)
		}
	}
	return allThreads(func(tid int) error { return unix.SchedSetAttr(tid, &attr, 0) })
}

// setupMore sets up the step of this file's types.
func (w *worker) setupMore() error {
	wk := w.work
	switch w.cfg.Work.Type {
	case WakeChain:
		n, role := uint32(wk.GroupSize), uint32(w.cfg.Role)
		w.step = func() bool {
			// Wait for this worker's turn in the ring, work, pass it on.
			for {
				v := atomic.LoadUint32(w.a)
				if v%n == role {
					break
				}
				if w.stopping() {
					return false
				}
				futexWait(w.a, v, wakeWait)
			}
			w.burn(wk.Loops)
			atomic.AddUint32(w.a, 1)
			futexWake(w.a, math.MaxInt32)
			return true
		}
	case ThunderingHerd:
		if w.cfg.Role == 0 {
			w.step = func() bool {
				sleepUS(wk.SleepUS)
				atomic.AddUint32(w.a, 1)
				futexWake(w.a, math.MaxInt32)
				return true
			}
		} else {
			w.step = func() bool {
				if !w.awaitGeneration() {
					return false
				}
				w.burn(wk.Loops)
				return true
			}
		}
	case RTStarvation:
		if w.cfg.Role == 0 {
			if err := setPolicy("fifo", 1); err != nil {
				return fmt.Errorf("rt_starvation: SCHED_FIFO: %w", err)
			}
			w.step = func() bool { w.busy(wk.SpinUS); sleepUS(wk.SleepUS); return true }
		} else {
			w.step = w.spin
		}
	case PriorityInversion:
		nice := []int{InvLowNice, InvHighNice, InvMidNice}[w.cfg.Role]
		if err := allThreads(func(tid int) error { return unix.Setpriority(unix.PRIO_PROCESS, tid, nice) }); err != nil {
			return fmt.Errorf("priority_inversion: nice %d: %w", nice, err)
		}
		switch w.cfg.Role {
		case 0: // low: holds the lock long
			w.step = func() bool {
				if !w.lock() {
					return false
				}
				w.burn(wk.HoldLoops)
				w.unlock()
				w.burn(wk.Loops)
				return true
			}
		case 1: // high: wants the lock briefly, often
			w.step = func() bool {
				w.burn(wk.Loops)
				if !w.lock() {
					return false
				}
				w.burn(wk.Loops)
				w.unlock()
				sleepUS(100)
				return true
			}
		default: // medium: a CPU hog between them
			w.step = func() bool { w.burn(wk.HoldLoops); return true }
		}
	case PreemptStorm:
		w.step = func() bool { w.busy(wk.SpinUS); sleepUS(wk.SleepUS); return true }
	case PageFaultChurn:
		size, pg := wk.SizeKB<<10, unix.Getpagesize()
		w.step = func() bool {
			m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				w.fail(fmt.Errorf("page_fault_churn: mmap %d KiB: %w", wk.SizeKB, err))
				return false
			}
			for i := 0; i < len(m); i += pg {
				m[i] = byte(i)
			}
			unix.Munmap(m)
			return true
		}
	case IdleChurn:
		w.step = func() bool { w.burn(wk.Loops); sleepUS(wk.SleepUS); return true }
	case IOSyncWrite:
		fd, err := unix.MemfdCreate("ktstr-io", unix.MFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("io_sync_write: memfd_create: %w", err)
		}
		buf, off, size := make([]byte, 4096), int64(0), int64(wk.SizeKB)<<10
		w.step = func() bool {
			if _, err := unix.Pwrite(fd, buf, off); err != nil {
				w.fail(fmt.Errorf("io_sync_write: pwrite: %w", err))
				return false
			}
			if err := unix.Fdatasync(fd); err != nil {
				w.fail(fmt.Errorf("io_sync_write: fdatasync: %w", err))
				return false
			}
			off = (off + 4096) % max(size, 4096)
			return true
		}
	case CacheYield:
		if err := w.setupCache(); err != nil {
			return err
		}
		w.step = func() bool { w.cache(); syscall.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0); return true }
	case Sequence:
		fd := -1
		for _, p := range wk.Phases {
			if p.IOKB > 0 && fd < 0 {
				var err error
				if fd, err = unix.MemfdCreate("ktstr-seq", unix.MFD_CLOEXEC); err != nil {
					return fmt.Errorf("sequence: memfd_create: %w", err)
				}
			}
		}
		w.step = func() bool {
			for _, p := range wk.Phases {
				switch {
				case p.SpinUS > 0:
					w.busy(p.SpinUS)
				case p.SleepUS > 0:
					sleepUS(p.SleepUS)
				case p.Yield > 0:
					for range p.Yield {
						syscall.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
					}
				case p.IOKB > 0:
					if _, err := unix.Pwrite(fd, make([]byte, p.IOKB<<10), 0); err != nil {
						w.fail(fmt.Errorf("sequence: pwrite: %w", err))
						return false
					}
					unix.Fdatasync(fd)
				}
				if w.stop.Load() {
					return true
				}
			}
			return true
		}
	case SignalStorm:
		// Block SIGUSR1 on this thread, so it waits for it with
		// sigtimedwait and no handler runs; publish the pid for the peer.
		var set unix.Sigset_t
		set.Val[0] = 1 << (uint(unix.SIGUSR1) - 1)
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
			return fmt.Errorf("signal_storm: block SIGUSR1: %w", err)
		}
		mine, peer := w.a, w.b
		if w.cfg.Role == 1 {
			mine, peer = w.b, w.a
		}
		atomic.StoreUint32(mine, uint32(unix.Getpid()))
		first := w.cfg.Role == 0
		w.step = func() bool {
			w.burn(wk.Loops)
			if first {
				first = false
			} else {
				for !sigWait(&set, wakeWait) {
					if w.stopping() {
						return false
					}
				}
			}
			if p := int(atomic.LoadUint32(peer)); p > 0 {
				if err := unix.Tgkill(p, p, unix.SIGUSR1); err != nil && err != unix.ESRCH {
					w.fail(fmt.Errorf("signal_storm: tgkill %d: %w", p, err))
					return false
				}
			}
			return true
		}
	case EpollStorm:
		tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("epoll_storm: timerfd_create: %w", err)
		}
		it := unix.NsecToTimespec(int64(wk.SleepUS) * 1000)
		if err := unix.TimerfdSettime(tfd, 0, &unix.ItimerSpec{Interval: it, Value: it}, nil); err != nil {
			return fmt.Errorf("epoll_storm: timerfd_settime: %w", err)
		}
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("epoll_storm: epoll_create1: %w", err)
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}); err != nil {
			return fmt.Errorf("epoll_storm: epoll_ctl: %w", err)
		}
		events, buf := make([]unix.EpollEvent, 1), make([]byte, 8)
		w.step = func() bool {
			for {
				n, err := unix.EpollWait(ep, events, int(wakeWait/time.Millisecond))
				if n > 0 {
					break
				}
				if err != nil && err != unix.EINTR {
					w.fail(fmt.Errorf("epoll_storm: epoll_wait: %w", err))
					return false
				}
				if w.stop.Load() {
					return false
				}
			}
			unix.Read(tfd, buf)
			w.burn(wk.Loops)
			return true
		}
	case AsymmetricWaker:
		// A futex ping-pong whose two sides work unequally: the waker
		// computes loops steps per hand-off, the wakee hold_loops.
		n := wk.Loops
		if w.cfg.Role == 1 {
			n = wk.HoldLoops
		}
		w.step = func() bool { return w.futexHandOff(n) }
	case CgroupChurn:
		return w.setupCgroupChurn()
	case CgroupAttachStorm:
		return w.setupAttachStorm()
	case NUMAMigrationChurn:
		return w.setupNUMAChurn()
	case FanOutCompute:
		if w.cfg.Role == 0 {
			w.step = w.fanoutWaker
		} else {
			w.step = w.fanoutWaiter
		}
	case ProducerConsumer:
		if w.cfg.Role == 0 {
			w.step = func() bool {
				w.burn(wk.Loops)
				for {
					v := atomic.LoadUint32(w.a)
					if v < PCQueue {
						break
					}
					if w.stopping() {
						return false
					}
					futexWait(w.a, v, wakeWait)
				}
				atomic.AddUint32(w.a, 1)
				futexWake(w.a, math.MaxInt32)
				return true
			}
		} else {
			w.step = func() bool {
				for {
					v := atomic.LoadUint32(w.a)
					if v > 0 && atomic.CompareAndSwapUint32(w.a, v, v-1) {
						if v == PCQueue {
							futexWake(w.a, math.MaxInt32) // the producer waits for room
						}
						break
					}
					if w.stopping() {
						return false
					}
					if v == 0 {
						futexWait(w.a, 0, wakeWait)
					}
				}
				w.burn(4 * wk.Loops)
				return true
			}
		}
	}
	return nil
}

// busy spins for us microseconds of wall-clock time (or until Stop).
func (w *worker) busy(us int) {
	until := time.Now().Add(time.Duration(us) * time.Microsecond)
	for time.Now().Before(until) && !w.stop.Load() {
		w.burn(64)
	}
}

func sleepUS(us int) {
	ts := unix.NsecToTimespec(int64(us) * 1000)
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
