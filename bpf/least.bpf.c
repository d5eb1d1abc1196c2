// SPDX-License-Identifier: GPL-2.0
/*
 * The least exact work on sirqtop's hooks, for the benchmark (condition `least`): a per-CPU
 * count at each hook and the softirq run time (a clock read at entry and at exit). No
 * interface keys, no in-flight table, no histograms. What this costs beyond the floor (empty
 * programs) is what any tracer pays to count these events exactly and time softirq runs;
 * sirqtop's own work is judged against it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Local to this benchmark object: nothing in user space reads it. */
struct least_cpu {
	__u64 events[6];
	__u64 run_start;
	__u64 run_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct least_cpu);
} least_cpus SEC(".maps");

static __always_inline struct least_cpu *this_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&least_cpus, &zero);
}

static __always_inline void count(int hook)
{
	struct least_cpu *c = this_cpu();

	if (c)
		c->events[hook]++;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(least_xmit) { count(0); return 0; }

SEC("tp_btf/netif_rx")
int BPF_PROG(least_netif_rx) { count(1); return 0; }

SEC("tp_btf/softirq_raise")
int BPF_PROG(least_raise) { count(2); return 0; }

SEC("tp_btf/softirq_entry")
int BPF_PROG(least_entry)
{
	struct least_cpu *c = this_cpu();

	if (c) {
		c->events[3]++;
		c->run_start = bpf_ktime_get_ns();
	}
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(least_exit)
{
	struct least_cpu *c = this_cpu();

	if (c && c->run_start) {
		c->events[4]++;
		c->run_ns += bpf_ktime_get_ns() - c->run_start;
		c->run_start = 0;
	}
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(least_receive) { count(5); return 0; }
