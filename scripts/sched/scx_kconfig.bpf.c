/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_kconfig: the smallest sched_ext scheduler that reads the kernel's
 * configuration through a __kconfig extern, as scx's arena spin lock reads
 * CONFIG_NR_CPUS. libbpf resolves the extern when it loads the program,
 * from /boot/config-$(uname -r) or else /proc/config.gz; with neither the
 * load fails with "failed to open system Kconfig". ktstr's tests use it to
 * check that the guest provides the kernel's configuration.
 *
 * Scheduling: one global FIFO queue, an idle CPU taken at wake-up.
 */
#include <scx/common.bpf.h>

char _license[] SEC("license") = "GPL";

extern int CONFIG_NR_CPUS __kconfig;

UEI_DEFINE(uei);

s32 BPF_STRUCT_OPS(kconfig_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	return cpu;
}

void BPF_STRUCT_OPS(kconfig_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dispatch(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(kconfig_init)
{
	if (CONFIG_NR_CPUS < 1)
		return -EINVAL;
	return 0;
}

void BPF_STRUCT_OPS(kconfig_exit, struct scx_exit_info *ei)
{
	UEI_RECORD(uei, ei);
}

SCX_OPS_DEFINE(kconfig_ops,
	       .select_cpu		= (void *)kconfig_select_cpu,
	       .enqueue			= (void *)kconfig_enqueue,
	       .init			= (void *)kconfig_init,
	       .exit			= (void *)kconfig_exit,
	       .name			= "kconfig");
