// SPDX-License-Identifier: GPL-2.0
/*
 * Part of sirqtop.bpf.c, included once from it, first: maps, per-CPU state, the in-flight table, histograms and latency sampling (iface.bpf.h follows: devices and interface slots).
 */
#ifndef __SIRQTOP_STATE_BPF_H
#define __SIRQTOP_STATE_BPF_H

/*
 * tp_btf arguments (and bpf_get_current_task_btf) are trusted pointers, and on 6.x every
 * pointer loaded through a trusted one makes the verifier search the kernel's BTF by name
 * up to four times (no index: ~150k types). That was most of the start-up's verification
 * time. Loads through an untrusted cast are the same instructions at run time (the kfunc
 * becomes a register move); kernels without the kfunc (< 6.2) skip it (dead code).
 */
#define UNTRUSTED(p, type) (cfg.untrusted ? bpf_core_cast(p, type) : (p))

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
	__uint(map_flags, BPF_F_MMAPABLE); /* only for its page-aligned elements */
	__uint(max_entries, SIRQ_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct sirq_hist_slot);
} hist_slots SEC(".maps");

/*
 * Per-CPU histogram slots, tried first: plain adds where the shared slots need two atomic
 * adds per histogram (≈ 40 ns of a TCP receive). Claimed like the interface slots and
 * freed through `hist_pcpu_evict` (user space writes a retired interface's tag there for
 * the CPUs that hold it).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_HIST_PCPU_SLOTS);
	__type(key, __u32);
	__type(value, struct sirq_hist_slot);
} hist_pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIRQ_HIST_PCPU_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} hist_pcpu_evict SEC(".maps");

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

/* 1 if v > c (both < 2^63), without a branch: clang would compile the comparison to one. */
static __always_inline __u64 above(__u64 v, __u64 c)
{
	__u64 d = c - v;

	barrier_var(d);
	return d >> 63;
}

/*
 * floor(log2(v)), clamped to the buckets. Branch-free: with six branches the verifier
 * walked every combination at each call site (most of the receive's verification time).
 */
static __always_inline __u32 hist_bucket(__u64 v)
{
	__u64 r, s, big;

	v &= ~(1ULL << 63);
	big = above(v, 0xFFFFFFFFULL); /* >= 2^32 ns: the last bucket */
	r = big << 5;
	v >>= r;
	s = above(v, 0xFFFF) << 4;
	v >>= s;
	r |= s;
	s = above(v, 0xFF) << 3;
	v >>= s;
	r |= s;
	s = above(v, 0xF) << 2;
	v >>= s;
	r |= s;
	s = above(v, 0x3) << 1;
	v >>= s;
	r |= s;
	r |= above(v, 0x1) | big * (SIRQ_HIST_BUCKETS - 1);
	/* The mask must reach the verifier (clang may fold it away): older ones lose the
	 * bounds through variable shifts and need it to bound the index. */
	barrier_var(r);
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

#endif /* __SIRQTOP_STATE_BPF_H */
