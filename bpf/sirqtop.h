/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between the BPF programs and user space: keys, records, constants only. */
#ifndef __SIRQTOP_H
#define __SIRQTOP_H

/*
 * Sizes and limits. Enums rather than #defines so that they are in the object's BTF and
 * the generated skeleton (`types::sirq_limits`): user space reads them from there, never
 * from a copy.
 */
enum sirq_limits {
	/* log2 histogram: bucket 0 holds [0, 2), bucket b holds [2^b, 2^(b+1)) ns; the last is open. */
	SIRQ_HIST_BUCKETS = 32,
	/* NR_SOFTIRQS: HI TIMER NET_TX NET_RX BLOCK IRQ_POLL TASKLET SCHED HRTIMER RCU */
	SIRQ_NR_VECTORS = 10,
	SIRQ_VEC_NET_TX = 2,
	SIRQ_VEC_NET_RX = 3,
	SIRQ_NAME_LEN = 16,
	/* Direct-mapped interface slots (power of two); a colliding interface uses the hash maps. */
	SIRQ_IFACE_SLOTS = 512,
	/* Per-CPU latency histogram slots (power of two), indexed by the interface slot's low
	 * bits; an interface whose slot is taken on a CPU uses the shared slots there. */
	SIRQ_HIST_PCPU_SLOTS = 64,
	/* Interfaces in the overflow hash maps. */
	SIRQ_MAX_IFACES = 2048,
	/* In-flight skb table: direct-mapped by skb pointer hash (power of two). */
	SIRQ_INFLIGHT_SLOTS = 65536,
	SIRQ_MAX_NETNS_FILTER = 256,
	/* Raise-site stacks: frames kept per stack, distinct stacks, (interface, vector, stack) keys. */
	SIRQ_STACK_DEPTH = 32,
	SIRQ_MAX_STACKS = 4096,
	SIRQ_MAX_SITES = 8192,
	/* (interface, drop reason) pairs counted. */
	SIRQ_MAX_DROP_KEYS = 4096,
	/* Paths (first transmitter, previous receiver, receiver, hop) counted. */
	SIRQ_MAX_PATHS = 4096,
	/* Direct-mapped per-CPU path slots (power of two); a colliding path uses the hash map. */
	SIRQ_PATH_SLOTS = 256,
};

/* What user space sets before load (read-only to the programs: `const volatile`). */
struct sirq_config {
	__u8 filter_netns; /* only count interfaces whose netns is in `netns_allow` */
	__u8 lite;         /* counters only: no in-flight skb tracking, no clock reads per packet */
	__u8 track_backlog; /* follow the backlog NAPI's state (softirq_exit or napi_poll attached) */
	__u8 napi_hook;     /* napi_poll attached (--napi-polls): it attributes NAPI raises */
	__u32 stack_every; /* sample the kernel stack of every Nth NET_RX/NET_TX raise per CPU; 0 = none */
	__u32 timing_rate; /* time at most about this many new skbs per second per CPU, 1 in 2^k
			    * above it, each sample weighted 2^k; 0 = time every skb */
	__u64 slow_ns;     /* slow softirqs: runs / raise->run delays this long are events; 0 = off */
	__u8 filter;       /* --filter: the placeholders of filter.bpf.h hold its bodies */
	__u8 untrusted;    /* the kernel has bpf_rdonly_cast: tp_btf pointers are cast untrusted */
};

/* Indexes into the per-CPU `counters` array: the tool's own losses and bookkeeping. */
enum sirq_counter {
	SIRQ_CTR_RINGBUF_DROPPED = 0, /* ring-buffer reserve failed */
	SIRQ_CTR_INFLIGHT_EVICTED,    /* in-flight entry overwritten before its receive */
	SIRQ_CTR_IFACE_FULL,          /* interface table full: event not counted */
	SIRQ_CTR_RAISE_UNATTRIBUTED,  /* NET_RX raises not following a counted enqueue */
	SIRQ_CTR_STACK_LOST,          /* sampled raise whose stack could not be stored */
	SIRQ_CTR_INFLIGHT_STALE,      /* entry of a previous owner of an skb address, discarded */
	SIRQ_CTR_RAISE_NAPI,          /* NET_RX raises attributed to a device's own NAPI poll */
	SIRQ_CTR_DROP_FULL,           /* drop not counted per reason: reason table full */
	SIRQ_CTR_PATH_FULL,           /* receive not counted on its path: path table full */
	SIRQ_CTR_RX_VIA_LOWER,        /* an upper's skb handed to its lower device (macvlan
				       * bridge mode): received there, counted by the kernel
				       * on the upper only, so not on the lower either */
	SIRQ_CTR_RX_ANOTHER,          /* receives seen after a peer redirect or an rx_handler */
	SIRQ_CTR_SKBS_PICKED,         /* new tracked skbs timing_pick decided on (timing_rate) */
	SIRQ_CTR_SKBS_TIMED,          /* of those, timed */
	SIRQ_CTR_NR,
};

/*
 * Interfaces are keyed by (netns cookie, ifindex): every pod has its own eth0, and the
 * kernel reuses netns inodes at once but never a cookie. The inode is carried for users.
 * Kernels without a netns cookie (< 5.12) leave it 0: then the inode is the identity.
 */
struct sirq_iface_key {
	__u64 cookie;
	__u32 netns;
	__u32 ifindex;
};

struct sirq_hist {
	__u64 count;
	__u64 sum;
	__u64 max;
	__u64 buckets[SIRQ_HIST_BUCKETS];
};

/* A sampled softirq raise site: which interface's enqueue raised it (0/0 = none), which
 * vector, and the kernel stack id in the `raise_stacks` map. */
struct sirq_site_key {
	struct sirq_iface_key iface;
	__u32 vec;
	__s32 stackid;
};

/* A drop: the interface the skb was on (skb->dev) and the kernel's drop reason (0 where
 * the kernel gives none, < 5.17). */
struct sirq_drop_key {
	struct sirq_iface_key iface;
	__u32 reason;
	__u32 _pad;
};

/*
 * One hop of a path: an skb first transmitted by `origin` (a veth) and received, at hop
 * `hop` (1 = the first receive), by `to`, coming from `prev` (the previous receiver, or
 * the origin at hop 1). The kernel keeps the skb across forwarding, bridging and NAT, so
 * one skb's receives are the hops of one path.
 */
struct sirq_path_key {
	struct sirq_iface_key origin;
	struct sirq_iface_key prev;
	struct sirq_iface_key to;
	__u32 hop;
	__u32 _pad;
};

/* Numbers of one path hop: per CPU in a slot, or shared (atomic adds) in the hash map. */
struct sirq_path_stats {
	__u64 packets;
	__u64 enqueues;       /* backlog enqueues of these skbs up to this receive, summed */
	__u64 origin_softirq; /* packets whose first transmit ran in a NET_RX softirq */
	struct sirq_hist latency; /* first transmit -> this receive; shared: count left 0 */
};

/* A per-CPU path slot: key.to.ifindex 0 = free; tag: the key's non-zero hash, which
 * user space writes to `path_evict` to free the slot of a retired path. */
struct sirq_path_slot {
	struct sirq_path_key key;
	__u64 tag;
	struct sirq_path_stats s;
};

/* Per-CPU counters of one interface. */
struct sirq_iface_counters {
	__u64 tx_packets;    /* veth transmits from this device */
	__u64 tx_bytes;
	__u64 rx_enqueued;   /* backlog enqueues with this device as receiver */
	__u64 rx_packets;    /* netif_receive_skb on this device */
	__u64 net_rx_raises; /* NET_RX raises caused by its enqueues */
	__u64 softirq_ns;    /* NET_RX time spent receiving its packets */
	__u64 dropped;       /* skbs freed as dropped (skb:kfree_skb) while on this device */
	__u64 napi_polls;    /* polls of this device's own NAPI (napi:napi_poll) */
	__u64 napi_packets;  /* packets those polls processed */
	__u64 napi_replaced; /* its transmits to the peer's own NAPI never received as the
			      * same skb: XDP on the peer copied them (or GRO merged them) */
};

/*
 * Shared (atomically updated) latency histograms of one interface. Each starts a cache line
 * (in the page-aligned `hist_slots` array): a pair's two ends update them from different
 * CPUs, and the slot's tag and key, which every lookup reads, keep a line of their own.
 */
struct sirq_iface_hists {
	struct sirq_hist veth_hop __attribute__((aligned(64)));     /* on the transmitting veth:
								       * xmit -> receive on the peer */
	struct sirq_hist backlog_wait __attribute__((aligned(64))); /* on the receiving device:
								       * enqueue -> receive */
};

/* A per-CPU interface slot: key {0, 0} = free (no interface has ifindex 0). */
struct sirq_iface_slot {
	struct sirq_iface_key key;
	struct sirq_iface_counters c;
};

/* A shared histogram slot: claimed by one store of `tag` (a non-zero hash of the key;
 * 0 = free), then `key` is written; a user matches both. */
struct sirq_hist_slot {
	__u64 tag;
	struct sirq_iface_key key;
	struct sirq_iface_hists h;
};

/* Per-CPU, per-vector softirq statistics (array index = vector). */
struct sirq_softirq_stats {
	__u64 raises;
	__u64 runs;
	__u64 run_ns;
	__u64 ksoftirqd_runs;
	struct sirq_hist run;
	struct sirq_hist raise_to_run;
};

enum sirq_event_type {
	SIRQ_EV_IFACE = 1, /* first sight of an interface: its name and kind */
};

struct sirq_iface_event {
	__u32 type;
	__u32 _pad;
	struct sirq_iface_key key;
	char name[SIRQ_NAME_LEN];
	char kind[SIRQ_NAME_LEN];
	/* A veth's or netkit's peer as the kernel links it (ifindex 0: none or not a pair):
	 * known from the first packet, even if the pair is gone before user space looks. */
	struct sirq_iface_key peer;
};

/*
 * Who pays for softirqs: the task that was running when a softirq ran (the sender at
 * its local_bh_enable, a task interrupted on irq exit, ksoftirqd, or idle), by that
 * task's network namespace. Charged at softirq exit only, never per packet.
 */
enum sirq_payer_kind {
	SIRQ_PAYER_TASK = 0,      /* an ordinary task: keyed by its netns */
	SIRQ_PAYER_IDLE = 1,      /* the idle task (pid 0) */
	SIRQ_PAYER_KSOFTIRQD = 2, /* this CPU's ksoftirqd */
	SIRQ_MAX_PAYERS = 1024,   /* payer keys in the per-CPU hash; more go to payer_overflow */
};

struct sirq_payer_key {
	__u64 cookie; /* netns cookie (0 for idle/ksoftirqd, or < 5.12) */
	__u32 netns;  /* netns inode (0 for idle/ksoftirqd) */
	__u32 kind;   /* enum sirq_payer_kind */
};

struct sirq_payer_stats {
	__u64 ns[SIRQ_NR_VECTORS];
	__u64 runs[SIRQ_NR_VECTORS];
};

/*
 * Per CPU: the task softirqs last ran on (and its nsproxy, which setns/unshare replace),
 * its payer key, and what it paid since it became the cached one. Flushed into `payers`
 * when another task pays; user space adds the unflushed part.
 */
struct sirq_payer_cache {
	__u64 task;
	__u64 nsproxy;
	struct sirq_payer_key key;
	struct sirq_payer_stats s;
};

/*
 * Slow softirqs: a run, or a raise -> run delay, of at least cfg.slow_ns. Counted exactly
 * per CPU in `slow_state`; each also becomes one record in the `slow_events` ring buffer,
 * at most SIRQ_SLOW_PER_SEC per CPU per second (the rest are counted as capped).
 */
enum sirq_slow_kind {
	SIRQ_SLOW_RUN = 0,   /* softirq_entry -> softirq_exit */
	SIRQ_SLOW_DELAY = 1, /* first raise -> softirq_entry */
	SIRQ_SLOW_KINDS = 2,
	SIRQ_SLOW_PER_SEC = 64, /* ring-buffer records per CPU per second (rate cap) */
};

struct sirq_slow_event {
	__u64 ts;          /* bpf_ktime_get_ns() (CLOCK_MONOTONIC): the run's exit, the delay's entry */
	__u64 duration_ns;
	__u64 netns_cookie; /* the task's netns (0 before 5.12) */
	__u32 netns;        /* the task's netns inode (0: no nsproxy, an exiting task) */
	__u32 cpu;
	__u32 vec;
	__u32 kind;        /* enum sirq_slow_kind */
	__u32 pid;         /* the task on the CPU when the softirq ran (0 = idle) */
	__u32 ksoftirqd;   /* 1: it ran in this CPU's ksoftirqd */
	__u32 packets;     /* NET_RX runs: receives in this run */
	__u32 _pad;
	struct sirq_iface_key top; /* NET_RX runs: the receiver of most of them (ifindex 0: none) */
	char comm[SIRQ_NAME_LEN];
};

/* Per CPU: exact counts of slow softirqs and the ring buffer's rate-cap state. */
struct sirq_slow_state {
	__u64 counts[SIRQ_NR_VECTORS * SIRQ_SLOW_KINDS]; /* [vec * SIRQ_SLOW_KINDS + kind] */
	__u64 capped;      /* not sent: over the rate cap */
	__u64 lost;        /* not sent: ring buffer full */
	__u64 window_ts;   /* start of the current one-second cap window */
	__u64 window_n;    /* records sent in it */
};

#endif /* __SIRQTOP_H */
