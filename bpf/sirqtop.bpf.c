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
 * In-flight skbs: a direct-mapped table indexed by a hash of the skb pointer. An array
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
	__u32 rcv_cpu;
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

/* Per-CPU histogram: plain stores. */
static __always_inline void hist_add(struct sirq_hist *h, __u64 v)
{
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
	h->buckets[hist_bucket(v)]++;
}

/*
 * Shared histogram: atomic adds; `count` is left 0 (user space sums the buckets) to save
 * one atomic per packet; max is best effort (a lost race keeps a close value).
 */
static __always_inline void hist_add_shared(struct sirq_hist *h, __u64 v)
{
	__sync_fetch_and_add(&h->sum, v);
	if (v > h->max)
		h->max = v;
	__sync_fetch_and_add(&h->buckets[hist_bucket(v)], 1);
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
	/* skbs are slab objects: mix the pointer so neighbours spread over the table. */
	__u32 idx = (__u32)(((skb >> 6) * 0x9E3779B97F4A7C15ULL) >> 40) & (SIRQ_INFLIGHT_SLOTS - 1);

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

static __always_inline void evict_check(struct inflight *f, __u64 skb)
{
	/* An entry still waiting for its receive (another skb's, or an earlier pass of this
	 * one) is lost; a received one is only kept in case its skb is sent on. */
	if (f->skb && !(f->flags & INF_RCVD))
		ctr_inc(SIRQ_CTR_INFLIGHT_EVICTED);
}

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

/* A fresh entry for `ptr`: no path (origin unknown) until a veth transmit gives one. */
static __always_inline void inflight_reset(struct inflight *f, __u64 ptr)
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
	now = bpf_ktime_get_ns();
	/*
	 * A path goes on when the kernel sends on an skb it received (forwarding), or when a
	 * transmit follows a transmit of the same skb on this CPU: an upper device handing it
	 * to its lower (VLAN, macvlan, a tunnel's encapsulation onto the underlay).
	 */
	if (!continues(f, ptr, st, &k) &&
	    !(f->skb == ptr && !(f->flags & INF_RCVD) && f->origin.ifindex && st &&
	      st->last_xmit == ptr)) {
		inflight_reset(f, ptr);
		f->first_ts = now;
		f->origin = k;
		f->prev = k;
		if (st && st->run_ts && st->run_vec == SIRQ_VEC_NET_RX)
			f->flags = INF_ORIGIN_SOFTIRQ;
	}
	if (st)
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
	__u64 now;

	st = cpu_state();
	if (!st || !dev)
		return 0;
	if (!dev_key(dev, &k, direct)) {
		/* Filtered out: the raise it may cause is nobody's, and not a loss either
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
	now = cfg.lite ? 1 : bpf_ktime_get_ns(); /* lite: a marker, no clock read */
	if (!cfg.lite) {
		f = slot_of(ptr);
		if (f) {
			if (f->skb != ptr) {
				inflight_reset(f, ptr);
			} else if (f->flags & INF_RCVD) {
				/* Received, now enqueued again without a veth transmit (macvlan,
				 * loopback): sent on, or a new skb at a freed address. */
				if (continues(f, ptr, st, &k))
					f->flags &= ~INF_RCVD;
				else
					inflight_reset(f, ptr);
			} else if (st->last_xmit != ptr || f->enq_ts) {
				/* Not the veth transmit that just ran here: a previous owner of
				 * this address that was never received. */
				ctr_inc(SIRQ_CTR_INFLIGHT_STALE);
				f->xmit_ts = 0;
				f->origin.ifindex = 0;
			} else if ((f->flags & INF_TX_UPPER) && !same_key(&f->tx, &k)) {
				/* A macvlan handing its skb to its lower device (bridge mode,
				 * to a sibling): the lower only passes it on. */
				f->flags |= INF_VIA_LOWER;
			}
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
	if (!cfg.lite && st->raise_ts[vec] == 0)
		st->raise_ts[vec] = now;
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

static __always_inline int on_softirq_entry(__u32 vec)
{
	struct sirq_softirq_stats *s;
	struct cpu_state *st;
	__u64 now;

	__u32 key = vec;

	if (vec >= SIRQ_NR_VECTORS)
		return 0;
	st = cpu_state();
	s = bpf_map_lookup_elem(&softirqs, &key);
	if (!st || !s)
		return 0;
	now = bpf_ktime_get_ns();
	if (st->raise_ts[vec]) {
		hist_add(&s->raise_to_run, now - st->raise_ts[vec]);
		st->raise_ts[vec] = 0;
	}
	st->run_ts = now;
	st->run_vec = vec;
	if (vec == SIRQ_VEC_NET_RX) {
		st->rx_has = 0;
		st->rx_seen = 0;
		st->rx_mark = now;
		st->enq_ts = 0;
		st->rx_run_prev = st->rx_run_cur;
		st->rx_run_cur = now;
	}
	return 0;
}

/* ---- who pays: softirq time by the running task's netns (see sirq_payer_key) ---- */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SIRQ_MAX_PAYERS);
	__type(key, struct sirq_payer_key);
	__type(value, struct sirq_payer_stats);
} payers SEC(".maps");

/* Runs whose payer found the table full: counted here so the payers still sum to the
 * node's softirq time. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sirq_payer_stats);
} payer_overflow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sirq_payer_cache);
} payer_cache SEC(".maps");

static const struct sirq_payer_stats zero_payer;
struct sirq_payer_key _sirq_payer_key = {};
struct sirq_payer_stats _sirq_payer_stats = {};
struct sirq_payer_cache _sirq_payer_cache = {};
enum sirq_payer_kind _sirq_payer_kind = 0;

/* Adds what the cached task paid to its row of `payers` (or the overflow row). */
static __always_inline void flush_payer(struct sirq_payer_cache *c)
{
	struct sirq_payer_stats *p;
	__u32 zero = 0;

	if (!c->task)
		return;
	p = bpf_map_lookup_elem(&payers, &c->key);
	if (!p) {
		bpf_map_update_elem(&payers, &c->key, &zero_payer, BPF_NOEXIST);
		p = bpf_map_lookup_elem(&payers, &c->key);
		if (!p)
			p = bpf_map_lookup_elem(&payer_overflow, &zero);
		if (!p)
			return;
	}
	for (int v = 0; v < SIRQ_NR_VECTORS; v++) {
		p->ns[v] += c->s.ns[v];
		p->runs[v] += c->s.runs[v];
	}
}

/*
 * Charges a softirq run of `d` ns to the task it ran on. Softirqs run on few tasks in a
 * row, so the usual case is plain adds to this CPU's cached payer; only a change of task
 * reads the new task's netns and flushes the old one's sum into the hash map.
 */
static __always_inline void charge_payer(__u32 vec, __u64 d, bool ksoftirqd)
{
	__u64 t = bpf_get_current_task();
	struct sirq_payer_cache *c;
	struct nsproxy *nsp;
	__u32 zero = 0;

	if (vec >= SIRQ_NR_VECTORS)
		return;
	c = bpf_map_lookup_elem(&payer_cache, &zero);
	if (!c)
		return;
	nsp = BPF_CORE_READ((struct task_struct *)t, nsproxy);
	if (c->task != t || c->nsproxy != (__u64)nsp) {
		struct sirq_payer_key pk = {};

		flush_payer(c);
		if (ksoftirqd) {
			pk.kind = SIRQ_PAYER_KSOFTIRQD;
		} else if ((__u32)bpf_get_current_pid_tgid() == 0) {
			pk.kind = SIRQ_PAYER_IDLE;
		} else if (nsp) {
			struct net *net = BPF_CORE_READ(nsp, net_ns);

			if (net) {
				pk.netns = BPF_CORE_READ(net, ns.inum);
				pk.cookie = net_cookie(net, false);
			}
		}
		__builtin_memset(&c->s, 0, sizeof(c->s));
		c->task = t;
		c->nsproxy = (__u64)nsp;
		c->key = pk;
	}
	c->s.ns[vec] += d;
	c->s.runs[vec]++;
}

static __always_inline int on_softirq_exit(__u32 vec)
{
	struct sirq_softirq_stats *s;
	struct cpu_state *st;
	bool ksoftirqd;
	__u64 now, d;
	__u32 key;

	st = cpu_state();
	if (!st || !st->run_ts || st->run_vec != vec)
		return 0; /* attached mid-run: no start time */
	key = vec;
	s = bpf_map_lookup_elem(&softirqs, &key);
	if (!s)
		return 0;
	now = bpf_ktime_get_ns();
	d = now - st->run_ts;
	st->run_ts = 0;
	s->runs++;
	s->run_ns += d;
	hist_add(&s->run, d);
	ksoftirqd = in_ksoftirqd(st);
	if (ksoftirqd)
		s->ksoftirqd_runs++;
	charge_payer(vec, d, ksoftirqd);
	if (vec == SIRQ_VEC_NET_RX) {
		if (st->rx_has) {
			charge_rx(&st->rx_key, now - st->rx_mark);
			st->rx_has = 0;
		}
		/* Raises no NAPI claimed in this run stay unattributed. */
		st->raise_pending = 0;
		/* The backlog is done unless this run left work and raised again. */
		if (!cfg.napi_hook)
			st->backlog_sched = st->reraised;
		st->reraised = 0;
	}
	return 0;
}

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

/* Counts one receive of a tracked skb as the next hop of its path. */
static __always_inline void path_hop(struct inflight *f, struct sirq_iface_key *to, __u64 now)
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
		if (now > f->first_ts)
			hist_add(&p->latency, now - f->first_ts);
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
	if (now > f->first_ts)
		hist_add_shared(&p->latency, now - f->first_ts);
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
	struct sirq_iface_hists *h;
	struct sirq_iface_key k;
	struct cpu_state *st;
	struct inflight *f;
	__u64 ptr = skb_id(skb, direct);
	/* --lite keeps no timestamps: no clock read on its per-packet path. */
	__u64 now = cfg.lite ? 0 : bpf_ktime_get_ns();
	__u64 enq_ts = 0;
	bool counted = false, via_lower = false;

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
	if (f && f->skb == ptr && f->xmit_ts && !f->enq_ts && now - f->xmit_ts > SIRQ_STALE_NS) {
		/* A previous owner of this address, never received: no sample from it. */
		ctr_inc(SIRQ_CTR_INFLIGHT_STALE);
		f->skb = 0;
	}
	if (f && f->skb == ptr) {
		/* The transmitting device passed the filter when the entry was made. */
		if (f->xmit_ts && now > f->xmit_ts && (f->flags & INF_TX_PAIR)) {
			h = iface_hists_get(&f->tx);
			if (h)
				hist_add_shared(&h->veth_hop, now - f->xmit_ts);
		}
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
	if (another)
		ctr_inc(SIRQ_CTR_RX_ANOTHER);
	if (via_lower) {
		/* The kernel counts this receive on the upper its rx_handler passes it to,
		 * not here: nothing is counted (or charged) on this device. */
		ctr_inc(SIRQ_CTR_RX_VIA_LOWER);
	} else if (dev && dev_key(dev, &k, direct)) {
		counted = true;
		if (f && f->origin.ifindex)
			path_hop(f, &k, now);
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
		if (enq_ts && now > enq_ts) {
			h = iface_hists_get(&k);
			if (h)
				hist_add_shared(&h->backlog_wait, now - enq_ts);
		}
	}
	/*
	 * Partition the NET_RX run among the packets it received: the time from one
	 * receive to the next (or to softirq_exit) is spent on the first packet; the
	 * run's prologue goes to the first packet. A receive on another round ends the
	 * previous device's segment: what follows is the new device's work.
	 */
	if (!st || !st->run_ts || st->run_vec != SIRQ_VEC_NET_RX)
		return 0;
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
	if (f && f->skb == ptr)
		f->skb = 0;
	st = cpu_state();
	if (st)
		st->enq_ts = 0;
	if (!dev || !dev_key(dev, &dk.iface, direct))
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

/* ---- entry points: tracepoints (tp_btf, raw_tp) ------------------------------------ */

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tp_veth_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(skb, dev, XMIT_ANY, true);
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
	return on_dev_xmit(skb, dev, XMIT_NOT_VETH, true);
}

SEC("raw_tp/net_dev_start_xmit")
int BPF_PROG(raw_dev_xmit, struct sk_buff *skb, struct net_device *dev)
{
	return on_dev_xmit(skb, dev, XMIT_NOT_VETH, false);
}

SEC("tp_btf/netif_rx")
int BPF_PROG(tp_netif_rx, struct sk_buff *skb)
{
	return on_netif_rx(skb, true);
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
	return on_softirq_entry(vec);
}

SEC("raw_tp/softirq_entry")
int BPF_PROG(raw_softirq_entry, unsigned int vec)
{
	return on_softirq_entry(vec);
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(tp_softirq_exit, unsigned int vec)
{
	return on_softirq_exit(vec);
}

SEC("raw_tp/softirq_exit")
int BPF_PROG(raw_softirq_exit, unsigned int vec)
{
	return on_softirq_exit(vec);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tp_netif_receive, struct sk_buff *skb)
{
	return on_netif_receive(skb, true);
}

SEC("raw_tp/netif_receive_skb")
int BPF_PROG(raw_netif_receive, struct sk_buff *skb)
{
	return on_netif_receive(skb, false);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tp_kfree_skb, struct sk_buff *skb)
{
	return on_kfree_skb(skb, DROP_REASON(ctx), true);
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(raw_kfree_skb, struct sk_buff *skb)
{
	return on_kfree_skb(skb, DROP_REASON(ctx), false);
}

SEC("tp_btf/napi_poll")
int BPF_PROG(tp_napi_poll, struct napi_struct *napi, int work, int budget)
{
	return on_napi_poll(napi, work, budget, true);
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
