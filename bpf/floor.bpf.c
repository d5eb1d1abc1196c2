// SPDX-License-Identifier: GPL-2.0
/*
 * The overhead floor: empty programs on exactly the tracepoints sirqtop attaches by
 * default. The benchmark compares sirqtop's cost against this, so what is measured is
 * the work sirqtop's bodies add on top of the unavoidable dispatch.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(floor_xmit) { return 0; }

SEC("tp_btf/netif_rx")
int BPF_PROG(floor_netif_rx) { return 0; }

SEC("tp_btf/softirq_raise")
int BPF_PROG(floor_raise) { return 0; }

SEC("tp_btf/softirq_entry")
int BPF_PROG(floor_entry) { return 0; }

SEC("tp_btf/softirq_exit")
int BPF_PROG(floor_exit) { return 0; }

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(floor_receive) { return 0; }
