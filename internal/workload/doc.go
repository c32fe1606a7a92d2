// Package workload runs the work a scenario puts on the scheduler under
// test: sets of worker processes, each running one work type in a loop of
// iterations, each measuring itself from the kernel's own accounting.
//
// # Work types
//
// One iteration is the unit of work the statistics count. "LCG steps" are
// steps of a 64-bit linear congruential generator, about a nanosecond each:
// pure CPU work that touches no memory. A zero parameter takes its default;
// a parameter a type does not list must be zero (Validate says so).
//
//	| type           | one iteration                                                                 | parameters (default)                           | workers      |
//	|----------------|-------------------------------------------------------------------------------|------------------------------------------------|--------------|
//	| spin           | loops LCG steps                                                               | loops (20000)                                  | independent  |
//	| yield          | loops LCG steps, then sched_yield(2)                                          | loops (1000)                                   | independent  |
//	| bursty         | busy for spin_us of wall-clock time, then nanosleep(2) for sleep_us           | spin_us (500), sleep_us (500, at most 1 s)     | independent  |
//	| pipe           | one round trip of one byte over two pipes: the even worker of a pair writes   | loops (0) LCG steps before each hand-off       | pairs        |
//	|                | then reads the answer, the odd one reads then answers (blocking read/write)   |                                                |              |
//	| futex_pingpong | one hand-off of a shared turn word: wait (FUTEX_WAIT) until the word's parity | loops (0) LCG steps before each hand-off       | pairs        |
//	|                | is this worker's, add one, FUTEX_WAKE the peer                                |                                                |              |
//	| futex_fanout   | waker: loops LCG steps, bump the group's generation word, FUTEX_WAKE all      | loops (1000), group_size (4)                   | group_size   |
//	|                | waiters, wait until all acknowledged; waiter: wait for a new generation,      |                                                |              |
//	|                | loops LCG steps, acknowledge (the last one wakes the waker)                   |                                                |              |
//	| fork_exit      | loops LCG steps, fork (a bare clone(SIGCHLD)) a child that calls exit_group   | loops (0)                                      | independent  |
//	|                | at once, wait4(2) for it and check it exited with status 0                    |                                                |              |
//	| cache          | touch (read-modify-write) loops cache lines of a private buffer of size_kb,   | loops (1024 lines), size_kb (32768 = 32 MiB,   | independent  |
//	|                | walking it with an odd stride of about 0.618 of its size                      | rounded down to a power of two)                |              |
//	| nice_sweep     | as spin; worker i of n runs at nice -10+20*i/(n-1), or nices[i%len(nices)]    | loops (20000), nices (sweep -10..+10)          | independent  |
//	| affinity_churn | as spin; every "every" iterations it pins itself to the next CPU of the mask  | loops (20000), every (10)                      | independent  |
//	|                | it started with (round robin); at the end it restores that mask               |                                                |              |
//	| mutex          | loops LCG steps, take a futex mutex shared by the group (0 free, 1 locked,    | loops (1000), hold_loops (1000),               | group_size   |
//	|                | 2 contended), hold_loops LCG steps inside, increment the group's counter      | group_size (0: all the spawn's workers)        | (0: all)     |
//	|                | non-atomically inside the lock, unlock                                        |                                                |              |
//	| wake_chain     | a ring of group_size workers passing one turn word: wait (FUTEX_WAIT) for     | loops (1000), group_size (4)                   | group_size   |
//	|                | this worker's turn, loops LCG steps, advance the word, FUTEX_WAKE all         |                                                |              |
//	| thundering_herd | waker: nanosleep sleep_us, bump the generation, FUTEX_WAKE all; waiter: wait  | loops (1000), sleep_us (1000), group_size (8)  | group_size   |
//	|                | for a new generation, loops LCG steps (one herd wake-up)                      |                                                |              |
//	| rt_starvation  | worker 0 of a group runs SCHED_FIFO 1: busy spin_us, sleep sleep_us; the      | loops (20000), spin_us (10000), sleep_us       | group_size   |
//	|                | others spin loops LCG steps under their own policy beside it                  | (2000), group_size (2)                         | (2)          |
//	| priority_inversion | low (nice 19): take the group's futex mutex, hold_loops inside, release; | loops (1000), hold_loops (100000)              | threes       |
//	|                | high (nice -10): loops, take it briefly, sleep 100 us; medium (nice 0): spin  |                                                |              |
//	|                | hold_loops                                                                    |                                                |              |
//	| preempt_storm  | as bursty, with short bursts and sleeps: wake-ups that preempt the others     | spin_us (20), sleep_us (200)                   | independent  |
//	| page_fault_churn | map size_kb of anonymous memory, write each page (a fault each), unmap      | size_kb (1024)                                 | independent  |
//	| idle_churn     | loops LCG steps, nanosleep sleep_us: CPUs go idle and wake all the time       | loops (100), sleep_us (50)                     | independent  |
//	| io_sync_write  | pwrite 4 KiB into a memfd (tmpfs) at a rotating offset within size_kb, then   | size_kb (256)                                  | independent  |
//	|                | fdatasync                                                                     |                                                |              |
//	| cache_yield    | as cache, then sched_yield(2)                                                 | loops (256 lines), size_kb (4096)              | independent  |
//	| sequence       | each of phases in order: {"spin_us": N} busy, {"sleep_us": N} nanosleep,      | phases (500 us busy, 500 us asleep, 1 yield)   | independent  |
//	|                | {"yield": N} sched_yield N times, {"io_kb": N} write N KiB to a memfd, sync   |                                                |              |
//	| signal_storm   | a pair passing SIGUSR1 back and forth (tgkill; the receiver waits in          | loops (0) LCG steps before each send           | pairs        |
//	|                | sigtimedwait with the signal blocked): one signal received                    |                                                |              |
//	| epoll_storm    | epoll_wait on a timerfd firing every sleep_us, read it, loops LCG steps       | loops (100), sleep_us (100)                    | independent  |
//	| fan_out_compute | as futex_fanout, with heavy waiters: the waker hands out work and waits for  | loops (20000), group_size (4)                  | group_size   |
//	|                | every waiter to finish its share                                              |                                                |              |
//	| producer_consumer | producer: loops LCG steps, queue a token (at most 64 queued, else wait);   | loops (1000), group_size (4)                   | group_size   |
//	|                | consumers: take a token, 4*loops LCG steps (consumers lag: an imbalance)      |                                                |              |
//	| asymmetric_waker | as futex_pingpong with unequal sides: the waker computes loops LCG steps    | loops (20000), hold_loops (100)                | pairs        |
//	|                | per hand-off, the wakee hold_loops, so one wakes far more than it runs        |                                                |              |
//	| cgroup_churn   | create the leaf cgroup ktstr-churn-PID (see below), move in (cgroup.procs),   | loops (10000)                                  | independent  |
//	|                | loops LCG steps, move back, rmdir it: a new cgroup each time                  |                                                |              |
//	| cgroup_attach_storm | loops LCG steps, then move into the other of two leaf cgroups            | loops (10000)                                  | independent  |
//	|                | (ktstr-attach-PID-a, -b) it made at setup                                     |                                                |              |
//	| numa_migration_churn | pin itself to the next NUMA node's CPUs (of those it started with; on   | size_kb (4096)                                 | independent  |
//	|                | one node, the next half of them), then write each page of its size_kb buffer  |                                                |              |
//	| wake_latency   | schbench's: a message thread (the first of a group) pauses sleep_us, stamps   | loops (10000), sleep_us (100),                 | group_size   |
//	|                | the time, bumps the group's generation and FUTEX_WAKEs the others; each woken | group_size (4)                                 |              |
//	|                | worker records now less the stamp (wake-up latency), loops LCG steps, acks    |                                                |              |
//	| timer_latency  | cyclictest's: clock_nanosleep(TIMER_ABSTIME) to the next period of sleep_us,  | sleep_us (1000: the period), loops (0)         | independent  |
//	|                | record how late it woke (timer latency), then loops LCG steps                 |                                                |              |
//	| open_loop      | a generator (the first of a group) issues requests at fixed times, one every  | sleep_us (200: the period), loops (20000),     | group_size   |
//	|                | sleep_us, whether or not the servers keep up; a server takes the next one,    | group_size (3)                                 |              |
//	|                | serves it (loops LCG steps) and records arrival to done (request latency)     |                                                |              |
//
// The latency types record each wake-up's latency, measured by the woken
// task itself from CLOCK_MONOTONIC, in a bounded log-bucketed histogram
// (internal/hist: exact below 128 ns, within 1/64 above, fixed memory);
// the message thread of wake_latency and the generator of open_loop
// record none. open_loop's latency runs from a request's scheduled
// arrival, not from when it was sent, so a late generator or a queue
// shows in it (no coordinated omission); its servers' iterations are the
// requests served. Its wake-up latency
// includes the run-queue wait that schedstat's wait_ns counts, and the
// wake-up path before it.
//
// cgroup_churn and cgroup_attach_storm move the whole worker process
// (every thread) by writing its PID to cgroup.procs: each iteration is a
// cgroup migration (the threadgroup lock held for writing, the tasks'
// css_set changed; cgroup_churn also creates and destroys a cgroup). The
// worker's own cgroup (/proc/self/cgroup on the cgroup v2 mount) holds
// processes, so cgroup v2's "no internal processes" rule forbids
// controllers on its children. Where its parent enables controllers for
// its children (a scenario's cgroups), the leaves are therefore made
// beside the worker's cgroup, as its siblings, with its cpuset.cpus,
// cpuset.mems, cpu.weight and cpu.max copied (cgroup_attach_storm copies
// again when the cpuset changes): the leaves have the cpu controller, so
// each move changes the task's cpu cgroup and reaches the scheduler's
// cgroup callbacks (sched_ext's cgroup_init and cgroup_exit for each
// created and removed leaf, cgroup_prep_move and cgroup_move for each
// move). Elsewhere they are made under the worker's cgroup, without
// controllers, and the moves stay inside cgroup core. A worker in a leaf
// is outside its cgroup: a freeze of its cgroup catches cgroup_churn
// when it moves back, cgroup_attach_storm not at all. A worker that
// cannot create or enter the leaves (no cgroup v2, no write access)
// fails its setup, and Spawn reports why; on stop each moves back to its
// cgroup and removes its leaves (cgroup.Group.Remove removes those a
// killed worker left). cgroup_churn makes its next leaf for wherever the
// worker is (a scenario's move_tasks is kept); cgroup_attach_storm keeps
// moving between its two leaves, so a move_tasks of its cgroup lasts one
// move.
// numa_migration_churn's pages follow the task only where the kernel's
// NUMA balancing is on (kernel.numa_balancing); with one NUMA node it
// still runs, alternating between the two halves of its CPUs (a single
// CPU: it only re-touches), and at the end it gets its whole mask back.
//
// A worker may run under a scheduling policy of its own (SpawnSpec.Policy:
// normal, batch, idle, fifo, rr with RTPriority 1..99, or ext, which puts
// it in sched_ext's hands when a BPF scheduler is loaded).
//
// Grouped types need a worker count that is a multiple of the group
// (SpawnSpec.Validate): pairs are workers 2k and 2k+1; groups are
// consecutive indexes, the first of a futex_fanout group being its waker.
// A Stop of a mutex group checks that each lock's counter equals the sum
// of its workers' iterations, which fails if the lock did not exclude.
// cache's default is meant to exceed the last-level cache; on a machine
// with a larger LLC set size_kb to at least twice it.
//
// # Process model
//
// A worker is a real process, so the scheduler sees one task per worker:
// Spawn re-executes the current executable (/proc/self/exe, which works
// from a static binary and from a deleted one) with a hidden first
// argument. The program's main, and a test binary's TestMain, must call
// IsWorker(os.Args) first and exit with WorkerMain(os.Args). When this
// package is imported by a process that IsWorker, its init locks the main
// goroutine to the main thread, so the work loop runs on the thread whose
// TID is the PID: /proc/PID/schedstat, /proc/PID/sched, comm and nice seen
// from outside describe the working task.
//
// Each worker receives, besides its configuration (JSON on its command
// line), these files:
//
//	| fd  | what                                                                           |
//	|-----|--------------------------------------------------------------------------------|
//	| 3   | control pipe, read end: 'g' and the release time (CLOCK_MONOTONIC ns, u64 LE)  |
//	|     | release the worker; end of file means stop                                     |
//	| 4   | report pipe, write end: "ready\n" or "error: why\n" after setup; the JSON      |
//	|     | Stats line after stop                                                          |
//	| 5   | the progress page: a memfd mapped MAP_SHARED by the workers and the parent     |
//	| 6   | futex_pingpong, futex_fanout, mutex: a memfd mapped MAP_SHARED by all workers  |
//	| 6-7 | pipe: its read end and write end of the pair's two pipes                       |
//
// The shared memory holds a stop word, then one 256-byte slot per group
// whose words each sit on their own cache line: word A at +0 (turn,
// generation or lock), word B at +64 (acknowledgements), a 64-bit counter
// at +128 (mutex). Futex waits time out after 100 ms so that a worker
// whose peer died still notices Stop.
//
// Spawn starts the processes, with clone3(CLONE_INTO_CGROUP) when
// CgroupDir is set so they never run outside it. Each worker names itself
// (comm = Name, or the type, cut to 15 bytes), applies Nice and Affinity to
// every one of its threads, maps its buffers, and says "ready"; when all
// are ready Spawn releases them together, so the measured windows start at
// the same moment. Stop raises the stop word, wakes every futex, closes the
// control pipes, reads each report and reaps each process, all bounded by
// its timeout; a worker still running then is killed with SIGKILL and
// reported as TimedOut. A worker that died (a signal, a non-zero exit) is
// reported with Exited, ExitCode and Signal and Reported false; it is never
// dropped. If the parent dies, the control pipes reach end of file and the
// workers stop by themselves.
//
// A pipe worker that ends normally sends the byte 'x' before closing its
// pipes, so its peer can tell a peer that stopped from one that died (end
// of file without 'x': reported as an error).
//
// A worker blocked in a pipe read whose peer is stopped (SIGSTOP) but not
// dead cannot see Stop; Stop's timeout kills it. A mutex holder killed
// inside the lock leaves the others waiting until Stop: their iterations
// stop, which the stats show.
//
// # Progress
//
// Each worker publishes its progress while it runs in its 256-byte slot
// of the progress page (progress_linux.go has the layout): iterations,
// the time of its last completion and its longest gap so far, after each
// iteration; the CPUs it completed iterations on; and, before it says
// "ready", the kernel's accounting at the start of its window. Group's
// Iterations sums the iterations (cheap: no system call); Progress adds
// the kernel's accounting now, read from /proc/PID/schedstat and
// /proc/PID/sched, less that start, so that a caller can cut the
// measurements at any moment (a scenario's steps, a scheduler that
// detached).
//
// # Statistics
//
// All measured by the worker for its work thread over its window, which
// opens at the release time Spawn stamped (so a worker that is slow to run
// after the release shows it as a gap and as run-queue wait, not as a
// shorter window) and closes when the worker saw Stop or could not go on.
// The kernel counters are read just before the worker blocks waiting for
// the release and again at the end:
//
//	| field                     | meaning                                                        | source                                         |
//	|---------------------------|----------------------------------------------------------------|------------------------------------------------|
//	| iterations                | iterations completed                                           | the loop                                       |
//	| wall_ns                   | length of the window                                           | CLOCK_MONOTONIC, from the release time         |
//	| run_ns                    | time on a CPU                                                  | /proc/thread-self/schedstat field 1, delta     |
//	| wait_ns                   | time runnable but waiting on a run queue                       | /proc/thread-self/schedstat field 2, delta     |
//	| timeslices                | times it was put on a CPU                                      | /proc/thread-self/schedstat field 3, delta     |
//	| max_gap_ns                | longest wall-clock time between two iteration completions,     | CLOCK_MONOTONIC at each completion             |
//	|                           | the window's opening and end counting as completions: the      |                                                |
//	|                           | longest stall, including any blocking the type itself does     |                                                |
//	| rate_slices, rate_cv      | whole 100 ms slices of the window, and the coefficient of      | CLOCK_MONOTONIC at each completion; Welford's  |
//	|                           | variation (population) of the iterations completed in each     | running variance (fixed memory)                |
//	| latency, latency_kind     | wake_latency, timer_latency: the histogram (hist.Sparse) of    | CLOCK_MONOTONIC, taken by the woken task       |
//	|                           | the latencies, and which ("wake", "timer")                     |                                                |
//	| migrations                | moves between CPUs                                             | se.nr_migrations in /proc/thread-self/sched,   |
//	|                           |                                                                | delta; else cpu_changes ("migrations_from")    |
//	| cpu_changes               | iterations that completed on another CPU than the previous one | getcpu(2) after each iteration                 |
//	| cpus                      | sorted CPUs iterations completed on, and the one it started on | getcpu(2) after each iteration                 |
//	| voluntary_ctxt_switches   | switches away because it blocked                               | /proc/thread-self/status, delta                |
//	| involuntary_ctxt_switches | switches away because it was preempted                         | /proc/thread-self/status, delta                |
//	| nice                      | the work thread's nice value at the end                        | getpriority(2)                                 |
//	| tid                       | the work thread (equals pid)                                   | gettid(2)                                      |
//
// Only the work thread is measured: the Go runtime's other threads of the
// worker (garbage collector, timers) are idle housekeeping, and no work
// type runs work on them. The children of fork_exit are separate tasks and
// are not counted in the parent's run time.
//
// The parent adds: reported (the worker delivered these numbers), exited
// (it ended abnormally), exit_code, signal, timed_out (Stop killed it),
// and error (the worker's own complaint, such as a pipe peer that went
// away, or its last stderr lines).
package workload
