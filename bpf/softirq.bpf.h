// SPDX-License-Identifier: GPL-2.0
/*
 * Part of sirqtop.bpf.c, included once from it, last: the softirq entry and exit bodies,
 * who pays (softirq time by the running task's netns) and slow softirqs.
 */
#ifndef __SIRQTOP_SOFTIRQ_BPF_H
#define __SIRQTOP_SOFTIRQ_BPF_H

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
 * bpf_get_current_task_btf() (5.11+) gives tp_btf programs the task as a BTF pointer, so
 * its fields are plain loads; elsewhere each field is a bpf_probe_read_kernel (CO-RE).
 * Resolved at load time: on older kernels the direct branch is dead code.
 */
#define HAVE_TASK_BTF bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)

/* The current task (as a number, for comparisons) and its nsproxy. */
static __always_inline __u64 current_nsproxy(struct nsproxy **nsp, bool direct)
{
	if (direct && HAVE_TASK_BTF) {
		struct task_struct *t = UNTRUSTED(bpf_get_current_task_btf(), struct task_struct);

		*nsp = t->nsproxy;
		return (__u64)t;
	} else {
		__u64 t = bpf_get_current_task();

		*nsp = BPF_CORE_READ((struct task_struct *)t, nsproxy);
		return t;
	}
}

/* The network namespace of an nsproxy from current_nsproxy(). */
static __always_inline struct net *nsproxy_net(struct nsproxy *nsp, bool direct)
{
	if (!nsp)
		return NULL;
	if (direct && HAVE_TASK_BTF)
		return nsp->net_ns;
	return BPF_CORE_READ(nsp, net_ns);
}

static __always_inline __u32 net_inum(struct net *net, bool direct)
{
	if (!net)
		return 0;
	return direct && HAVE_TASK_BTF ? net->ns.inum : BPF_CORE_READ(net, ns.inum);
}

/*
 * Charges a softirq run of `d` ns to the task it ran on. Softirqs run on few tasks in a
 * row, so the usual case is plain adds to this CPU's cached payer; only a change of task
 * reads the new task's netns and flushes the old one's sum into the hash map.
 */
static __always_inline void charge_payer(__u32 vec, __u64 d, bool ksoftirqd, bool direct)
{
	struct sirq_payer_cache *c;
	struct nsproxy *nsp;
	__u32 zero = 0;
	__u64 t;

	if (vec >= SIRQ_NR_VECTORS)
		return;
	c = bpf_map_lookup_elem(&payer_cache, &zero);
	if (!c)
		return;
	t = current_nsproxy(&nsp, direct);
	if (c->task != t || c->nsproxy != (__u64)nsp) {
		struct sirq_payer_key pk = {};

		flush_payer(c);
		if (ksoftirqd) {
			pk.kind = SIRQ_PAYER_KSOFTIRQD;
		} else if ((__u32)bpf_get_current_pid_tgid() == 0) {
			pk.kind = SIRQ_PAYER_IDLE;
		} else {
			struct net *net = nsproxy_net(nsp, direct);

			if (net) {
				pk.netns = net_inum(net, direct);
				pk.cookie = net_cookie(net, direct && HAVE_TASK_BTF);
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

/* ---- slow softirqs: runs and raise -> run delays of at least cfg.slow_ns ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} slow_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sirq_slow_state);
} slow_state SEC(".maps");

struct sirq_slow_event _sirq_slow_event = {};
struct sirq_slow_state _sirq_slow_state = {};
enum sirq_slow_kind _sirq_slow_kind = 0;

/*
 * One slow softirq: counted (exactly, except NET_RX delays sampled by --timing-rate,
 * weighted as in the raise -> run histogram), and sent as a record unless this CPU already sent
 * SIRQ_SLOW_PER_SEC in the current second (then counted as capped) or the ring is full
 * (counted as lost). Only reached above the threshold: the fast path is one compare.
 */
static __always_inline void slow_event(struct cpu_state *st, __u32 vec, __u32 kind, __u64 now,
					 __u64 d, bool ksoftirqd, __u32 k, bool direct)
{
	struct sirq_slow_state *s;
	struct sirq_slow_event *e;
	struct nsproxy *nsp;
	struct net *net;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&slow_state, &zero);
	if (!s || vec >= SIRQ_NR_VECTORS || kind >= SIRQ_SLOW_KINDS)
		return;
	/* Weighted like the histograms: a sampled delay (k > 0) stands for 2^k. */
	s->counts[vec * SIRQ_SLOW_KINDS + kind] += 1ULL << (k & 31);
	if (now - s->window_ts >= 1000000000ULL) {
		s->window_ts = now;
		s->window_n = 0;
	}
	if (s->window_n >= SIRQ_SLOW_PER_SEC) {
		s->capped++;
		return;
	}
	e = bpf_ringbuf_reserve(&slow_events, sizeof(*e), 0);
	if (!e) {
		s->lost++;
		return;
	}
	s->window_n++;
	e->ts = now;
	e->duration_ns = d;
	e->cpu = bpf_get_smp_processor_id();
	e->vec = vec;
	e->kind = kind;
	e->pid = (__u32)bpf_get_current_pid_tgid();
	e->ksoftirqd = ksoftirqd;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	current_nsproxy(&nsp, direct);
	net = nsproxy_net(nsp, direct);
	e->netns = net_inum(net, direct);
	e->netns_cookie = net ? net_cookie(net, direct && HAVE_TASK_BTF) : 0;
	e->_pad = 0;
	if (vec == SIRQ_VEC_NET_RX && kind == SIRQ_SLOW_RUN) {
		e->packets = st->run_pkts;
		e->top = st->run_top;
	} else {
		e->packets = 0;
		__builtin_memset(&e->top, 0, sizeof(e->top));
	}
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int on_softirq_entry(__u32 vector, bool direct)
{
	/* Widened behind a barrier: the bound check below then covers the register every
	 * later use reads (the compiler cannot re-derive it from the argument). */
	__u64 vec = vector;

	struct sirq_softirq_stats *s;
	struct cpu_state *st;
	__u64 now;

	__u32 key = vector;

	barrier_var(vec);
	if (vec >= SIRQ_NR_VECTORS)
		return 0;
	st = cpu_state();
	s = bpf_map_lookup_elem(&softirqs, &key);
	if (!st || !s)
		return 0;
	now = bpf_ktime_get_ns();
	if (st->raise_ts[vec]) {
		__u64 d = now - st->raise_ts[vec];
		__u32 k = st->raise_k[vec] & 31; /* the sample's weight 2^k (--timing-rate) */

		hist_addw(&s->raise_to_run, d, k);
		st->raise_ts[vec] = 0;
		if (cfg.slow_ns && d >= cfg.slow_ns)
			slow_event(st, vec, SIRQ_SLOW_DELAY, now, d, in_ksoftirqd(st), k, direct);
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
		st->run_pkts = 0;
		st->run_top_n = 0;
		st->run_top.ifindex = 0;
	}
	return 0;
}

static __always_inline int on_softirq_exit(__u32 vector, bool direct)
{
	__u64 vec = vector; /* widened behind a barrier, as in on_softirq_entry */
	struct sirq_softirq_stats *s;
	struct cpu_state *st;
	bool ksoftirqd;
	__u64 now, d;
	__u32 key;

	barrier_var(vec);
	if (vec >= SIRQ_NR_VECTORS)
		return 0;
	st = cpu_state();
	if (!st || !st->run_ts || st->run_vec != vec)
		return 0; /* attached mid-run: no start time */
	key = vector;
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
	charge_payer(vec, d, ksoftirqd, direct);
	if (cfg.slow_ns && d >= cfg.slow_ns)
		slow_event(st, vec, SIRQ_SLOW_RUN, now, d, ksoftirqd, 0, direct);
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

#endif /* __SIRQTOP_SOFTIRQ_BPF_H */
