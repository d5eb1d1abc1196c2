// SPDX-License-Identifier: GPL-2.0
/*
 * Part of sirqtop.bpf.c, included once from it, in order: maps, per-CPU state, in-flight table, interface slots and their helpers.
 */
#ifndef __SIRQTOP_STATE_BPF_H
#define __SIRQTOP_STATE_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIRQ_MAX_NETNS_FILTER);
	__type(key, __u32);
	__type(value, __u8);
} netns_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SIRQ_MAX_IFACES);
	__type(key, struct sirq_iface_key);
	__type(value, struct sirq_iface_counters);
} iface_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIRQ_MAX_IFACES);
	__type(key, struct sirq_iface_key);
	__type(value, struct sirq_iface_hists);
} iface_hists SEC(".maps");

/*
 * The fast path: interfaces live in direct-mapped array slots (an inlined array access
 * instead of a hash lookup); only an interface whose slot is taken by another one goes to
 * the hash maps above. User space sums both.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct sirq_iface_slot);
} iface_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIRQ_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct sirq_hist_slot);
} hist_slots SEC(".maps");

/*
 * In-flight skbs: a direct-mapped table indexed by the skb pointer. An array
 * slot costs a few instructions where an LRU hash costs locks and list updates; an
 * entry of a dropped packet cannot leak, it is overwritten by the next skb hashing to
 * its slot, and every overwrite of an unmatched entry is counted (inflight_evicted).
 */
struct inflight {
	__u64 skb;
	__u64 xmit_ts;  /* last veth transmit, 0 = none since the last receive */
	__u64 enq_ts;   /* last backlog enqueue, 0 = none since the last receive */
	struct sirq_iface_key tx; /* the transmitting veth of xmit_ts */
	/* The path: kept across receives while the kernel forwards the same skb. */
	__u64 first_ts; /* its first veth transmit */
	__u64 rcv_run;  /* the NET_RX run (its start time) that last received it */
	struct sirq_iface_key origin; /* ifindex 0: not from a veth transmit we saw */
	struct sirq_iface_key prev;   /* last receiver (the origin before the first) */
	__u16 rcv_cpu;
	__u8 tshift;    /* 0: not timed (xmit_ts/enq_ts/first_ts are markers); k + 1: timed,
			 * each latency sample weighs 2^k (see timing_pick) */
	__u8 _pad;
	__u16 hops;     /* receives so far */
	__u8 enqs;      /* backlog enqueues so far */
	__u8 flags;     /* INF_RCVD, INF_ORIGIN_SOFTIRQ */
};

/* The entry's skb was received (it is done unless the kernel sends it on). */
#define INF_RCVD 1
/* Its first transmit ran inside a NET_RX softirq: a reply, clone or copy made while
 * receiving another skb, whose own path may have begun earlier. */
#define INF_ORIGIN_SOFTIRQ 2
/* The last transmit (tx, xmit_ts) was a pair's (veth, netkit): a veth_hop sample. */
#define INF_TX_PAIR 4
/* The last transmit was an upper's (macvlan) that may hand the skb to its lower. */
#define INF_TX_UPPER 8
/* Enqueued to the lower device by its upper (macvlan bridge mode): the lower's receive
 * is not one the kernel counts there; its rx_handler passes the skb on to the sibling. */
#define INF_VIA_LOWER 16
/* --filter rejected this skb: it counts nowhere (filter.bpf.h). */
#define INF_OUT 32

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIRQ_INFLIGHT_SLOTS);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_NR_VECTORS);
	__type(key, __u32);
	__type(value, struct sirq_softirq_stats);
} softirqs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_CTR_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, SIRQ_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, SIRQ_STACK_DEPTH * sizeof(__u64));
} raise_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIRQ_MAX_SITES);
	__type(key, struct sirq_site_key);
	__type(value, __u64);
} raise_sites SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIRQ_MAX_PATHS);
	__type(key, struct sirq_path_key);
	__type(value, struct sirq_path_stats);
} paths SEC(".maps");

/*
 * The fast path for paths, as for interfaces: direct-mapped per-CPU slots (plain adds, no
 * hash of a 56-byte key, no atomics); a path whose slot is taken uses the hash map above.
 * `path_evict` holds, per CPU, the tag of a retired path user space has banked in that
 * CPU's slot, so that the CPU can free the slot when another path wants it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_PATH_SLOTS);
	__type(key, __u32);
	__type(value, struct sirq_path_slot);
} path_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_PATH_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} path_evict SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SIRQ_MAX_DROP_KEYS);
	__type(key, struct sirq_drop_key);
	__type(value, __u64);
} drops SEC(".maps");

/*
 * Interface slots user space asks to free: per CPU, the tag of a gone interface whose
 * numbers it has banked and which that CPU's slot holds. The CPU frees it the next time
 * another interface wants the slot (per-CPU slots cannot be freed safely from user
 * space). Per CPU, because two CPUs' slots at one index can hold two gone interfaces.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} slot_evict SEC(".maps");

/* Per-CPU scratch state linking events that happen on one CPU. */
struct cpu_state {
	__u64 raise_ts[SIRQ_NR_VECTORS]; /* first raise while the vector was not running */
	__u64 run_ts;                    /* softirq_entry time of the running vector, 0 = none */
	__u32 run_vec;
	__u32 rx_has;                    /* rx_key owns the current NET_RX segment */
	__u32 rx_seen;                   /* a packet was received in this NET_RX run */
	__u32 backlog_sched;             /* this CPU's backlog NAPI is scheduled (our view) */
	__u64 rx_mark;                   /* start of the current NET_RX time segment */
	struct sirq_iface_key rx_key;
	__u64 enq_ts;                    /* last counted enqueue on this CPU, 0 = none */
	struct sirq_iface_key enq_key;
	__u32 stack_tick;                /* raises since the last stack sample */
	__u32 ksoftirqd_pid;             /* this CPU's ksoftirqd, once seen */
	__u32 other_pid;                 /* the last task seen not to be ksoftirqd */
	__u32 raise_pending;             /* NET_RX raises no enqueue caused, not yet attributed */
	__u64 last_xmit;                 /* the skb this CPU last saw in veth_xmit */
	__u32 reraised;                  /* NET_RX was raised while NET_RX ran */
	__u32 another_fn;                /* kprobe'd receive-loop function running (ANOTHER_*) */
	__u64 another_arg;               /* its skb (or skb pointer's address) at entry */
	__u64 another_dev;               /* the skb's device at entry (ipvlan_nf_input) */
	__u64 rx_run_prev;               /* start of the NET_RX run before the current one */
	__u64 rx_run_cur;                /* start of the current (or last) NET_RX run */
	__u64 tm_jiffy;                  /* timing_pick: the current rate window's jiffy */
	__u64 tm_ns;                     /* and its start time */
	__u32 tm_count;                  /* skbs picked for or against timing in the window */
	__u32 tm_shift;                  /* time 1 in 2^tm_shift skbs */
	__u32 tm_seq;                    /* running pick counter (never reset: fair weights) */
	__u8 enq_tshift;                 /* tshift of the pending enqueue (enq_ts) */
	__u8 raise_k[SIRQ_NR_VECTORS];   /* weight shift of raise_ts[vec]'s sample */
	/* Slow softirqs (softirq.bpf.h): receives in the current NET_RX run, and a majority
	 * vote (Boyer-Moore) for the device that received most of them. */
	__u32 run_pkts;
	__u32 run_top_n;
	struct sirq_iface_key run_top;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_states SEC(".maps");

/*
 * Device kinds whose transmits sirqtop follows. A pair (veth, netkit) hands the skb to its
 * peer: a hop whose time is the veth_hop histogram. An upper that may hand it to its lower
 * device's receive (macvlan bridge mode: dev_forward_skb to the lower, whose rx_handler
 * passes it on to the sibling), and others whose transmit passes the skb on (ipvlan, VLAN,
 * tunnels): their transmits are counted and start or continue paths.
 */
#define KIND_NONE 0
#define KIND_PAIR 1
#define KIND_UPPER 2
#define KIND_OTHER 3
#define KIND_CACHE 8

/* rtnl_link_ops of veth, learned on first sight, and of the other kinds seen (with their
 * class), so that a kind's name is compared once. */
__u64 veth_ops_seen = 0;
__u64 kind_ops_seen[KIND_CACHE] = {};
__u8 kind_class_seen[KIND_CACHE] = {};

/* Zero values live in .rodata: too large for the 512-byte BPF stack. */
static const struct sirq_iface_counters zero_counters;
static const struct sirq_iface_hists zero_hists;
static const struct sirq_path_stats zero_path;

/* Make these types visible to the skeleton generator. */
struct sirq_iface_event _sirq_iface_event = {};
enum sirq_counter _sirq_counter = 0;
enum sirq_event_type _sirq_event_type = 0;
struct sirq_site_key _sirq_site_key = {};
struct sirq_drop_key _sirq_drop_key = {};
struct sirq_path_key _sirq_path_key = {};
struct sirq_path_stats _sirq_path_stats = {};
struct sirq_path_slot _sirq_path_slot = {};
enum sirq_limits _sirq_limits = 0;

static __always_inline void ctr_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}


static __always_inline struct cpu_state *cpu_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_states, &zero);
}

static __always_inline __u32 hist_bucket(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	if (r >= SIRQ_HIST_BUCKETS)
		r = SIRQ_HIST_BUCKETS - 1;
	return r & (SIRQ_HIST_BUCKETS - 1);
}

/* Per-CPU histogram: plain stores. A sample of weight 2^k stands for 2^k skbs. */
static __always_inline void hist_addw(struct sirq_hist *h, __u64 v, __u32 k)
{
	h->count += 1ULL << k;
	h->sum += v << k;
	if (v > h->max)
		h->max = v;
	h->buckets[hist_bucket(v)] += 1ULL << k;
}

static __always_inline void hist_add(struct sirq_hist *h, __u64 v)
{
	hist_addw(h, v, 0);
}

/*
 * Shared histogram: atomic adds; `count` is left 0 (user space sums the buckets) to save
 * one atomic per packet; max is best effort (a lost race keeps a close value).
 */
static __always_inline void hist_add_shared(struct sirq_hist *h, __u64 v, __u32 k)
{
	__sync_fetch_and_add(&h->sum, v << k);
	if (v > h->max)
		h->max = v;
	__sync_fetch_and_add(&h->buckets[hist_bucket(v)], 1ULL << k);
}

/*
 * Whether a new tracked skb is timed (its latencies sampled), as its entry's tshift.
 * Clock reads are most of the per-packet cost, and under a flood the histograms need
 * not see every skb: with cfg.timing_rate, a CPU times every skb while it starts fewer
 * than that many per second; above, 1 in 2^k, k set once per window (two jiffies or
 * more) from the window's rate, every sample weighted 2^k so the histograms still
 * estimate every skb. Counts, paths and softirq time never sample.
 */
static __always_inline __u8 timing_pick(struct cpu_state *st)
{
	__u64 j, now, span, allowed;
	__u32 k = 0;

	if (!cfg.timing_rate)
		return 1;
	j = bpf_jiffies64();
	if (j - st->tm_jiffy >= 2) {
		now = bpf_ktime_get_ns();
		span = now - st->tm_ns;
		if (span > 1000000000ULL)
			span = 1000000000ULL;
		allowed = (__u64)cfg.timing_rate * span / 1000000000ULL;
		for (int i = 0; i < 20; i++) {
			if ((st->tm_count >> k) > allowed)
				k++;
		}
		st->tm_shift = k;
		st->tm_count = 0;
		st->tm_jiffy = j;
		st->tm_ns = now;
	}
	st->tm_count++;
	ctr_inc(SIRQ_CTR_SKBS_PICKED);
	k = st->tm_shift & 31;
	if (++st->tm_seq & ((1U << k) - 1))
		return 0;
	ctr_inc(SIRQ_CTR_SKBS_TIMED);
	return k + 1;
}

/*
 * The address of a pointer as a plain number: the verifier forbids arithmetic on
 * pointers, so copy its bits out of a stack slot (a scalar comes back). A helper call:
 * only for rare paths.
 */
static __always_inline __u64 addr_of(const void *p)
{
	__u64 spill = (__u64)p, v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &spill);
	return v;
}

/* The in-flight table's identity of an skb is its address minus this variable's. */
__u64 skb_id_anchor = 0;

/*
 * For BTF pointers (tp_btf/fentry) pointer - pointer is a number, free for programs
 * allowed to see kernel addresses; kprobe/raw_tp arguments are numbers already and
 * subtract the anchor's address, learned once, so every backend agrees on the identity.
 */
static __always_inline __u64 skb_id(const void *skb, bool direct)
{
	if (direct)
		return (__u64)skb - (__u64)&skb_id_anchor;
	if (!skb_id_anchor)
		skb_id_anchor = addr_of(&skb_id_anchor);
	return (__u64)skb - skb_id_anchor;
}

static __always_inline struct inflight *slot_of(__u64 skb)
{
	/*
	 * skbs are slab objects 256 bytes or more apart: address bits from 8 up give
	 * neighbours neighbouring slots, so a flood's skbs, cycling through a few slab pages,
	 * touch a few pages of the table. A mixing hash spread them over all of its 6 MB: a
	 * TLB and cache miss per packet, twice the transmit's cost (BENCHMARKS.md).
	 */
	__u32 idx = (__u32)(skb >> 8) & (SIRQ_INFLIGHT_SLOTS - 1);

	return bpf_map_lookup_elem(&inflight, &idx);
}

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

#endif /* __SIRQTOP_STATE_BPF_H */
