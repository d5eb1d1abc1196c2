#!/usr/bin/env python3
"""Helpers of bench/run.sh: parse iperf3 and sirqtop output, and write the report.

  report.py result udp|tcp FILE    -> "rx_kpps sent_kpps loss_pct" | "gbit_s retransmits nan"
                                      (FILE: bench/udpflood.c's lines, or iperf3 -J)
  report.py captured FILE NETNS IF -> packets sirqtop counted on interface IF of netns NETNS
  report.py perfcat FILE           -> perf script -F ip,sym samples classified (JSON)
  report.py report DIR             -> the markdown report of one run (stdout)

Only the standard library: it runs wherever bench/run.sh does.
"""
import csv
import json
import math
import os
import statistics
import sys

import service_report

NAN = float("nan")

LABELS = {
    "untraced": "untraced",
    "floor": "floor (empty progs, same hooks)",
    "sirqtop": "sirqtop --json",
    "lite": "sirqtop --json --lite",
    "filtered": "sirqtop --json --filter udp",
    "bpfstats": "sirqtop --json --bpf-stats",
    "bpftrace": "bpftrace (subset.bt)",
    "bcc": "bcc softirqs -d",
    "base": "base: BASE_SIRQTOP --json",
}
ORDER = list(LABELS)

# Prototype numbers from issue #5 (ratio to untraced, same workload), for context.
PROTOTYPE = {
    "bpftrace": (0.58, 0.84),
    "bcc": (0.81, 0.93),
}

TARGETS = {
    "udp_ratio": 0.80,
    "tcp_ratio": 0.95,
    "lite_udp_ratio": 0.90,
    "floor_factor": 1.3,
    "prog_ns": 60.0,
    "ingest_eps": 10e6,
    "ready_ms": 50.0,
    "rss_mib": 64.0,
}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def flood_lines(path):
    """The JSON lines bench/udpflood.c printed (sender and sink), merged; None if not one."""
    merged = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{") and ('"sent"' in line or '"received"' in line):
                    d = json.loads(line)
                    if "sent" in d:
                        merged["sent"], merged["sent_ns"] = d["sent"], d["ns"]
                    else:
                        merged["received"], merged["recv_ns"] = d["received"], d["ns"]
    except (OSError, ValueError):
        return None
    return merged or None


def result(workload, path):
    """(value, sent, loss %): UDP rx kpps, sent kpps; TCP Gbit/s, retransmits, nan."""
    fl = flood_lines(path) if workload == "udp" else None
    if fl:
        if not fl.get("recv_ns") or not fl.get("sent_ns"):
            return NAN, NAN, NAN
        rx = fl["received"] / (fl["recv_ns"] / 1e9)
        sent = fl["sent"] / (fl["sent_ns"] / 1e9)
        loss = 100.0 * max(fl["sent"] - fl["received"], 0) / max(fl["sent"], 1)
        return rx / 1e3, sent / 1e3, loss
    d = load_json(path)
    if not d or "end" not in d or d.get("error"):
        return NAN, NAN, NAN
    e = d["end"]
    if workload == "udp":
        rcv = e.get("sum_received") or e.get("sum") or {}
        snd = e.get("sum_sent") or e.get("sum") or {}
        secs = rcv.get("seconds") or 0
        if not secs:
            return NAN, NAN, NAN
        got = rcv.get("packets", 0) - rcv.get("lost_packets", 0)
        sent = snd.get("packets", 0) / (snd.get("seconds") or secs)
        loss = 100.0 * rcv.get("lost_packets", 0) / max(rcv.get("packets", 0), 1)
        return got / secs / 1e3, sent / 1e3, loss
    rcv = e.get("sum_received") or {}
    snd = e.get("sum_sent") or {}
    return rcv.get("bits_per_second", NAN) / 1e9, snd.get("retransmits", NAN), NAN


def udp_sent_packets(path):
    fl = flood_lines(path)
    if fl:
        return fl.get("sent")
    d = load_json(path)
    try:
        return d["end"]["sum_sent"]["packets"]
    except (TypeError, KeyError):
        return None


def captured(path, netns_name, ifname):
    d = load_json(path)
    if not d:
        return ""
    for i in d.get("interfaces", []):
        if i.get("netns_name") == netns_name and i.get("name") == ifname:
            return str(i.get("tx_packets"))
    return "0"


def fmt(v, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:,.{digits}f}"


def med(vals):
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else NAN


def rng(vals, digits=1):
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    if not vals:
        return "n/a"
    return f"{min(vals):,.{digits}f}–{max(vals):,.{digits}f}"


def read_tsv(path):
    try:
        with open(path) as f:
            return list(csv.DictReader(f, delimiter="\t"))
    except OSError:
        return []


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return NAN


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


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


def report(raw):
    out = []
    w = out.append
    env = read_text(os.path.join(raw, "env.txt"))
    samples = read_tsv(os.path.join(raw, "samples.tsv"))
    tracers = read_tsv(os.path.join(raw, "tracers.tsv"))
    ready = read_tsv(os.path.join(raw, "ready.tsv"))
    us = load_json(os.path.join(raw, "userspace.json"))
    us64 = load_json(os.path.join(raw, "userspace-64cpu.json"))

    w(f"# sirqtop overhead benchmark: {os.path.basename(raw)}")
    w("")
    w("```")
    w(env)
    w("```")
    w("")

    data = {}  # (cond, workload) -> {round: value}
    extra = {}  # (cond, 'udp') -> {round: (sent, loss)}
    loads = []
    for s in samples:
        key = (s["condition"], s["workload"])
        data.setdefault(key, {})[int(s["round"])] = num(s["value"])
        extra.setdefault(key, {})[int(s["round"])] = (num(s["sent"]), num(s["loss_pct"]))
        loads.append(num(s["load1"]))
    conds = [c for c in ORDER if any(k[0] == c for k in data)]
    workloads = [x for x in ("udp", "tcp") if any(k[1] == x for k in data)]

    def ratio(c, wl):
        base = med(data.get(("untraced", wl), {}).values())
        v = med(data.get((c, wl), {}).values())
        return v / base if base and not math.isnan(base) else NAN

    def paired(c, wl):
        b = data.get(("untraced", wl), {})
        v = data.get((c, wl), {})
        return [v[r] / b[r] for r in v if r in b and b[r]]

    ready_by = {}
    hwm_by = {}
    traced = {}
    for t in tracers:
        ready_by.setdefault(t["condition"], []).append(num(t["ready_ms"]))
        hwm_by.setdefault(t["condition"], []).append(num(t["hwm_kib"]) / 1024)
        traced.setdefault(t["condition"], []).append(num(t["traced_tx"]))

    w("## Throughput (median of rounds, min–max; ratio = median / untraced median of this run)")
    w("")
    head = "| condition |"
    sep = "|---|"
    for wl in workloads:
        if wl == "udp":
            head += " UDP 64 B rx kpps | ratio (per-round min–max) | sent kpps | rx loss % |"
            sep += "---:|---:|---:|---:|"
        else:
            head += " TCP Gbit/s | ratio (per-round min–max) |"
            sep += "---:|---:|"
    head += " ready ms | tracer VmHWM MiB |"
    sep += "---:|---:|"
    w(head)
    w(sep)
    for c in conds:
        row = f"| {LABELS.get(c, c)} |"
        for wl in workloads:
            vals = list(data.get((c, wl), {}).values())
            pr = paired(c, wl)
            rt = "1.00" if c == "untraced" else f"**{fmt(ratio(c, wl), 2)}** ({rng(pr, 2)})"
            if wl == "udp":
                ex = list(extra.get((c, wl), {}).values())
                row += (f" {fmt(med(vals))} ({rng(vals)}) | {rt} | {fmt(med([e[0] for e in ex]))} |"
                        f" {fmt(med([e[1] for e in ex]))} |")
            else:
                row += f" {fmt(med(vals), 2)} ({rng(vals, 2)}) | {rt} |"
        rd = ready_by.get(c, [])
        row += f" {fmt(med(rd), 0)} | {fmt(med(hwm_by.get(c, [])), 1)} |"
        w(row)
    w("")
    for c in ("bcc", "bpftrace", "floor", "sirqtop", "lite", "filtered", "bpfstats", "base"):
        note = read_text(os.path.join(raw, f"{c}-failed.txt"))
        if note:
            w(f"- **{LABELS[c]}: n/a**: {note}")
    na = read_text(os.path.join(raw, "bcc-na.txt"))
    if na:
        w(f"- **bcc softirqs -d: n/a**: {na}")
    note = read_text(os.path.join(raw, "bcc-note.txt"))
    if note and not na:
        w(f"- bcc: {note}")
    for c in ("sirqtop", "lite", "filtered", "bpfstats", "base"):
        tx = [t for t in traced.get(c, []) if not math.isnan(t)]
        if tx:
            w(f"- {LABELS[c]} counted {fmt(min(tx), 0)}–{fmt(max(tx), 0)} packets on the sending veth per "
              "capture (it saw the traffic).")
    fp = [s for s in samples if s.get("foreign_progs") not in (None, "", "0", "?")]
    if fp:
        w(f"- {len(fp)} sample(s) still had other BPF tracing programs loaded at their end (after one retry).")
    elif samples and "foreign_progs" in samples[0]:
        w("- No other BPF tracing programs were loaded before or after any sample.")
    ul = [x for x in loads if not math.isnan(x)]
    if ul:
        w(f"- 1-min load average during the samples: {min(ul):.2f}–{max(ul):.2f}.")
    for wl in workloads:
        b = [v for v in data.get(("untraced", wl), {}).values() if not math.isnan(v)]
        if len(b) > 1:
            w(f"- untraced {wl.upper()} spread (max−min)/median: {100 * (max(b) - min(b)) / med(b):.1f} %.")
    w("")

    # ---- targets ----------------------------------------------------------------------
    w("## Targets")
    w("")
    w("| target | measured | |")
    w("|---|---:|---|")

    def verdict(ok):
        if ok is None:
            return "n/a"
        return "met" if ok else "**missed**"

    def line(name, value, ok):
        w(f"| {name} | {value} | {verdict(ok)} |")

    for wl in workloads:
        fl, sq = ratio("floor", wl), ratio("sirqtop", wl)
        if not math.isnan(fl) and not math.isnan(sq):
            of, os_ = 1 - fl, 1 - sq
            factor = os_ / of if of > 0 else (math.inf if os_ > 0 else 0.0)
            line(f"{wl.upper()}: sirqtop overhead ≤ 1.3 × floor overhead",
                 f"sirqtop {100 * os_:.1f} % vs floor {100 * of:.1f} % (× {factor:.2f})",
                 factor <= TARGETS["floor_factor"] or os_ <= 0)
    if "udp" in workloads:
        r = ratio("sirqtop", "udp")
        line("UDP flood ≥ 0.80 × untraced", fmt(r, 3), None if math.isnan(r) else r >= TARGETS["udp_ratio"])
        r = ratio("lite", "udp")
        line("--lite UDP ≥ 0.90 × untraced", fmt(r, 3), None if math.isnan(r) else r >= TARGETS["lite_udp_ratio"])
        # --filter udp evaluates the filter once per packet: its cost per packet is the
        # difference of the sender's time per received datagram against sirqtop's.
        f, sq = ratio("filtered", "udp"), ratio("sirqtop", "udp")
        fk = med(data.get(("filtered", "udp"), {}).values())
        sk = med(data.get(("sirqtop", "udp"), {}).values())
        if not math.isnan(f) and not math.isnan(sq) and fk and sk:
            per = 1e6 / fk - 1e6 / sk  # kpps -> ns per packet
            line("UDP: --filter udp vs sirqtop --json (same run)",
                 f"{f / sq:.3f} × ({per:+.0f} ns/packet)", None)
    if "tcp" in workloads:
        r = ratio("sirqtop", "tcp")
        line("TCP ≥ 0.95 × untraced", fmt(r, 3), None if math.isnan(r) else r >= TARGETS["tcp_ratio"])
    for wl in workloads:
        # A change must not cost more than the noise against the build before it.
        b, sq = ratio("base", wl), ratio("sirqtop", wl)
        if not math.isnan(b) and not math.isnan(sq):
            line(f"{wl.upper()}: sirqtop ≥ base − 0.01 (the build in BASE_SIRQTOP, same run)",
                 f"{sq:.3f} vs base {b:.3f} ({100 * (sq - b):+.1f} points)", sq >= b - 0.01)

    prof = {}
    if os.path.isdir(os.path.join(raw, "profile")):
        for tool in ("floor", "bpfstats", "lite", "bpftrace", "bcc"):
            for wl in workloads:
                p = program_stats(raw, tool, wl)
                if p[0]:
                    prof[(tool, wl)] = p
    bodies = hook_bodies(prof, workloads)
    worst_raw = max(((b["full"], b["prog"], wl) for wl in workloads for b in bodies.get(wl, [])
                     if not math.isnan(b["full"])), default=None)
    worst = max(((b["body"], b["prog"], wl) for wl in workloads for b in bodies.get(wl, [])
                 if not math.isnan(b["body"])), default=None)
    if worst:
        line("each BPF program ≤ 60 ns mean body (mean − empty program on the same hook)",
             f"worst {worst[1]} {worst[0]:.0f} ns ({worst[2].upper()})", worst[0] <= TARGETS["prog_ns"])
    if worst_raw:
        line("… the same on the raw mean (body + the stats' own ~empty-program cost)",
             f"worst {worst_raw[1]} {worst_raw[0]:.0f} ns ({worst_raw[2].upper()})",
             worst_raw[0] <= TARGETS["prog_ns"])
    if us:
        line("user-space ingest ≥ 10 M events/s (one core)",
             f"{us['stream_events_per_s'] / 1e6:.0f} M events/s stream; "
             f"{us['merge_records_per_s'] / 1e6:.0f} M per-CPU records/s merged",
             us["stream_events_per_s"] >= TARGETS["ingest_eps"])
    rd = [num(r["ready_ms"]) for r in ready if r["mode"] == "sirqtop"]
    if rd:
        line("ready ≤ 50 ms (process start → `sirqtop: ready`)", f"median {med(rd):.0f} ms ({rng(rd, 0)})",
             med(rd) <= TARGETS["ready_ms"])
    if us:
        mib = us["rss_capture_hwm_kib"] / 1024
        line("RSS ≤ 64 MiB at 10 k interfaces", f"{mib:.1f} MiB (--json capture path)", mib <= TARGETS["rss_mib"])
    w("")

    # ---- per-hook cost ----------------------------------------------------------------
    if prof:
        w("## Per-hook BPF cost (separate runs, kernel BPF stats on)")
        w("")
        w("Mean = run_time_ns / run_count as the kernel accounts it (the program plus the stats' own")
        w("clock reads; the tracepoint dispatch around it is not included). Body = mean − the empty")
        w("program's mean on the same hook in the same workload (bench_floor). Events/s = run_count /")
        w("attach window; per packet = run_count / UDP datagrams sent (every datagram crosses the whole")
        w("path on the sender's CPU).")
        w("")
        for wl in workloads:
            rows = bodies.get(wl, [])
            if not rows:
                continue
            hdr = []
            for tool in ("floor", "bpfstats", "lite"):
                p = prof.get((tool, wl))
                if p:
                    res = p[3]
                    rate = f"{fmt(res[0])} kpps" if wl == "udp" else f"{fmt(res[0], 2)} Gbit/s"
                    hdr.append(f"{LABELS[tool]} {rate}")
            w(f"**{wl.upper()}** ({'; '.join(hdr)})")
            w("")
            w("| hook | sirqtop program | empty ns | sirqtop ns | body ns | --lite ns | --lite body ns |"
              " events/s | per packet |")
            w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
            tot = {"empty": 0.0, "full": 0.0, "lite": 0.0}
            seen = {"empty": 0, "full": 0, "lite": 0}
            for b in rows:
                w(f"| {b['hook']} | {b['prog']} | {fmt(b['empty'])} | {fmt(b['full'])} | **{fmt(b['body'])}** |"
                  f" {fmt(b['lite'])} | {fmt(b['lite_body'])} | {fmt(b['eps'], 0)} | {fmt(b['per_pkt'], 2)} |")
                for k in tot:
                    if not math.isnan(b[k]) and not math.isnan(b["per_pkt"]):
                        tot[k] += b[k] * b["per_pkt"]
                        seen[k] += 1
            for k in tot:
                if seen[k] != len(rows):
                    tot[k] = NAN
            if wl == "udp":
                w(f"| **per packet** | | {fmt(tot['empty'], 0)} | {fmt(tot['full'], 0)} |"
                  f" **{fmt(tot['full'] - tot['empty'], 0)}** | {fmt(tot['lite'], 0)} |"
                  f" {fmt(tot['lite'] - tot['empty'], 0)} | | |")
            w("")
        for (tool, wl), (progs, window, sent, res) in sorted(prof.items(), key=lambda k: (ORDER.index(k[0][0]), k[0][1])):
            if tool not in ("bpftrace", "bcc"):
                continue
            rate = (f"{fmt(res[0])} kpps" if wl == "udp" else f"{fmt(res[0], 2)} Gbit/s")
            w(f"**{LABELS[tool]}, {wl.upper()}** ({rate}; classic tracepoints, bpftool)")
            w("")
            w("| program | run_count | mean ns | events/s | per packet |")
            w("|---|---:|---:|---:|---:|")
            tot_ns = 0
            for name, _hook, cnt, ns in progs:
                per = cnt / sent if (sent and wl == "udp") else NAN
                tot_ns += ns
                w(f"| {name} | {cnt:,} | {fmt(ns / cnt if cnt else NAN, 1)} |"
                  f" {fmt(cnt / window if window else NAN, 0)} | {fmt(per, 2)} |")
            if wl == "udp" and sent:
                w(f"| **per packet** | | {fmt(tot_ns / sent, 0)} | | |")
            w("")

    # ---- perf ---------------------------------------------------------------------------
    pconds, table, nsamples = perf_table(raw)
    if pconds and table:
        w("## Where the sender's CPU goes (perf cpu-clock samples of the sender CPU, UDP flood)")
        w("")
        w("% of the samples on the sender's CPU (where every hook fires). \"Tracing\" = samples with")
        w("bpf_trace_run* in their call chain, split by the top frame. Without a PMU (cpu-clock), a sample")
        w("taken while IRQs are off is charged where they come back on. Samples: " +
          ", ".join(f"{LABELS[c]} {n:,}" for c, n in nsamples.items()) + ".")
        w("")
        w("| | " + " | ".join(LABELS[c] for c in pconds) + " |")
        w("|---|" + "---:|" * len(pconds))
        for label, vals in table.items():
            d = 0 if label.startswith("UDP") else 1
            w(f"| {label} | " + " | ".join(fmt(vals.get(c, NAN), d) for c in pconds) + " |")
        w("")

    out.extend(service_report.from_dir(raw, read_tsv, read_text))

    # ---- ready ------------------------------------------------------------------------
    if ready or ready_by:
        w("## Attach-to-ready time (process start → ready line)")
        w("")
        w("| tool | runs | median ms | min–max ms |")
        w("|---|---:|---:|---:|")
        for mode in ("sirqtop", "lite", "base"):
            v = [num(r["ready_ms"]) for r in ready if r["mode"] == mode]
            if v:
                w(f"| {LABELS[mode]} (idle start-ups) | {len(v)} | {fmt(med(v), 0)} | {rng(v, 0)} |")
        b = [num(r["ready_ms"]) for r in ready if r["mode"] == "base"]
        if b and rd:
            w(f"\nsirqtop / base, median idle start-up: **{med(rd) / med(b):.2f}** (same run, interleaved).")
        for c in conds:
            v = [x for x in ready_by.get(c, []) if not math.isnan(x)]
            if v:
                w(f"| {LABELS[c]} (benchmark rounds) | {len(v)} | {fmt(med(v), 0)} | {rng(v, 0)} |")
        w("")

    # ---- user space -------------------------------------------------------------------
    if us:
        w("## User space (examples/bench_userspace, synthetic, one core)")
        w("")
        w("| measure | " + f"{us['cpus']} CPUs |" + (f" {us64['cpus']} CPUs |" if us64 else ""))
        w("|---|---:|" + ("---:|" if us64 else ""))
        rows = [
            ("peak RSS, `--json` capture of 10 k interfaces (MiB)", "rss_capture_hwm_kib", 1 / 1024, 1),
            ("peak RSS, + second snapshot and delta (MiB)", "rss_hwm_kib", 1 / 1024, 1),
            ("JSON document size (MiB)", "json_bytes", 1 / 1048576, 1),
            ("per-CPU counter records merged (M/s)", "merge_records_per_s", 1e-6, 0),
            ("per-CPU softirq records merged (M/s)", "vector_merge_records_per_s", 1e-6, 0),
            ("per-packet event stream, hash + histogram (M events/s)", "stream_events_per_s", 1e-6, 1),
            ("Snapshot::delta, 10 k interfaces (ms)", "delta_ms", 1, 2),
            ("Capture::new (ms)", "capture_new_ms", 1, 2),
            ("JSON serialization (ms)", "json_ms", 1, 2),
            ("snapshot path total (ms)", "snapshot_path_ms", 1, 2),
        ]
        for label, k, scale, d in rows:
            line_ = f"| {label} | {fmt(us[k] * scale, d)} |"
            if us64:
                line_ += f" {fmt(us64[k] * scale, d)} |"
            w(line_)
        w("")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) >= 4 and argv[1] == "result":
        v = result(argv[2], argv[3])
        print(" ".join("nan" if math.isnan(x) else f"{x:.3f}" for x in v))
    elif len(argv) >= 5 and argv[1] == "captured":
        print(captured(argv[2], argv[3], argv[4]))
    elif len(argv) >= 3 and argv[1] == "perfcat":
        print(json.dumps(perfcat(argv[2])))
    elif len(argv) >= 3 and argv[1] == "report":
        sys.stdout.write(report(argv[2]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
