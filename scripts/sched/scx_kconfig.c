/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_kconfig's loader: loads and attaches the scheduler, says which
 * CONFIG_NR_CPUS libbpf found, and runs until SIGINT or SIGTERM (or the
 * kernel throws the scheduler out).
 */
#include <stdio.h>
#include <unistd.h>
#include <signal.h>
#include <bpf/bpf.h>
#include <scx/common.h>
#include "scx_kconfig.bpf.skel.h"

static volatile int exit_req;

static int libbpf_print_fn(enum libbpf_print_level level, const char *format, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, format, args);
}

static void sigint_handler(int sig)
{
	exit_req = 1;
}

int main(int argc, char **argv)
{
	struct scx_kconfig *skel;
	struct bpf_link *link;

	libbpf_set_print(libbpf_print_fn);
	signal(SIGINT, sigint_handler);
	signal(SIGTERM, sigint_handler);
	skel = SCX_OPS_OPEN(kconfig_ops, scx_kconfig);
	SCX_OPS_LOAD(skel, kconfig_ops, scx_kconfig, uei);
	printf("kconfig: CONFIG_NR_CPUS=%d\n", skel->kconfig->CONFIG_NR_CPUS);
	fflush(stdout);
	link = SCX_OPS_ATTACH(skel, kconfig_ops, scx_kconfig);

	while (!exit_req && !UEI_EXITED(skel, uei))
		sleep(1);

	bpf_link__destroy(link);
	UEI_REPORT(skel, uei);
	scx_kconfig__destroy(skel);
	return 0;
}
