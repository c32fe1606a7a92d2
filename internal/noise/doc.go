// Package noise measures how much the host starved a VM's vCPU threads
// during a run, so that a verdict can name host contention instead of
// blaming the scheduler under test for it.
//
// A vCPU thread that wants to run but waits for a host CPU loses guest
// time the guest cannot see (QEMU's software emulation has no steal
// time): to the guest's workers it looks like an unfair scheduler or a
// long gap. The kernel counts that wait per thread: the second field of
// /proc/PID/task/TID/schedstat is the time it spent runnable on a run
// queue (run delay), the first its time on a CPU, both in nanoseconds
// and both zero when the thread was created. A Sampler reads them for
// the VMM's vCPU threads (QEMU's "CPU N/TCG" and "CPU N/KVM" threads;
// every thread of ktstr-boot for its own VMM) while the VM runs, and the
// host's CPU pressure (/proc/pressure/cpu, "some" total, in
// microseconds) at the start and end, and ktstr-boot writes the result
// as noise.json in the run directory:
//
//	{
//	  "schema": 1,
//	  "backend": "qemu",
//	  "window_ns": 5400000000,           measured from the VM's start
//	  "threads": [{"name": "CPU 0/TCG", "run_ns": 4100000000, "delay_ns": 900000000}, ...],
//	  "psi_cpu_some_us": 2100000          absent where PSI is not available
//	}
//
// Steal is the share of the vCPUs' runnable time (run + delay, summed
// over the threads) spent waiting: 0 on an idle host, about 50% for two
// busy vCPUs sharing one host CPU with another VM's two.
package noise
