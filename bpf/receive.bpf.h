// SPDX-License-Identifier: GPL-2.0
/*
 * Part of sirqtop.bpf.c, included once from it, in order: paths, the receive, drop and NAPI-poll bodies.
 */
#ifndef __SIRQTOP_RECEIVE_BPF_H
#define __SIRQTOP_RECEIVE_BPF_H

/* A non-zero hash of a path key: its slot, and its identity in `path_evict`. */
static __always_inline __u64 path_tag(struct sirq_path_key *k)
{
	__u64 h = key_tag(&k->origin) ^ (key_tag(&k->to) * 0xC2B2AE3D27D4EB4FULL) ^
		  (key_tag(&k->prev) * 0x165667B19E3779F9ULL) ^
		  ((__u64)k->hop * 0x9E3779B97F4A7C15ULL);

	return h | 1;
}

static __always_inline bool same_path(struct sirq_path_key *a, struct sirq_path_key *b)
{
	return a->hop == b->hop && same_key(&a->to, &b->to) && same_key(&a->origin, &b->origin) &&
	       same_key(&a->prev, &b->prev);
}

/* This CPU's slot of a path, claimed if free (or held by a retired path); NULL if taken. */
static __always_inline struct sirq_path_stats *path_slot(struct sirq_path_key *pk)
{
	__u64 tag = path_tag(pk);
	__u32 idx = (tag >> 40) & (SIRQ_PATH_SLOTS - 1);
	struct sirq_path_slot *s = bpf_map_lookup_elem(&path_slots, &idx);

	if (!s)
		return NULL;
	if (s->key.to.ifindex && same_path(&s->key, pk))
		return &s->s;
	if (s->key.to.ifindex) {
		__u64 *ev = bpf_map_lookup_elem(&path_evict, &idx);

		if (!ev || !*ev || *ev != s->tag)
			return NULL;
		__builtin_memset(&s->s, 0, sizeof(s->s));
	}
	s->key = *pk;
	s->tag = tag;
	return &s->s;
}

/* Counts one receive of a tracked skb as the next hop of its path; `now` 0: untimed, else
 * its latency sample weighs 2^w. */
static __always_inline void path_hop(struct inflight *f, struct sirq_iface_key *to, __u64 now,
				     __u32 w)
{
	struct sirq_path_key pk = {};
	struct sirq_path_stats *p;

	if (f->hops < 0xffff)
		f->hops++;
	pk.origin = f->origin;
	pk.prev = f->prev;
	pk.to = *to;
	pk.hop = f->hops;
	f->prev = *to;
	p = path_slot(&pk);
	if (p) {
		p->packets++;
		p->enqueues += f->enqs;
		if (f->flags & INF_ORIGIN_SOFTIRQ)
			p->origin_softirq++;
		if (now && now > f->first_ts)
			hist_addw(&p->latency, now - f->first_ts, w);
		return;
	}
	p = bpf_map_lookup_elem(&paths, &pk);
	if (!p) {
		bpf_map_update_elem(&paths, &pk, &zero_path, BPF_NOEXIST);
		p = bpf_map_lookup_elem(&paths, &pk);
		if (!p) {
			ctr_inc(SIRQ_CTR_PATH_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&p->packets, 1);
	if (f->enqs)
		__sync_fetch_and_add(&p->enqueues, f->enqs);
	if (f->flags & INF_ORIGIN_SOFTIRQ)
		__sync_fetch_and_add(&p->origin_softirq, 1);
	if (now && now > f->first_ts)
		hist_add_shared(&p->latency, now - f->first_ts, w);
}

/*
 * A receive. `another`: the kernel's receive loop went round again with the same skb on
 * another device (a tc peer redirect, an rx_handler returning RX_HANDLER_ANOTHER: macvlan,
 * ipvlan, VLAN), which net:netif_receive_skb does not see; it continues the skb's path
 * for certain, whatever the namespaces.
 */
static __always_inline int on_receive(struct sk_buff *skb, bool another, bool direct)
{
	struct net_device *dev = skb_dev(skb, direct);
	struct sirq_iface_counters *c = NULL;
	struct sirq_iface_key k;
	struct cpu_state *st;
	struct inflight *f;
	__u64 ptr = skb_id(skb, direct);
	__u64 now = 0, enq_ts = 0;
	bool counted = false, via_lower = false, timed = false;
	__u32 w = 0;

	st = cpu_state();
	f = cfg.lite ? NULL : slot_of(ptr);
	if (f && f->skb == ptr && (f->flags & INF_RCVD)) {
		/* Received before and not sent on: a receive of the same skb on another
		 * device (a bridge's local delivery, a VLAN or macvlan upper) continues its
		 * path; a new skb at a freed address has no entry. */
		if (another)
			f->flags &= ~(INF_RCVD | INF_VIA_LOWER);
		else if (!dev || !dev_key(dev, &k, direct) ||
			 (!continues(f, ptr, st, &k) && !decapsulated(f, st, &k, dev, direct)))
			f = NULL;
		else
			f->flags &= ~INF_RCVD;
	}
	/*
	 * The clock, only where a number needs it (--lite keeps no timestamps): a timed skb's
	 * latencies, and the NET_RX time split from the run's second receive on (the first
	 * one's segment is still open at the run's start).
	 */
	if (f && f->skb == ptr && f->tshift) {
		timed = true;
		w = (f->tshift - 1) & 31;
	}
	if (!cfg.lite && (timed || (st && st->run_ts && st->run_vec == SIRQ_VEC_NET_RX &&
				    (st->rx_has || st->rx_seen || another))))
		now = bpf_ktime_get_ns();
	if (timed && f->xmit_ts && !f->enq_ts && now - f->xmit_ts > SIRQ_STALE_NS) {
		/* A previous owner of this address, never received: no sample from it. */
		ctr_inc(SIRQ_CTR_INFLIGHT_STALE);
		f->skb = 0;
	}
	if (f && f->skb == ptr) {
		/* The transmitting device passed the filter when the entry was made. */
		if (timed && f->xmit_ts && now > f->xmit_ts && (f->flags & INF_TX_PAIR))
			iface_hist_add(&f->tx, false, now - f->xmit_ts, w);
		enq_ts = f->enq_ts;
		via_lower = f->flags & INF_VIA_LOWER;
		f->xmit_ts = 0;
		f->enq_ts = 0;
		f->flags |= INF_RCVD;
		f->rcv_run = st && st->run_ts ? st->run_ts : 1;
		f->rcv_cpu = bpf_get_smp_processor_id();
	} else {
		f = NULL;
	}
	bool out = filter_rejects(f, skb); /* --filter: counted nowhere, time unattributed */
	if (another)
		ctr_inc(SIRQ_CTR_RX_ANOTHER);
	if (via_lower) {
		/* The kernel counts this receive on the upper its rx_handler passes it to,
		 * not here: nothing is counted (or charged) on this device. */
		ctr_inc(SIRQ_CTR_RX_VIA_LOWER);
	} else if (!out && dev && dev_key(dev, &k, direct)) {
		counted = true;
		if (f && f->origin.ifindex)
			path_hop(f, &k, timed ? now : 0, w);
		c = iface_counters_get(&k, dev);
		if (c)
			c->rx_packets++;
		if (c && !cfg.lite && !enq_ts && !another) {
			/* Not from the backlog: delivered by the device's own NAPI. Its first
			 * packet claims the NET_RX raise that scheduled that NAPI. */
			c->napi_packets++;
			if (!cfg.napi_hook && st)
				claim_napi_raise(st, c);
		}
		if (timed && enq_ts && now > enq_ts)
			iface_hist_add(&k, true, now - enq_ts, w);
	}
	/*
	 * Partition the NET_RX run among the packets it received: the time from one
	 * receive to the next (or to softirq_exit) is spent on the first packet; the
	 * run's prologue goes to the first packet. A receive on another round ends the
	 * previous device's segment: what follows is the new device's work.
	 */
	if (!st || !st->run_ts || st->run_vec != SIRQ_VEC_NET_RX)
		return 0;
	/* -- slow softirqs: count the run's receives and vote for its main receiver -- */
	st->run_pkts++;
	if (counted) {
		if (!st->run_top_n) {
			st->run_top = k;
			st->run_top_n = 1;
		} else if (same_key(&st->run_top, &k)) {
			st->run_top_n++;
		} else {
			st->run_top_n--;
		}
	}
	/* -- end slow softirqs -- */
	if (st->rx_has) {
		/* Consecutive packets of one device: reuse the lookup done above. */
		if (c && same_key(&st->rx_key, &k))
			c->softirq_ns += now - st->rx_mark;
		else
			charge_rx(&st->rx_key, now - st->rx_mark);
	}
	if (st->rx_seen || another)
		st->rx_mark = now;
	st->rx_seen = 1;
	st->rx_has = counted;
	if (counted)
		st->rx_key = k;
	return 0;
}

static __always_inline int on_netif_receive(struct sk_buff *skb, bool direct)
{
	return on_receive(skb, false, direct);
}

/*
 * An skb freed as dropped. Counted on the device it was on, with the reason where the
 * kernel gives one; its in-flight entry dies with it, so a later skb at the same address
 * cannot inherit its timestamps. A drop right after an enqueue (backlog full) raises
 * nothing: the enqueue's mark goes too.
 */
static __always_inline int on_kfree_skb(struct sk_buff *skb, __u32 reason, bool direct)
{
	struct net_device *dev = skb_dev(skb, direct);
	struct sirq_iface_counters *c;
	struct sirq_drop_key dk = {};
	struct cpu_state *st;
	struct inflight *f;
	__u64 ptr = skb_id(skb, direct), one = 1, *n;

	f = cfg.lite ? NULL : slot_of(ptr);
	bool out = filter_rejects(f && f->skb == ptr ? f : NULL, skb); /* --filter */
	if (f && f->skb == ptr)
		f->skb = 0;
	st = cpu_state();
	if (st)
		st->enq_ts = 0;
	if (out || !dev || !dev_key(dev, &dk.iface, direct))
		return 0;
	c = iface_counters_get(&dk.iface, dev);
	if (c)
		c->dropped++;
	dk.reason = reason;
	n = bpf_map_lookup_elem(&drops, &dk);
	if (n)
		*n += 1;
	else if (bpf_map_update_elem(&drops, &dk, &one, BPF_NOEXIST))
		ctr_inc(SIRQ_CTR_DROP_FULL);
	return 0;
}

/*
 * A NAPI poll. Polls of a device's own NAPI (veth with XDP or GRO, NICs, tunnels'
 * gro_cells) are counted on it, and the NET_RX raise that scheduled it (one no enqueue
 * caused) is attributed to it. The backlog's polls have no device. The poll's end also
 * ends the current NET_RX time segment: its tail belongs to this poll's packets.
 */
static __always_inline int on_napi_poll(struct napi_struct *napi, int work, int budget,
					bool direct)
{
	struct net_device *dev = direct ? napi->dev : BPF_CORE_READ(napi, dev);
	struct sirq_iface_counters *c;
	struct sirq_iface_key k;
	struct cpu_state *st = cpu_state();
	__u64 now;

	if (!st)
		return 0;
	/*
	 * The backlog (no device): it went idle if it did not use its whole budget. It fires
	 * once per NET_RX run under a flood, so this is all it does.
	 */
	if (!dev) {
		if (work < budget)
			st->backlog_sched = 0;
		return 0;
	}
	if (!dev_key(dev, &k, direct))
		return 0;
	c = iface_counters_get(&k, dev);
	if (!c)
		return 0;
	c->napi_polls++;
	claim_napi_raise(st, c);
	if (!st->run_ts || st->run_vec != SIRQ_VEC_NET_RX)
		return 0;
	/*
	 * Close the NET_RX time segment at the poll's end: its tail is this device's work.
	 * The gap to the next packet goes to the same key, so the parts still add up to the
	 * run.
	 */
	now = bpf_ktime_get_ns();
	c->softirq_ns += now - st->rx_mark;
	st->rx_key = k;
	st->rx_has = 1;
	st->rx_mark = now;
	st->rx_seen = 1;
	return 0;
}

/* The drop reason argument exists since 5.17 (enum skb_drop_reason). */
#define DROP_REASON(ctx) (bpf_core_type_exists(enum skb_drop_reason) ? (__u32)(ctx)[2] : 0)

#endif /* __SIRQTOP_RECEIVE_BPF_H */
