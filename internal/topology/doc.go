// Package topology is the machine shape a run asks for, as one value with
// three renderings: QEMU's -smp and -numa options (internal/vmm/qemu), the
// own VMM's APIC ids, CPUID leaves and ACPI MADT/SRAT/SLIT
// (internal/vmm), and the guest's check of what the kernel really reports
// in sysfs (Read, Observed.Check).
//
// A shape is ktstr's: NUMA nodes × LLCs (in all, not per node) × cores per
// LLC × threads per core, written "N,L,C,T" (1,2,4,2 is 16 vCPUs: two
// LLCs of four two-thread cores on one node). CPUs are numbered thread
// first, then core, then LLC, and nodes own equal runs of LLCs:
//
//	1,2,2,2      LLC 0            LLC 1
//	             core 0  core 1   core 2  core 3
//	             cpu 0 1 cpu 2 3  cpu 4 5 cpu 6 7
//
// Memory is split evenly over the nodes unless given per node; SLIT
// distances are 10 local and 20 remote unless given. ktstr's 24 x86-64
// presets (tiny-1llc to numa4-12llc) are named shapes with their memory.
package topology
