"""The real-service section of bench/run.sh's report (bench/service.sh's samples):
nginx behind two veth hops under wrk keep-alive load, req/s per condition."""
import math
import os
import statistics

LABELS = {
    "untraced": "untraced",
    "floor": "floor (empty programs, sirqtop's hooks)",
    "least": "least exact work (a count per hook, softirq run time)",
    "serve": "sirqtop serve",
    "servelite": "sirqtop serve --lite",
    "bpftrace": "bpftrace (subset.bt)",
}
TARGET = 0.97  # serve >= 0.97 x untraced req/s (issue 20)


def _num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return math.nan


def _med(vals):
    v = [x for x in vals if not math.isnan(x)]
    return statistics.median(v) if v else math.nan


def _fmt(v, d):
    return "n/a" if math.isnan(v) else f"{v:.{d}f}"


def section(rows, env):
    """Markdown lines for the samples in `rows` (service.tsv as dicts); [] without any."""
    if not rows:
        return []
    data = {}  # condition -> {round: req/s}
    ready, series, errors = {}, {}, 0
    for r in rows:
        data.setdefault(r["condition"], {})[int(r["round"])] = _num(r["req_per_s"])
        ready.setdefault(r["condition"], []).append(_num(r.get("ready_ms")))
        if r.get("series") not in (None, ""):
            series.setdefault(r["condition"], []).append(_num(r["series"]))
        errors += r.get("errors") not in (None, "", "0")
    base = data.get("untraced", {})
    bmed = _med(base.values())

    def ratio(c):
        return _med(data.get(c, {}).values()) / bmed if bmed else math.nan

    out = ["## Real service: nginx behind two veth hops, wrk keep-alive (req/s)", ""]
    line = next((ln for ln in env.splitlines() if ln.startswith("service:")), "")
    if line:
        out += [line.replace("service:", "Setup:", 1) + ". Client, node (routing) and server in their own "
                "namespaces; wrk on the sender CPU, nginx (one worker) on the receiver CPU.", ""]
    out += ["| condition | req/s median (min–max) | ratio (per-round min–max) | ready ms |",
            "|---|---:|---:|---:|"]
    for c in [c for c in LABELS if c in data]:
        vals = list(data[c].values())
        paired = [data[c][r] / base[r] for r in data[c] if r in base and base[r]]
        rt = "1.00" if c == "untraced" else (
            f"**{_fmt(ratio(c), 3)}** ({_fmt(min(paired), 3)}–{_fmt(max(paired), 3)})" if paired
            else _fmt(ratio(c), 3))
        out.append(f"| {LABELS[c]} | {_fmt(_med(vals), 0)} ({_fmt(min(vals), 0)}–{_fmt(max(vals), 0)}) |"
                   f" {rt} | {_fmt(_med(ready.get(c, [])), 0)} |")
    out.append("")
    for c, s in series.items():
        s = [x for x in s if not math.isnan(x)]
        if s:
            out.append(f"- {LABELS[c]}: its /metrics had {min(s):.0f}–{max(s):.0f} series naming the node's "
                       "veths at each sample's end (it saw the traffic).")
    if errors:
        out.append(f"- {errors} sample(s) had wrk socket errors or non-2xx answers.")
    sq, bt = ratio("serve"), ratio("bpftrace")
    if not math.isnan(sq):
        ok = "met" if sq >= TARGET else "**missed**"
        out.append(f"- Target `serve` ≥ {TARGET} × untraced req/s: {sq:.3f}, {ok}"
                   + (f"; bpftrace {bt:.3f}." if not math.isnan(bt) else "."))
    out.append("")
    return out


def from_dir(raw, read_tsv, read_text):
    return section(read_tsv(os.path.join(raw, "service.tsv")), read_text(os.path.join(raw, "env.txt")))
