// SPDX-License-Identifier: GPL-2.0
/*
 * Part of sirqtop.bpf.c, included once from it after state.bpf.h: --filter. A tcpdump
 * expression, compiled by libpcap and translated to eBPF in user space, becomes at load
 * time the body of the placeholders below (src/filter). It is evaluated once per skb,
 * where sirqtop first sees it; the verdict rides in the skb's in-flight entry (INF_OUT),
 * so its enqueue, raise, receive, histograms and path agree. Without a filter (cfg.filter
 * 0) no hook calls a placeholder: the calls are dead code the verifier removes.
 */
#ifndef __SIRQTOP_FILTER_BPF_H
#define __SIRQTOP_FILTER_BPF_H

/* The placeholder's marker: user space finds its copies by the constant it loads. Keep
 * equal to MAGIC in src/filter/mod.rs. */
#define SIRQ_FILTER_MAGIC 0x514952464c540002ULL

#define SIRQ_ARPHRD_ETHER 1

/*
 * The placeholder: `data` is the address of the first packet byte (an Ethernet header if
 * `l2`, an IP header otherwise), `headlen` how many bytes from there are readable, `len`
 * the packet's length; 1 = the packet matches. One function for both layers (user space
 * places both bodies, `l2` picks one): libpcap's two programs in one global function,
 * verified once, on its own. The body depends on the arguments so that the compiler
 * cannot fold a call.
 */
__noinline int sirq_filter(__u64 data, __u32 headlen, __u32 len, __u32 l2)
{
	volatile __u64 magic = SIRQ_FILTER_MAGIC;

	return (data ^ magic) != ((__u64)headlen << 32 | len | l2);
}

/* The filter's verdict on an skb whose data starts at its link (l2) or network header. */
static __always_inline bool filter_match(struct sk_buff *skb, bool l2)
{
	__u64 data = (__u64)BPF_CORE_READ(skb, data);
	__u32 len = BPF_CORE_READ(skb, len);
	__u32 headlen = len - BPF_CORE_READ(skb, data_len);

	return sirq_filter(data, headlen, len, l2);
}

/*
 * Whether entry `f` is this very skb's, seen before on its way: not received yet and just
 * transmitted on this CPU (its enqueue, an upper handing it to its lower), or received in
 * this CPU's current or previous NET_RX run (forwarded, bridged, decapsulated).
 */
static __always_inline bool filter_same_skb(struct inflight *f, __u64 ptr, struct cpu_state *st)
{
	if (f->skb != ptr)
		return false;
	if (!(f->flags & INF_RCVD))
		return st->last_xmit == ptr;
	return st->run_ts && st->run_vec == SIRQ_VEC_NET_RX &&
	       (f->rcv_run == st->run_ts || f->rcv_run == st->rx_run_prev) &&
	       f->rcv_cpu == bpf_get_smp_processor_id();
}

/*
 * At a transmit (`xmit`) or backlog enqueue: whether the hook must ignore this skb. A
 * known skb keeps its verdict; a new one is evaluated (link layer at an Ethernet
 * device's transmit, network layer otherwise). A rejected skb gets an entry that says
 * so and nothing else: the hooks after it see INF_OUT. A matching one gets its entry
 * from the hook as without a filter.
 */
static __always_inline bool filter_skip(struct sk_buff *skb, struct net_device *dev, __u64 ptr,
					bool xmit)
{
	struct cpu_state *st;
	struct inflight *f;
	bool l2;

	if (!cfg.filter)
		return false;
	f = slot_of(ptr);
	st = cpu_state();
	if (!f || !st)
		return false;
	if (filter_same_skb(f, ptr, st))
		return f->flags & INF_OUT;
	l2 = xmit && BPF_CORE_READ(dev, type) == SIRQ_ARPHRD_ETHER;
	if (filter_match(skb, l2)) {
		if (f->skb == ptr)
			f->flags &= ~INF_OUT;
		return false;
	}
	evict_check(f, ptr);
	f->skb = ptr;
	f->xmit_ts = 0;
	f->enq_ts = 0;
	f->origin.ifindex = 0;
	f->tshift = 0; /* untimed: no latency sample from it */
	f->flags = INF_OUT;
	st->last_xmit = xmit ? ptr : 0;
	return true;
}

/*
 * At a receive or drop: whether this skb is rejected. `f` is its valid in-flight entry,
 * or NULL for an skb first seen here (a NIC's, a NAPI device's): evaluated at the
 * network layer.
 */
static __always_inline bool filter_rejects(struct inflight *f, struct sk_buff *skb)
{
	if (!cfg.filter)
		return false;
	if (f)
		return f->flags & INF_OUT;
	return !filter_match(skb, false);
}

#endif /* __SIRQTOP_FILTER_BPF_H */
