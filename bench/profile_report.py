"""The per-hook BPF cost and perf sections of bench/report.py: the profile runs' BPF
statistics per program (bodies = mean - the empty program on the same hook) and the
sender CPU's perf samples classified. Only the standard library."""
import json
import os

from parse import NAN, load_json, num, read_text, result, udp_sent_packets



def program_stats(raw, tool, workload):
    """[(program, hook, run_count, run_time_ns)] of one profile run, and its window in s."""
    base = os.path.join(raw, "profile", f"{tool}-{workload}")
    window = num(read_text(base + ".window_ns")) / 1e9
    progs = []
    if tool in ("bpfstats", "lite"):
        d = load_json(base + ".json")
        if d:
            window = d["capture"]["duration_ns"] / 1e9
            for p in d["overhead"]["programs"]:
                if p.get("run_count") is not None:
                    progs.append((p["name"], p["hook"], p["run_count"], p["run_time_ns"]))
    elif tool == "floor":
        try:
            with open(base + ".out") as f:
                for line in f:
                    parts = line.split(" ", 1)
                    if len(parts) == 2 and parts[1].startswith("{"):
                        p = json.loads(parts[1])
                        progs.append((p["name"], "", p["run_count"], p["run_time_ns"]))
        except (OSError, ValueError):
            pass
    else:
        try:
            with open(base + ".bpftool.json") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    p = json.loads(line)
                    if p.get("name", "").startswith(("BEGIN", "END")):
                        continue  # bpftrace's one-shot uprobes
                    progs.append((p.get("name", "?"), p.get("type", ""), p.get("run_cnt", 0),
                                  p.get("run_time_ns", 0)))
        except (OSError, ValueError):
            pass
    return progs, window, udp_sent_packets(base + ".workload.txt"), result(workload, base + ".workload.txt")


FLOOR_HOOK = {
    "floor_xmit": "net_dev_start_xmit",
    "floor_netif_rx": "netif_rx",
    "floor_raise": "softirq_raise",
    "floor_entry": "softirq_entry",
    "floor_exit": "softirq_exit",
    "floor_receive": "netif_receive_skb",
}


SIRQ_TO_FLOOR = {
    "tp_veth_xmit": "floor_xmit",
    "tp_netif_rx": "floor_netif_rx",
    "tp_softirq_raise": "floor_raise",
    "tp_softirq_entry": "floor_entry",
    "tp_softirq_exit": "floor_exit",
    "tp_netif_receive": "floor_receive",
}


def hook_bodies(prof, workloads):
    """Per workload, per sirqtop program: empty/full/lite means, bodies, events/s, per packet."""
    out = {}
    for wl in workloads:
        full = prof.get(("bpfstats", wl))
        if not full:
            continue
        floor = {n: (c, ns) for n, _h, c, ns in (prof.get(("floor", wl)) or ([],))[0]}
        lite = {n: (c, ns) for n, _h, c, ns in (prof.get(("lite", wl)) or ([],))[0]}
        progs, window, sent, _res = full
        rows = []
        for name, hook, cnt, ns in progs:
            mean = ns / cnt if cnt else NAN
            fc, fns = floor.get(SIRQ_TO_FLOOR.get(name, ""), (0, 0))
            empty = fns / fc if fc else NAN
            lc, lns = lite.get(name, (0, 0))
            lmean = lns / lc if lc else NAN
            rows.append({
                "hook": FLOOR_HOOK.get(SIRQ_TO_FLOOR.get(name, ""), hook),
                "prog": name,
                "empty": empty,
                "full": mean,
                "body": mean - empty,
                "lite": lmean,
                "lite_body": lmean - empty,
                "eps": cnt / window if window else NAN,
                "per_pkt": cnt / sent if (sent and wl == "udp") else NAN,
            })
        out[wl] = rows
    return out


PERF_CATEGORIES = [
    ("program bodies (JIT code)", ("bpf_prog_",)),
    ("dispatch (bpf_trace_run*, __bpf_trace_run)", ("bpf_trace_run", "__bpf_trace_run", "__bpf_prog_enter",
                                                 "__bpf_prog_exit", "__traceiter_", "migrate_", "__rcu_read")),
    ("clock reads (bpf_ktime_get_ns)", ("read_tsc", "ktime_get_mono_fast_ns", "bpf_ktime_get_ns")),
    ("map operations (hash, LRU, per-CPU)", ("htab_", "__htab_", "lookup_nulls_elem_raw", "lookup_elem_raw",
                                           "bpf_lru_", "__bpf_lru_", "pcpu_freelist", "bpf_map_", "percpu_array",
                                           "array_map", "jhash", "bpf_ringbuf", "alloc_htab_elem", "free_htab_elem",
                                           "htab_lru_", "_raw_spin_lock", "bpf_obj_free_fields", "check_and_free")),
    ("probe reads (bpf_probe_read_kernel*)", ("bpf_probe_read_kernel", "copy_from_kernel_nofault")),
    ("current comm (bpf_get_current_comm)", ("bpf_get_current_comm", "__get_task_comm", "strscpy", "sized_strscpy")),
    ("IRQs back on (time with IRQs off)", ("_raw_spin_unlock_irqrestore", "_raw_spin_unlock_irq")),
]
FOREIGN_TOP = ("bpf_probe_read_kernel", "copy_from_kernel_nofault", "htab_", "__htab_", "lookup_nulls_elem_raw",
               "bpf_get_current_", "bpf_ktime_get_ns", "__bpf_prog_enter", "__bpf_prog_exit", "bpf_prog_")


def perfcat(path):
    """Classifies `perf script -F ip,sym` samples: under bpf_trace_run* (the tracer under test,
    tp_btf), in other BPF programs (trampolines of whoever else traces this kernel), the rest."""
    tracing = {label: 0 for label, _ in PERF_CATEGORIES}
    tracing["other, under bpf_trace_run*"] = 0
    counts = {"samples": 0, "foreign": 0, "irqoff_outside": 0}
    frames = []

    def flush():
        if not frames:
            return
        counts["samples"] += 1
        top = frames[0]
        if any(f.startswith(("bpf_trace_run", "__bpf_trace_run")) for f in frames):
            for label, prefixes in PERF_CATEGORIES:
                if top.startswith(prefixes):
                    tracing[label] += 1
                    break
            else:
                tracing["other, under bpf_trace_run*"] += 1
        elif any(f.startswith(("__bpf_prog_enter", "__bpf_prog_exit")) for f in frames[:4]) or \
                top.startswith(FOREIGN_TOP):
            counts["foreign"] += 1
        elif top.startswith(("_raw_spin_unlock_irqrestore", "_raw_spin_unlock_irq")):
            counts["irqoff_outside"] += 1

    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    flush()
                    frames = []
                    continue
                parts = line.split(None, 1)
                frames.append(parts[1] if len(parts) == 2 else "[unknown]")
        flush()
    except OSError:
        return None
    counts["tracing"] = tracing
    return counts


def perf_table(raw):
    """(conditions, rows): category -> {condition: % of the sender CPU's samples}, and notes."""
    d = os.path.join(raw, "perf")
    if not os.path.isdir(d):
        return None, {}, {}
    conds = [c for c in ("untraced", "floor", "lite", "sirqtop") if os.path.exists(os.path.join(d, c + ".perf.json"))]
    table = {}
    notes = {}
    for c in conds:
        pc = load_json(os.path.join(d, c + ".perf.json"))
        if not pc or not pc.get("samples"):
            continue
        n = pc["samples"]
        total = 0
        for label, v in pc["tracing"].items():
            table.setdefault("tracing: " + label, {})[c] = 100.0 * v / n
            total += v
        table.setdefault("**tracing, all (samples under bpf_trace_run\\*)**", {})[c] = 100.0 * total / n
        table.setdefault("BPF helper samples outside bpf_trace_run\\* (chain via udp_send_skb+0x5)", {})[c] = \
            100.0 * pc["foreign"] / n
        table.setdefault("IRQs back on, outside tracing", {})[c] = 100.0 * pc["irqoff_outside"] / n
        res = read_text(os.path.join(d, c + ".result")).split()
        table.setdefault("UDP rx kpps during the profile", {})[c] = num(res[0]) if res else NAN
        notes[c] = n
    return conds, table, notes
