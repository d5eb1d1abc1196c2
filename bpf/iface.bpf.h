// SPDX-License-Identifier: GPL-2.0
/*
 * Part of sirqtop.bpf.c, included once from it right after state.bpf.h: devices and
 * interfaces — keys, peers, first-sight records, the interface slots and their helpers.
 */
#ifndef __SIRQTOP_IFACE_BPF_H
#define __SIRQTOP_IFACE_BPF_H

/*
 * `direct`: the caller is a tp_btf/fentry program whose arguments are BTF pointers, so
 * fields are plain loads; kprobe and raw_tp programs go through bpf_probe_read (CO-RE).
 * It is a compile-time constant per entry point: the other branch is dead code.
 */
/* struct net's cookie is a u64 since 5.12 (an atomic64_t generated on demand before). */
struct net___cookie {
	__u64 net_cookie;
} __attribute__((preserve_access_index));

static __always_inline __u64 net_cookie(struct net *net, bool direct)
{
	struct net___cookie *n = (void *)net;

	if (!bpf_core_field_exists(n->net_cookie))
		return 0;
	return direct ? n->net_cookie : BPF_CORE_READ(n, net_cookie);
}

static __always_inline bool dev_key(struct net_device *dev, struct sirq_iface_key *k,
				    bool direct)
{
	struct net *net;

	if (direct) {
		net = dev->nd_net.net;
		k->ifindex = dev->ifindex;
		k->netns = net->ns.inum;
	} else {
		net = BPF_CORE_READ(dev, nd_net.net);
		k->ifindex = BPF_CORE_READ(dev, ifindex);
		k->netns = BPF_CORE_READ(net, ns.inum);
	}
	k->cookie = net_cookie(net, direct);
	if (cfg.filter_netns && !bpf_map_lookup_elem(&netns_allow, &k->netns))
		return false;
	return true;
}

static __always_inline struct net_device *skb_dev(struct sk_buff *skb, bool direct)
{
	return direct ? skb->dev : BPF_CORE_READ(skb, dev);
}

/*
 * A veth hop received without a backlog enqueue (the peer's own NAPI) whose transmit is
 * older than this is a previous owner's entry (an skb that died unseen, e.g. copied by
 * XDP), not a hop: on the backlog path the enqueue proves the owner exactly.
 */
#define SIRQ_STALE_NS 1000000000ULL

static __always_inline bool same_key(struct sirq_iface_key *a, struct sirq_iface_key *b)
{
	return a->cookie == b->cookie && a->ifindex == b->ifindex && a->netns == b->netns;
}

/* Since 6.12 the private area is a member at the end of struct net_device. */
struct net_device___priv {
	__u8 priv[0];
} __attribute__((preserve_access_index));

/* Both keep the peer in the first member of their private area. */
struct pair_priv {
	struct net_device *peer;
};

/*
 * The peer of a veth or netkit, from the device's private area (netdev_priv(): after
 * struct net_device, aligned to 32 bytes, or its `priv` member where it has one).
 */
static __always_inline void pair_peer(struct net_device *dev, const char *kind,
				      struct sirq_iface_key *peer)
{
	struct net_device___priv *d = (void *)dev;
	struct net_device *p = NULL;
	__u64 off;

	if (!(kind[0] == 'v' && kind[1] == 'e' && kind[2] == 't' && kind[3] == 'h' && !kind[4]) &&
	    !(kind[0] == 'n' && kind[1] == 'e' && kind[2] == 't' && kind[3] == 'k' &&
	      kind[4] == 'i' && kind[5] == 't' && !kind[6]))
		return;
	if (bpf_core_field_exists(d->priv))
		off = bpf_core_field_offset(d->priv);
	else
		off = (bpf_core_type_size(struct net_device) + 31) & ~31ULL;
	if (bpf_probe_read_kernel(&p, sizeof(p), (void *)dev + off) || !p)
		return;
	peer->ifindex = BPF_CORE_READ(p, ifindex);
	peer->netns = BPF_CORE_READ(p, nd_net.net, ns.inum);
	peer->cookie = net_cookie(BPF_CORE_READ(p, nd_net.net), false);
}

static __always_inline void announce(struct sirq_iface_key *k, struct net_device *dev)
{
	struct sirq_iface_event *e;
	const struct rtnl_link_ops *ops;
	const char *kind;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		ctr_inc(SIRQ_CTR_RINGBUF_DROPPED);
		return;
	}
	e->type = SIRQ_EV_IFACE;
	e->_pad = 0;
	e->key = *k;
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), dev->name);
	e->kind[0] = 0;
	e->peer.cookie = 0;
	e->peer.netns = 0;
	e->peer.ifindex = 0;
	ops = BPF_CORE_READ(dev, rtnl_link_ops);
	if (ops) {
		kind = BPF_CORE_READ(ops, kind);
		if (kind)
			bpf_probe_read_kernel_str(e->kind, sizeof(e->kind), kind);
		pair_peer(dev, e->kind, &e->peer);
	}
	/* User space drains on a timer: no wakeup per record. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* A non-zero hash of the key: slot index and histogram-slot tag. */
static __always_inline __u64 key_tag(struct sirq_iface_key *k)
{
	__u64 h = (k->cookie ^ ((__u64)k->netns << 32) ^ k->ifindex) * 0x9E3779B97F4A7C15ULL;

	return h | 1;
}

static __always_inline __u32 key_slot(struct sirq_iface_key *k)
{
	return (key_tag(k) >> 40) & (SIRQ_IFACE_SLOTS - 1);
}

/* Counters of an interface, created (and announced) on first use. */
static __always_inline struct sirq_iface_counters *
iface_counters_get(struct sirq_iface_key *k, struct net_device *dev)
{
	__u32 idx = key_slot(k);
	struct sirq_iface_slot *s = bpf_map_lookup_elem(&iface_slots, &idx);
	struct sirq_iface_counters *c;

	if (s) {
		if (same_key(&s->key, k))
			return &s->c;
		if (s->key.ifindex) {
			/* Taken: by an interface user space has retired? Then free it here. */
			__u64 *ev = bpf_map_lookup_elem(&slot_evict, &idx);

			if (ev && *ev && *ev == key_tag(&s->key)) {
				__builtin_memset(&s->c, 0, sizeof(s->c));
				s->key.ifindex = 0;
			}
		}
		if (!s->key.ifindex) {
			s->key = *k;
			announce(k, dev);
			return &s->c;
		}
	}
	c = bpf_map_lookup_elem(&iface_counters, k);
	if (c)
		return c;
	if (bpf_map_update_elem(&iface_counters, k, &zero_counters, BPF_NOEXIST) == 0)
		announce(k, dev);
	c = bpf_map_lookup_elem(&iface_counters, k);
	if (!c)
		ctr_inc(SIRQ_CTR_IFACE_FULL);
	return c;
}

/* Counters of an interface already seen on this CPU, or NULL. */
static __always_inline struct sirq_iface_counters *iface_counters_find(struct sirq_iface_key *k)
{
	__u32 idx = key_slot(k);
	struct sirq_iface_slot *s = bpf_map_lookup_elem(&iface_slots, &idx);

	if (s && same_key(&s->key, k))
		return &s->c;
	return bpf_map_lookup_elem(&iface_counters, k);
}

static __always_inline struct sirq_iface_hists *iface_hists_get(struct sirq_iface_key *k)
{
	__u64 want = key_tag(k);
	__u32 idx = key_slot(k);
	struct sirq_hist_slot *s = bpf_map_lookup_elem(&hist_slots, &idx);
	struct sirq_iface_hists *h;

	if (s) {
		if (s->tag == want && same_key(&s->key, k))
			return &s->h;
		/*
		 * Claim a free slot. A plain store, not a compare-and-swap (BPF cmpxchg needs
		 * 5.12): of CPUs racing for the slot one keeps it, the others read another tag
		 * back and use the hash map. The winner writes the key; until then others miss
		 * and use the hash map too (user space sums both by key).
		 */
		if (!s->tag) {
			s->tag = want;
			if (s->tag == want) {
				s->key = *k;
				return &s->h;
			}
		}
	}
	h = bpf_map_lookup_elem(&iface_hists, k);
	if (h)
		return h;
	bpf_map_update_elem(&iface_hists, k, &zero_hists, BPF_NOEXIST);
	h = bpf_map_lookup_elem(&iface_hists, k);
	if (!h)
		ctr_inc(SIRQ_CTR_IFACE_FULL);
	return h;
}

/*
 * Adds a latency sample (weight 2^w) to interface k's `veth_hop` or (`backlog`) its
 * `backlog_wait` histogram: in this CPU's slot when it holds k or can take it, else in the
 * shared one.
 */
static __always_inline void iface_hist_add(struct sirq_iface_key *k, bool backlog, __u64 v,
					   __u32 w)
{
	__u64 tag = key_tag(k);
	__u32 idx = key_slot(k) & (SIRQ_HIST_PCPU_SLOTS - 1);
	struct sirq_hist_slot *s = bpf_map_lookup_elem(&hist_pcpu, &idx);
	struct sirq_iface_hists *h;

	if (s && (s->tag != tag || !same_key(&s->key, k))) {
		/* Taken: by an interface user space has retired? Then free it here. */
		if (s->tag) {
			__u64 *ev = bpf_map_lookup_elem(&hist_pcpu_evict, &idx);

			if (!ev || *ev != s->tag)
				s = NULL;
		}
		if (s) {
			__builtin_memset(&s->h, 0, sizeof(s->h));
			s->tag = tag;
			s->key = *k;
		}
	}
	if (s) {
		hist_addw(backlog ? &s->h.backlog_wait : &s->h.veth_hop, v, w);
		return;
	}
	h = iface_hists_get(k);
	if (h)
		hist_add_shared(backlog ? &h->backlog_wait : &h->veth_hop, v, w);
}

/* Counts the overwrite of in-flight entry `f` by another skb: lost, or replaced. */
static __always_inline void evict_check(struct inflight *f, __u64 skb)
{
	/* An entry still waiting for its receive (another skb's, or an earlier pass of this
	 * one) is lost; a received one is only kept in case its skb is sent on, a rejected
	 * one (--filter) only to carry its verdict. */
	if (!f->skb || (f->flags & (INF_RCVD | INF_OUT)))
		return;
	/*
	 * Handed to a pair's peer without a backlog enqueue: the peer's own NAPI took it (XDP
	 * or GRO on the peer), and with XDP the peer receives a copy and frees this one
	 * unseen. Not table pressure: counted apart, on the transmitting device.
	 */
	if ((f->flags & INF_TX_PAIR) && f->xmit_ts && !f->enq_ts) {
		struct sirq_iface_counters *c = iface_counters_find(&f->tx);

		if (c)
			c->napi_replaced++;
	} else {
		ctr_inc(SIRQ_CTR_INFLIGHT_EVICTED);
	}
}

#endif /* __SIRQTOP_IFACE_BPF_H */
