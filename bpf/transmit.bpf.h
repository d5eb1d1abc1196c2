// SPDX-License-Identifier: GPL-2.0
/*
 * Part of sirqtop.bpf.c, included once from it, in order: device kinds, path continuation, the transmit, enqueue and raise bodies.
 */
#ifndef __SIRQTOP_TRANSMIT_BPF_H
#define __SIRQTOP_TRANSMIT_BPF_H

static __always_inline bool kind_is(const char *k, const char *want, int n)
{
	for (int i = 0; i < n; i++)
		if (k[i] != want[i])
			return false;
	return true;
}

/* The class of a kind's name (first sight of a kind only: a few byte compares). */
static __always_inline __u8 kind_class(const char *k)
{
	if (kind_is(k, "veth", 5) || kind_is(k, "netkit", 7))
		return KIND_PAIR;
	if (kind_is(k, "macvlan", 8) || kind_is(k, "macvtap", 8))
		return KIND_UPPER;
	if (kind_is(k, "ipvlan", 7) || kind_is(k, "ipvtap", 7) || kind_is(k, "vlan", 5) ||
	    kind_is(k, "vxlan", 6) || kind_is(k, "geneve", 7) || kind_is(k, "ipip", 5) ||
	    kind_is(k, "gre", 4) || kind_is(k, "gretap", 7) || kind_is(k, "sit", 4) ||
	    kind_is(k, "ip6tnl", 7) || kind_is(k, "wireguard", 10))
		return KIND_OTHER;
	return KIND_NONE;
}

/* The rtnl_link_ops of a device as a pointer (NULL for devices without one: NICs, lo). */
static __always_inline const struct rtnl_link_ops *dev_ops(struct net_device *dev, bool direct)
{
	return direct ? dev->rtnl_link_ops : BPF_CORE_READ(dev, rtnl_link_ops);
}

static __always_inline bool is_veth_ops(const struct rtnl_link_ops *ops)
{
	/* Pointer compare: the fast path never needs the address as a number. */
	return ops && (__u64)ops == veth_ops_seen;
}

/* The class of a device's kind; veth is remembered apart, for the fast path. */
static __always_inline __u8 dev_class(const struct rtnl_link_ops *ops)
{
	char kind[16] = {};
	const char *p;
	__u8 cls;
	__u64 o;

	if (!ops)
		return KIND_NONE;
	if ((__u64)ops == veth_ops_seen)
		return KIND_PAIR;
	for (int i = 0; i < KIND_CACHE; i++) {
		if ((__u64)ops == kind_ops_seen[i])
			return kind_class_seen[i];
	}
	/* First sight of this kind of device: compare its name once, then remember. */
	o = addr_of(ops);
	p = BPF_CORE_READ(ops, kind);
	if (!p || bpf_probe_read_kernel_str(kind, sizeof(kind), p) < 0)
		return KIND_NONE;
	cls = kind_class(kind);
	if (kind_is(kind, "veth", 5)) {
		veth_ops_seen = o;
		return cls;
	}
	for (int i = 0; i < KIND_CACHE; i++) {
		if (!kind_ops_seen[i]) {
			kind_class_seen[i] = cls;
			kind_ops_seen[i] = o;
			break;
		}
	}
	return cls;
}

/* ---- logical hook bodies ---------------------------------------------------------- */

/*
 * Whether a transmit or enqueue of `ptr` continues the path of the skb that entry `f`
 * last saw received: the same skb sent on by the kernel (forwarding, bridging, NAT)
 * happens on the CPU and in the NET_RX run that received it. A freed skb's address taken
 * by a new one is told apart by that, and by the device: forwarding leaves through
 * another device of the receiver's namespace.
 */
static __always_inline bool continues(struct inflight *f, __u64 ptr, struct cpu_state *st,
				      struct sirq_iface_key *k)
{
	return f->skb == ptr && (f->flags & INF_RCVD) && f->origin.ifindex && st &&
	       st->run_ts && f->rcv_run == st->run_ts && st->run_vec == SIRQ_VEC_NET_RX &&
	       f->rcv_cpu == bpf_get_smp_processor_id() && f->prev.cookie == k->cookie &&
	       f->prev.netns == k->netns && f->prev.ifindex != k->ifindex;
}

/*
 * A tunnel device's receive of the skb this CPU received in its previous NET_RX run: the
 * decapsulated skb goes through the tunnel's gro_cells NAPI, which kernels before ~6.12
 * poll in the next NET_RX run (net_rx_action takes the poll list once). Only a tunnel
 * (never a NIC, whose skbs are new ones at reused addresses) continues this way.
 */
static __always_inline bool decapsulated(struct inflight *f, struct cpu_state *st,
					 struct sirq_iface_key *k, struct net_device *dev, bool direct)
{
	return f->origin.ifindex && st && st->run_ts && st->run_vec == SIRQ_VEC_NET_RX &&
	       st->rx_run_prev && f->rcv_run == st->rx_run_prev &&
	       f->rcv_cpu == bpf_get_smp_processor_id() && f->prev.cookie == k->cookie &&
	       f->prev.netns == k->netns && f->prev.ifindex != k->ifindex &&
	       dev_class(dev_ops(dev, direct)) == KIND_OTHER;
}

/* A fresh entry for `ptr`: no path (origin unknown) until a veth transmit gives one;
 * timed or not as timing_pick decides. */
static __always_inline void inflight_reset(struct inflight *f, __u64 ptr, struct cpu_state *st)
{
	evict_check(f, ptr);
	f->skb = ptr;
	f->xmit_ts = 0;
	f->enq_ts = 0;
	f->rcv_run = 0;
	f->origin.ifindex = 0;
	f->hops = 0;
	f->enqs = 0;
	f->flags = 0;
	f->tshift = timing_pick(st);
}

/* Which transmits an entry point sees: every kind (the tracepoint), veth only (veth_xmit
 * probed as a function), or every kind but veth (the tracepoint beside such a probe). */
#define XMIT_ANY 0
#define XMIT_VETH 1
#define XMIT_NOT_VETH 2

static __always_inline int on_dev_xmit(struct sk_buff *skb, struct net_device *dev, int which,
				       bool direct)
{
	const struct rtnl_link_ops *ops = NULL;
	struct sirq_iface_counters *c;
	struct sirq_iface_key k;
	struct cpu_state *st;
	struct inflight *f;
	__u64 ptr = skb_id(skb, direct);
	__u8 cls = KIND_PAIR;
	__u64 now;

	if (which != XMIT_VETH) {
		ops = dev_ops(dev, direct);
		/* veth first: one pointer compare on the fast path. */
		if (is_veth_ops(ops)) {
			if (which == XMIT_NOT_VETH)
				return 0;
		} else {
			cls = dev_class(ops);
			if (cls == KIND_NONE || (which == XMIT_NOT_VETH && is_veth_ops(ops)))
				return 0;
		}
	}
	if (!dev_key(dev, &k, direct))
		return 0;
	if (filter_skip(skb, dev, ptr, true)) /* --filter */
		return 0;
	c = iface_counters_get(&k, dev);
	if (!c)
		return 0;
	c->tx_packets++;
	c->tx_bytes += direct ? skb->len : BPF_CORE_READ(skb, len);
	if (cfg.lite)
		return 0;
	f = slot_of(ptr);
	if (!f)
		return 0;
	/* veth_xmit enqueues (if it does) on this CPU before it returns. */
	st = cpu_state();
	if (!st)
		return 0;
	/*
	 * A path goes on when the kernel sends on an skb it received (forwarding), or when a
	 * transmit follows a transmit of the same skb on this CPU: an upper device handing it
	 * to its lower (VLAN, macvlan, a tunnel's encapsulation onto the underlay): another
	 * device. The same device again is a new skb at a freed address (the previous one
	 * went to the peer's NAPI, no enqueue cleared last_xmit). It keeps
	 * its timing decision; a new one is picked (timed or not) here. An untimed skb's
	 * timestamps are markers (1): no clock read.
	 */
	if (!continues(f, ptr, st, &k) &&
	    !(f->skb == ptr && !(f->flags & INF_RCVD) && f->origin.ifindex &&
	      st->last_xmit == ptr && !same_key(&f->tx, &k))) {
		inflight_reset(f, ptr, st);
		now = f->tshift ? bpf_ktime_get_ns() : 1;
		f->first_ts = now;
		f->origin = k;
		f->prev = k;
		if (st->run_ts && st->run_vec == SIRQ_VEC_NET_RX)
			f->flags = INF_ORIGIN_SOFTIRQ;
	} else {
		now = f->tshift ? bpf_ktime_get_ns() : 1;
	}
	st->last_xmit = ptr;
	f->flags &= ~(INF_RCVD | INF_TX_PAIR | INF_TX_UPPER | INF_VIA_LOWER);
	if (cls == KIND_PAIR)
		f->flags |= INF_TX_PAIR;
	else if (cls == KIND_UPPER)
		f->flags |= INF_TX_UPPER;
	f->xmit_ts = now;
	f->enq_ts = 0;
	f->tx = k;
	return 0;
}

/*
 * Whether an enqueue now will raise NET_RX: enqueue_to_backlog raises only when it
 * schedules this CPU's backlog NAPI, i.e. when that is not scheduled already. We follow
 * that state: scheduled by the raise after an enqueue; idle again at the end of a NET_RX
 * run that did not raise NET_RX again (net_rx_action re-raises when work is left), or,
 * with napi_poll attached, after a backlog poll that did less than its budget. Without
 * the softirq hooks (--lite), assume every enqueue raises.
 */
static __always_inline bool backlog_idle(struct cpu_state *st)
{
	return !cfg.track_backlog || !st->backlog_sched;
}

static __always_inline int on_enqueue(struct sk_buff *skb, struct net_device *dev, bool direct)
{
	struct sirq_iface_counters *c;
	struct sirq_iface_key k;
	struct cpu_state *st;
	struct inflight *f;
	__u64 ptr = skb_id(skb, direct);
	__u64 now = 1;  /* lite or untimed: a marker, no clock read */
	__u8 ts = 0;

	st = cpu_state();
	if (!st || !dev)
		return 0;
	if (!dev_key(dev, &k, direct) || filter_skip(skb, dev, ptr, false)) {
		/* Filtered out (or by --filter): the raise it may cause is nobody's, and not a loss either
		 * (enq_ts 1 marks it; a filtered enqueue has no timestamp). */
		st->enq_ts = 1;
		st->enq_key.cookie = 0;
		st->enq_key.netns = 0;
		st->enq_key.ifindex = 0;
		return 0;
	}
	c = iface_counters_get(&k, dev);
	if (!c)
		return 0;
	c->rx_enqueued++;
	if (!cfg.lite) {
		f = slot_of(ptr);
		if (f) {
			if (f->skb != ptr) {
				inflight_reset(f, ptr, st);
			} else if (f->flags & INF_RCVD) {
				/* Received, now enqueued again without a veth transmit (macvlan,
				 * loopback): sent on, or a new skb at a freed address. */
				if (continues(f, ptr, st, &k))
					f->flags &= ~INF_RCVD;
				else
					inflight_reset(f, ptr, st);
			} else if (st->last_xmit != ptr || f->enq_ts) {
				/* Not the veth transmit that just ran here: a previous owner of
				 * this address that was never received. */
				ctr_inc(SIRQ_CTR_INFLIGHT_STALE);
				f->xmit_ts = 0;
				f->origin.ifindex = 0;
				f->tshift = timing_pick(st);
			} else if ((f->flags & INF_TX_UPPER) && !same_key(&f->tx, &k)) {
				/* A macvlan handing its skb to its lower device (bridge mode,
				 * to a sibling): the lower only passes it on. */
				f->flags |= INF_VIA_LOWER;
			}
			ts = f->tshift;
			if (ts)
				now = bpf_ktime_get_ns();
			f->enq_ts = now;
			if (f->enqs < 255)
				f->enqs++;
		}
		st->last_xmit = 0;
	}
	/*
	 * The raise that enqueue_to_backlog does next, on this CPU, is caused by it; an
	 * enqueue onto an already scheduled backlog raises nothing, and must not leave its
	 * mark for a later raise from elsewhere (a NIC, a NAPI device).
	 */
	if (backlog_idle(st)) {
		st->enq_ts = now;
		st->enq_tshift = ts;
		st->enq_key = k;
	} else {
		st->enq_ts = 0;
	}
	return 0;
}

static __always_inline int on_netif_rx(struct sk_buff *skb, bool direct)
{
	return on_enqueue(skb, skb_dev(skb, direct), direct);
}

/*
 * Whether the current task is this CPU's ksoftirqd. Reading the task name costs a helper
 * call, so it is read only for a pid not seen before on this CPU: softirqs run in few
 * tasks (the interrupted task, or ksoftirqd).
 */
static __always_inline bool in_ksoftirqd(struct cpu_state *st)
{
	__u32 pid = (__u32)bpf_get_current_pid_tgid();
	char comm[16];
	bool k;

	if (pid == st->ksoftirqd_pid)
		return true;
	if (pid == st->other_pid)
		return false;
	if (bpf_get_current_comm(comm, sizeof(comm)))
		return false;
	k = comm[0] == 'k' && comm[1] == 's' && comm[2] == 'o' && comm[3] == 'f' &&
	    comm[4] == 't' && comm[5] == 'i' && comm[6] == 'r' && comm[7] == 'q';
	if (k)
		st->ksoftirqd_pid = pid;
	else
		st->other_pid = pid;
	return k;
}

/* Counts one sampled raise under (interface, vector, kernel stack). */
static __always_inline void sample_stack(void *ctx, struct cpu_state *st, __u32 vec,
					 struct sirq_iface_key *by)
{
	struct sirq_site_key sk = {};
	__u64 one = 1, *n;
	long id;

	if (++st->stack_tick < cfg.stack_every)
		return;
	st->stack_tick = 0;
	id = bpf_get_stackid(ctx, &raise_stacks, 0);
	if (id < 0) {
		ctr_inc(SIRQ_CTR_STACK_LOST);
		return;
	}
	if (by) {
		sk.iface = *by;
	}
	sk.vec = vec;
	sk.stackid = id;
	n = bpf_map_lookup_elem(&raise_sites, &sk);
	if (n)
		__sync_fetch_and_add(n, 1);
	else if (bpf_map_update_elem(&raise_sites, &sk, &one, BPF_NOEXIST))
		ctr_inc(SIRQ_CTR_STACK_LOST);
}

static __always_inline int on_softirq_raise(void *ctx, __u32 vec)
{
	struct sirq_iface_key by = {};
	bool attributed = false;
	struct sirq_softirq_stats *s;
	struct cpu_state *st;
	__u32 key = vec;
	__u8 ts = 1;
	__u64 now;

	if (vec >= SIRQ_NR_VECTORS)
		return 0;
	s = bpf_map_lookup_elem(&softirqs, &key);
	st = cpu_state();
	if (!s || !st)
		return 0;
	s->raises++;
	/*
	 * A NET_RX raise right after a counted enqueue on this CPU (enqueue_to_backlog
	 * scheduling the backlog) is caused by it. The enqueue's timestamp, a few hundred
	 * ns earlier, stands in for the raise time: one clock read less per packet.
	 */
	if (vec == SIRQ_VEC_NET_RX && st->enq_ts) {
		struct sirq_iface_counters *c = NULL;

		if (st->enq_key.ifindex) {
			c = iface_counters_find(&st->enq_key);
			now = st->enq_ts;
			ts = st->enq_tshift; /* untimed (0): no raise -> run sample */
		} else {
			now = cfg.lite ? 0 : bpf_ktime_get_ns();
		}
		st->enq_ts = 0;
		/* enqueue_to_backlog scheduled the backlog NAPI. */
		st->backlog_sched = 1;
		if (c) {
			c->net_rx_raises++;
			by = st->enq_key;
			attributed = true;
		}
	} else {
		now = cfg.lite ? 0 : bpf_ktime_get_ns();
		if (vec == SIRQ_VEC_NET_RX) {
			/* Maybe a device's own NAPI: the first packet it delivers (or, with
			 * napi_poll, its poll) claims the raise. */
			ctr_inc(SIRQ_CTR_RAISE_UNATTRIBUTED);
			st->raise_pending++;
			if (st->run_ts && st->run_vec == SIRQ_VEC_NET_RX)
				st->reraised = 1;
		}
	}
	/* raise -> run delay needs softirq_entry, which --lite does not attach. */
	if (!cfg.lite && st->raise_ts[vec] == 0 && ts) {
		st->raise_ts[vec] = now;
		st->raise_k[vec] = ts - 1;
	}
	if (cfg.stack_every && (vec == SIRQ_VEC_NET_RX || vec == SIRQ_VEC_NET_TX))
		sample_stack(ctx, st, vec, attributed ? &by : NULL);
	return 0;
}

/* A NET_RX raise no enqueue caused, claimed by the device whose own NAPI it scheduled. */
static __always_inline void claim_napi_raise(struct cpu_state *st, struct sirq_iface_counters *c)
{
	if (st->raise_pending) {
		st->raise_pending--;
		c->net_rx_raises++;
		ctr_inc(SIRQ_CTR_RAISE_NAPI);
	}
}

static __always_inline void charge_rx(struct sirq_iface_key *k, __u64 ns)
{
	struct sirq_iface_counters *c = iface_counters_find(k);

	if (c)
		c->softirq_ns += ns;
}

#endif /* __SIRQTOP_TRANSMIT_BPF_H */
