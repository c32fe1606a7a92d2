// Package introspect looks into a guest kernel from the host: given the
// guest's physical memory, its vCPUs' registers and the kernel's vmlinux,
// it translates kernel virtual addresses and reads and writes typed kernel
// state, without the guest's cooperation. Snapshots (SNRQ), kernel ops
// (KORQ), failure dumps and the host-side monitor of ktstr-boot are its
// users; each backend only provides memory, pause/resume and registers.
//
// # Inputs
//
//   - Physical memory (PhysMem): ranges of host mappings in guest-physical
//     order. The own VMM gives its RAM slices (below the 3 GiB hole, and
//     from 4 GiB); QEMU's RAM is one memfd per NUMA node that the host
//     maps shared and QEMU opens as memory-backend-file,share=on (pc
//     machine: all RAM at 0 when under 3.5 GiB, else the first 3 GiB at 0
//     and the rest at 4 GiB, the nodes' memory in node order).
//   - vmlinux (Kernel): addresses from its ELF symbol table, struct
//     layouts and field offsets from the kernel's BTF (parsed by
//     cilium/ebpf's btf package). DWARF is not needed: objcopy
//     --strip-debug keeps .symtab and .BTF. Without a vmlinux every
//     request that needs a name is answered with ErrNoVmlinux.
//   - Registers (Regs): CR0, CR3 and CR4 find the page tables; all of
//     them go into a snapshot.
//
// # Address translation
//
// Kernel virtual addresses (direct map, kernel text and data, vmalloc,
// per-CPU areas) are translated by walking the guest's own 4- or 5-level
// page tables (CR4.LA57), so nothing depends on KASLR being off or on
// page_offset_base. The walk starts from the kernel's top table,
// init_top_pgt, found once: from each vCPU's CR3 (its frame, and with PTI's
// user bit 12 cleared), or, with no registers, at init_top_pgt's
// link-time physical address (phys_base 0, which holds when the kernel
// boots with nokaslr, as ktstr-boot boots it). A candidate is accepted when
// walking it for init_top_pgt lands on itself and the running kernel's
// linux_banner equals vmlinux's (ErrMismatch otherwise).
//
//	CR3 ─▶ PML5? ─▶ PML4 ─▶ PDPT ─(1 GiB)─▶ PD ─(2 MiB)─▶ PT ─▶ 4 KiB page
//
// Per-CPU variables are at their symbol's value plus __per_cpu_offset[cpu]
// (per_cpu_ptr), for cpu below nr_cpu_ids. A task is found by pid (and
// start_time, so a reused pid is "task gone") by walking init_task's
// process list and each process's thread list.
//
// # Bounds (the guest controls every length, address and pointer)
//
//	MaxRead       64 KiB  one read or write
//	MaxOpEntries  256     entries in one KORQ
//	MaxOpBytes    512 KiB bytes one KORQ reads or writes in all
//	MaxTasks      65536   entries in a task-list walk
//	MaxRunnable   1024    entries in one runqueue's runnable-list walk
//	MaxCPUs       8192    per-CPU index (and the size of __per_cpu_offset)
//
// Every pointer read from the guest is translated like any other address;
// a page-table entry or pointer outside guest RAM is ErrNotMapped, a loop
// ends at its bound. Writes are refused (ErrReadOnly) when any byte lies in
// [_text, __end_rodata), by virtual or by physical address (so an alias
// through the direct map is refused too). A kernel op is resolved entirely
// before anything is written: a failing entry writes nothing. Aligned 4-
// and 8-byte accesses are single atomic instructions (OrU32 is a locked
// OR), so Hot ops on running vCPUs are never torn.
//
// # The snapshot report
//
// Capture returns a Report (JSON, ktstr-snapshot(5)): every vCPU's
// registers; per CPU from the per-CPU runqueues (struct rq): nr_running,
// the current task's pid and comm, the rq clock, and the sched_ext part
// (scx.nr_running, scx.local_dsq.nr, the runnable list's length and its
// longest-waiting task); sched_ext's state as Linux 6.12 keeps it
// (scx_ops_enable_state_var, scx_ops.name, scx_exit_kind, scx_exit_info's
// reason and message, counters such as scx_nr_rejected, and the per-CPU
// event_stats_cpu of later kernels summed over CPUs). What this kernel
// lacks is listed under sched_ext.missing; what could not be read says
// why under errors; the rest of the report is still filled.
package introspect
