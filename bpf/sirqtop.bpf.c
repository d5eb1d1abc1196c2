// SPDX-License-Identifier: GPL-2.0
/*
 * sirqtop kernel side: one body per logical hook, thin entry points per backend
 * (tp_btf, raw_tp, fentry, kprobe). User space enables exactly one entry point per
 * hook before load. Per-packet work is aggregated here (per-CPU counters, log2
 * histograms); the ring buffer only carries rare records (first sight of an interface).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sirqtop.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load; see struct sirq_config. */
const volatile struct sirq_config cfg = {};

/* The hook bodies, by concern; the entry points per backend follow. */
#include "state.bpf.h"
#include "iface.bpf.h"
#include "filter.bpf.h"
#include "transmit.bpf.h"
#include "receive.bpf.h"
#include "softirq.bpf.h"


/* ---- entry points: tracepoints (tp_btf, raw_tp) ------------------------------------ */

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tp_veth_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(UNTRUSTED(skb, struct sk_buff), UNTRUSTED(dev, struct net_device),
			   XMIT_ANY, true);
}

SEC("raw_tp/net_dev_start_xmit")
int BPF_PROG(raw_veth_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(skb, dev, XMIT_ANY, false);
}

/* Beside a veth_xmit kprobe/fentry: the other kinds' transmits (netkit, macvlan, ...). */
SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tp_dev_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(UNTRUSTED(skb, struct sk_buff), UNTRUSTED(dev, struct net_device),
			   XMIT_NOT_VETH, true);
}

SEC("raw_tp/net_dev_start_xmit")
int BPF_PROG(raw_dev_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(skb, dev, XMIT_NOT_VETH, false);
}

SEC("tp_btf/netif_rx")
int BPF_PROG(tp_netif_rx, struct sk_buff *skb)
{
	return on_netif_rx(UNTRUSTED(skb, struct sk_buff), true);
}

SEC("raw_tp/netif_rx")
int BPF_PROG(raw_netif_rx, struct sk_buff *skb)
{
	return on_netif_rx(skb, false);
}

SEC("tp_btf/softirq_raise")
int BPF_PROG(tp_softirq_raise, unsigned int vec)
{
	return on_softirq_raise(ctx, vec);
}

SEC("raw_tp/softirq_raise")
int BPF_PROG(raw_softirq_raise, unsigned int vec)
{
	return on_softirq_raise(ctx, vec);
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(tp_softirq_entry, unsigned int vec)
{
	return on_softirq_entry(vec, true);
}

SEC("raw_tp/softirq_entry")
int BPF_PROG(raw_softirq_entry, unsigned int vec)
{
	return on_softirq_entry(vec, false);
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(tp_softirq_exit, unsigned int vec)
{
	return on_softirq_exit(vec, true);
}

SEC("raw_tp/softirq_exit")
int BPF_PROG(raw_softirq_exit, unsigned int vec)
{
	return on_softirq_exit(vec, false);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tp_netif_receive, struct sk_buff *skb)
{
	return on_netif_receive(UNTRUSTED(skb, struct sk_buff), true);
}

SEC("raw_tp/netif_receive_skb")
int BPF_PROG(raw_netif_receive, struct sk_buff *skb)
{
	return on_netif_receive(skb, false);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tp_kfree_skb, struct sk_buff *skb)
{
	return on_kfree_skb(UNTRUSTED(skb, struct sk_buff), DROP_REASON(ctx), true);
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(raw_kfree_skb, struct sk_buff *skb)
{
	return on_kfree_skb(skb, DROP_REASON(ctx), false);
}

SEC("tp_btf/napi_poll")
int BPF_PROG(tp_napi_poll, struct napi_struct *napi, int work, int budget)
{
	return on_napi_poll(UNTRUSTED(napi, struct napi_struct), work, budget, true);
}

SEC("raw_tp/napi_poll")
int BPF_PROG(raw_napi_poll, struct napi_struct *napi, int work, int budget)
{
	return on_napi_poll(napi, work, budget, false);
}

/* ---- entry points: fentry ----------------------------------------------------------- */

/*
 * Receives on another round of the kernel's receive loop. No tracepoint fires for them:
 * these see them at the functions that hand the skb to the next device, as it returns.
 */
#define ANOTHER_REDIRECT 1
#define ANOTHER_MACVLAN 2
#define ANOTHER_IPVLAN 3
#define ANOTHER_VLAN 4
#define ANOTHER_IPVLAN_NF 5
#define RX_HANDLER_ANOTHER_ 1 /* enum rx_handler_result */
#define EAGAIN_ 11

/* The skb behind a `struct sk_buff **` argument (a plain number to the verifier). */
static __always_inline int on_another_pskb(__u64 pskb)
{
	struct sk_buff *skb = NULL;

	if (bpf_probe_read_kernel(&skb, sizeof(skb), (void *)pskb) || !skb)
		return 0;
	return on_receive(skb, true, false);
}

/* tc's bpf_redirect_peer: the skb now belongs to the peer device (-EAGAIN: go round). */
SEC("fexit/skb_do_redirect")
int BPF_PROG(fexit_skb_do_redirect, struct sk_buff *skb, int ret)
{
	if (ret != -EAGAIN_)
		return 0;
	return on_receive(skb, true, true);
}

/*
 * The verifier refuses a direct read of a `struct sk_buff **` argument ("not a struct"):
 * the argument's slot is read with a helper instead (bpf_get_func_arg needs 5.17).
 */
static __always_inline int on_another_arg0(__u64 *ctx)
{
	__u64 pskb = 0;

	if (bpf_probe_read_kernel(&pskb, sizeof(pskb), &ctx[0]))
		return 0;
	return on_another_pskb(pskb);
}

SEC("fexit/macvlan_handle_frame")
int fexit_macvlan_handle_frame(__u64 *ctx)
{
	return (int)ctx[1] == RX_HANDLER_ANOTHER_ ? on_another_arg0(ctx) : 0;
}

SEC("fexit/ipvlan_handle_frame")
int fexit_ipvlan_handle_frame(__u64 *ctx)
{
	return (int)ctx[1] == RX_HANDLER_ANOTHER_ ? on_another_arg0(ctx) : 0;
}

SEC("fexit/vlan_do_receive")
int fexit_vlan_do_receive(__u64 *ctx)
{
	return (ctx[1] & 0xff) ? on_another_arg0(ctx) : 0;
}

/* ipvlan L3S: a netfilter input hook moves the skb from the master to the slave. */
SEC("fexit/ipvlan_nf_input")
int BPF_PROG(fexit_ipvlan_nf_input, void *priv, struct sk_buff *skb,
	     const struct nf_hook_state *state)
{
	if (!skb || skb->dev == state->in)
		return 0;
	return on_receive(skb, true, true);
}


SEC("fentry/veth_xmit")
int BPF_PROG(fentry_veth_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(skb, dev, XMIT_VETH, true);
}

SEC("fentry/netif_rx")
int BPF_PROG(fentry_netif_rx, struct sk_buff *skb)
{
	return on_netif_rx(skb, true);
}

/* Since 5.18 veth enqueues through __netif_rx, which does not go through netif_rx. */
SEC("fentry/__netif_rx")
int BPF_PROG(fentry___netif_rx, struct sk_buff *skb)
{
	return on_netif_rx(skb, true);
}

/*
 * dev_forward_skb enqueues through netif_rx_internal, which neither netif_rx nor
 * __netif_rx probes see: macvlan's hand-off to its lower device, ipvlan's to a sibling,
 * tc's ingress redirect. The tracepoint sees it; here `dev` is the device the skb will be
 * received on (skb->dev is set inside).
 */
SEC("fentry/dev_forward_skb")
int BPF_PROG(fentry_dev_forward_skb, struct net_device *dev, struct sk_buff *skb)
{
	return on_enqueue(skb, dev, true);
}

SEC("fentry/__raise_softirq_irqoff")
int BPF_PROG(fentry_softirq_raise, unsigned int nr)
{
	return on_softirq_raise(ctx, nr);
}

/* ---- entry points: kprobes (the design card's baseline) ---------------------------- */

SEC("kprobe/veth_xmit")
int BPF_KPROBE(kprobe_veth_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(skb, dev, XMIT_VETH, false);
}

SEC("kprobe/netif_rx")
int BPF_KPROBE(kprobe_netif_rx, struct sk_buff *skb)
{
	return on_netif_rx(skb, false);
}

SEC("kprobe/__netif_rx")
int BPF_KPROBE(kprobe___netif_rx, struct sk_buff *skb)
{
	return on_netif_rx(skb, false);
}

SEC("kprobe/dev_forward_skb")
int BPF_KPROBE(kprobe_dev_forward_skb, struct net_device *dev, struct sk_buff *skb)
{
	return on_enqueue(skb, dev, false);
}

/*
 * Kernels that inline __raise_softirq_irqoff into raise_softirq_irqoff (notrace, so no
 * kprobe or fentry there) raise the backlog's NET_RX where this cannot see it; the
 * collector notices (NET_RX runs without raises) and says so.
 */
SEC("kprobe/__raise_softirq_irqoff")
int BPF_KPROBE(kprobe_softirq_raise, unsigned int nr)
{
	return on_softirq_raise(ctx, nr);
}

/* Receives on another round, as kprobes: the entry keeps the argument, the return decides. */
static __always_inline int another_enter(__u32 fn, __u64 arg, __u64 dev)
{
	struct cpu_state *st = cpu_state();

	if (st) {
		st->another_fn = fn;
		st->another_arg = arg;
		st->another_dev = dev;
	}
	return 0;
}

/* The saved argument, if the return belongs to the entry this CPU saw last. */
static __always_inline __u64 another_take(__u32 fn, __u64 *dev)
{
	struct cpu_state *st = cpu_state();
	__u64 arg;

	if (!st || st->another_fn != fn)
		return 0;
	arg = st->another_arg;
	if (dev)
		*dev = st->another_dev;
	st->another_fn = 0;
	return arg;
}

SEC("kprobe/skb_do_redirect")
int BPF_KPROBE(kprobe_skb_do_redirect, struct sk_buff *skb)
{
	return another_enter(ANOTHER_REDIRECT, (__u64)skb, 0);
}

SEC("kretprobe/skb_do_redirect")
int BPF_KRETPROBE(kretprobe_skb_do_redirect, int ret)
{
	__u64 skb = another_take(ANOTHER_REDIRECT, NULL);

	if (!skb || ret != -EAGAIN_)
		return 0;
	return on_receive((struct sk_buff *)skb, true, false);
}

SEC("kprobe/macvlan_handle_frame")
int BPF_KPROBE(kprobe_macvlan_handle_frame, struct sk_buff **pskb)
{
	return another_enter(ANOTHER_MACVLAN, (__u64)pskb, 0);
}

SEC("kretprobe/macvlan_handle_frame")
int BPF_KRETPROBE(kretprobe_macvlan_handle_frame, int ret)
{
	__u64 pskb = another_take(ANOTHER_MACVLAN, NULL);

	return pskb && ret == RX_HANDLER_ANOTHER_ ? on_another_pskb(pskb) : 0;
}

SEC("kprobe/ipvlan_handle_frame")
int BPF_KPROBE(kprobe_ipvlan_handle_frame, struct sk_buff **pskb)
{
	return another_enter(ANOTHER_IPVLAN, (__u64)pskb, 0);
}

SEC("kretprobe/ipvlan_handle_frame")
int BPF_KRETPROBE(kretprobe_ipvlan_handle_frame, int ret)
{
	__u64 pskb = another_take(ANOTHER_IPVLAN, NULL);

	return pskb && ret == RX_HANDLER_ANOTHER_ ? on_another_pskb(pskb) : 0;
}

SEC("kprobe/vlan_do_receive")
int BPF_KPROBE(kprobe_vlan_do_receive, struct sk_buff **pskb)
{
	return another_enter(ANOTHER_VLAN, (__u64)pskb, 0);
}

SEC("kretprobe/vlan_do_receive")
int BPF_KRETPROBE(kretprobe_vlan_do_receive, int ret)
{
	__u64 pskb = another_take(ANOTHER_VLAN, NULL);

	/* bool: only the low byte is defined */
	return pskb && (ret & 0xff) ? on_another_pskb(pskb) : 0;
}

SEC("kprobe/ipvlan_nf_input")
int BPF_KPROBE(kprobe_ipvlan_nf_input, void *priv, struct sk_buff *skb)
{
	return another_enter(ANOTHER_IPVLAN_NF, (__u64)skb, (__u64)BPF_CORE_READ(skb, dev));
}

SEC("kretprobe/ipvlan_nf_input")
int BPF_KRETPROBE(kretprobe_ipvlan_nf_input)
{
	__u64 dev0 = 0;
	__u64 skb = another_take(ANOTHER_IPVLAN_NF, &dev0);

	if (!skb || (__u64)BPF_CORE_READ((struct sk_buff *)skb, dev) == dev0)
		return 0;
	return on_receive((struct sk_buff *)skb, true, false);
}
