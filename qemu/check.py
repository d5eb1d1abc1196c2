#!/usr/bin/env python3
"""Parse the serial console logs of the sirqtop QEMU matrix and check them.

usage: qemu/check.py [--markdown FILE] [--expect-backends b1,b2,...] LOG...

Each LOG is the console of one boot (qemu/init.sh writes @@SIRQTOP markers).
Prints a kernel x backend table, the reasons of every failing cell with the
guest's output, optionally writes a markdown table, and exits 1 if any cell
(or boot) failed.
"""
import argparse
import json
import re
import sys
from datetime import datetime, timezone

import datapath_check as dp
from datapath_check import j, kv, num

HOOKS = ("veth_xmit", "netif_rx", "softirq_raise")
# README: "auto" prefers tracepoint, then fentry, then kprobe. All three hooks
# have a tracepoint on the kernels of the matrix.
AUTO_EXPECTED = "tracepoint"
SLACK = 30  # packets the kernel may add (nothing else is expected: static neighbours, no IPv6)
HOP_MISS = 5  # veth_hop samples that may be lost


def parse_log(path):
    text = open(path, errors="replace").read().replace("\r", "")
    meta, blocks = {}, {}
    cur, buf = None, []
    for line in text.split("\n"):
        # markers can follow other output on the same line (no newline before them)
        m = re.search(r"@@SIRQTOP:BEGIN (\S+) (\S+)@@$", line)
        if m and cur is None:
            cur, buf = (m.group(1), m.group(2)), []
            continue
        if cur is not None:
            if line.endswith("@@SIRQTOP:END %s %s@@" % cur):
                head = line[: -len("@@SIRQTOP:END %s %s@@" % cur)]
                if head:
                    buf.append(head)
                blocks[cur] = "\n".join(buf)
                cur = None
            else:
                buf.append(line)
            continue
        m = re.search(r"@@SIRQTOP:META ([^=\s]+)=(.*)$", line)
        if m:
            meta[m.group(1)] = m.group(2)
    if cur is not None:  # truncated block (guest killed)
        blocks[cur] = "\n".join(buf) + "\n<truncated: no END marker>"
    return {
        "path": path,
        "text": text,
        "meta": meta,
        "blocks": blocks,
        "started": "@@SIRQTOP:START@@" in text,
        "done": "@@SIRQTOP:DONE@@" in text,
    }


def in_range(v, lo, hi):
    return num(v) is not None and lo <= v <= hi


def unsupported_reason(meta, backend):
    """Why the guest kernel cannot offer a forced backend at all, or None."""
    if backend == "fentry" and meta.get("btf_veth") == "no":
        return "no module BTF for veth (/sys/kernel/btf/veth), which fentry on veth_xmit needs"
    if backend == "kprobe" and meta.get("kprobe_pmu") == "no":
        return "kprobes (no kprobe PMU)"
    return None


def check_cell(boot, backend, n, m=None, dp_enabled=frozenset()):
    """Return (ok, counts, reasons, details) for one kernel x backend."""
    m = n * 3 // 5 if m is None else m
    meta, blocks = boot["meta"], boot["blocks"]
    res = kv(meta.get("result_" + backend))
    counts = {"attach_s": res.get("attach_s")}
    reasons, details = [], []
    for k in ("error_" + backend, "error_dp_" + backend):
        if k in meta:
            reasons.append(meta[k])
    stderr = blocks.get(("stderr", backend), "").strip()
    if stderr:
        details.append("sirqtop stderr:\n" + stderr)
    if not res:
        reasons.append("backend never ran (guest stopped before it)")
        return False, counts, reasons, details
    last_err = stderr.splitlines()[-1] if stderr else ""
    unsupported = unsupported_reason(meta, backend)
    if unsupported:
        # a forced backend the kernel cannot offer must fail fast and say so, not hang or lie
        counts["unsupported"] = unsupported
        if res.get("rc") not in ("0", None) and res.get("ready") == "no" and "sirqtop:" in last_err:
            counts["note"] = "kernel has %s; sirqtop fails cleanly: `%s`" % (unsupported, last_err)
            return True, counts, [], details
        reasons.append("kernel has %s, yet sirqtop did not fail cleanly with an error" % unsupported)
        return False, counts, reasons, details
    # the harness: every datagram must be sent inside the capture
    took = kv(meta.get("traffic_" + backend)).get("ready_to_end_s")
    dur = re.match(r"(\d+(?:\.\d+)?)s$", kv(meta.get("cmdline")).get("sirqtop.duration", ""))
    if took and dur and float(took) >= float(dur.group(1)):
        reasons.append("harness: the traffic took %ss after ready, the capture lasts %ss "
                       "(raise SIRQTOP_QEMU_DURATION)" % (took, dur.group(1)))
    if res.get("rc") != "0":
        reasons.append("sirqtop exited with status %s (ready line: %s)%s" % (
            res.get("rc"), res.get("ready"), ": " + last_err if last_err else ""))
    raw = blocks.get(("json", backend), "").strip()
    if not raw:
        reasons.append("no JSON output")
        return False, counts, reasons, details
    try:
        doc = json.loads(raw)
    except ValueError as e:
        reasons.append("JSON does not parse: %s" % e)
        details.append("raw output:\n" + raw[:4000])
        return False, counts, reasons, details

    if doc.get("schema_version") != 1:
        reasons.append("schema_version %r != 1" % doc.get("schema_version"))
    kernel = doc.get("kernel") or {}
    if kernel.get("release") != meta.get("uname"):
        reasons.append("kernel.release %r != uname -r %r" % (kernel.get("release"), meta.get("uname")))
    backends = kernel.get("backends") or {}
    want = AUTO_EXPECTED if backend == "auto" else backend
    for hook in HOOKS:
        if backends.get(hook) != want:
            reasons.append("kernel.backends.%s = %s, expected %s" % (hook, j(backends.get(hook)), j(want)))
    counts["backends"] = backends
    counts["mechanisms"] = kernel.get("mechanisms")
    counts["fallbacks"] = kernel.get("fallbacks")
    loss = doc.get("loss") or {}
    counts["loss"] = loss

    ns1, ns2, nsr = meta.get("ns1_inode"), meta.get("ns2_inode"), meta.get("nsR_inode")
    ns1 = int(ns1) if ns1 else None
    ns2 = int(ns2) if ns2 else None
    nsr = int(nsr) if nsr else None
    # and the namespaces of the data-path scenarios that are up in this guest
    up = [s for s in dp.ORDER if dp.scenario_state(meta, s)[0] == "up"]
    dp_inodes = dp.inodes(meta, [ns for s in up for ns in dp.SCENARIOS[s]["ns"]])
    filt = (doc.get("capture") or {}).get("netns_filter")
    if sorted(filt or []) != sorted([ns1, ns2, nsr] + dp_inodes):
        reasons.append("capture.netns_filter %r != inodes of ns1, ns2, nsR and the data-path scenarios' %r"
                       % (filt, [ns1, ns2, nsr] + dp_inodes))

    ifaces = doc.get("interfaces") or []
    allowed = set([ns1, ns2, nsr] + dp_inodes)
    outside = [i for i in ifaces if i.get("netns_inode") not in allowed or i.get("name") in ("vC", "vD")]
    if outside:
        reasons.append("interfaces outside the --netns filter: %s" % ", ".join(
            "%s@%s" % (i.get("name"), i.get("netns_inode")) for i in outside))

    def find(name, ns):
        for i in ifaces:
            if i.get("name") == name and i.get("netns_inode") == ns:
                return i
        return None

    va, vb = find("vA", ns1), find("vB", ns2)
    if va is None:
        reasons.append("interface vA (ns1) missing from the output")
    if vb is None:
        reasons.append("interface vB (ns2) missing from the output")
    if va is not None:
        tx = va.get("tx_packets")
        hop = ((va.get("latency") or {}).get("veth_hop") or {}).get("count")
        counts.update(tx=tx, hop=hop)
        if not in_range(tx, n, n + SLACK):
            reasons.append("vA.tx_packets = %s, expected %d..%d" % (j(tx), n, n + SLACK))
        if not in_range(hop, n - HOP_MISS, n + SLACK):
            reasons.append("vA.latency.veth_hop.count = %s, expected %d..%d" % (j(hop), n - HOP_MISS, n + SLACK))
        peer = va.get("peer") or {}
        if peer.get("name") != "vB":
            reasons.append("vA.peer.name = %s, expected \"vB\"" % j(peer.get("name")))
        if va.get("kind") != "veth":
            reasons.append("vA.kind = %s, expected \"veth\"" % j(va.get("kind")))
        if va.get("netns_name") not in ("ns1", None):
            reasons.append("vA.netns_name = %s, expected \"ns1\"" % j(va.get("netns_name")))
    if vb is not None:
        enq, rx = vb.get("rx_enqueued"), vb.get("rx_packets")
        raises, sns = vb.get("net_rx_raises"), vb.get("softirq_ns")
        counts.update(enq=enq, rx=rx, raises=raises, softirq_ns=sns)
        if not in_range(enq, n, n + SLACK):
            reasons.append("vB.rx_enqueued = %s, expected %d..%d" % (j(enq), n, n + SLACK))
        if not in_range(rx, n, n + SLACK):
            reasons.append("vB.rx_packets = %s, expected %d..%d" % (j(rx), n, n + SLACK))
        warned = any(w.startswith("softirq_raise:") for w in kernel.get("warnings") or [])
        if backend in ("kprobe", "fentry") and raises == 0 and warned:
            # These kernels inline __raise_softirq_irqoff into the notrace
            # raise_softirq_irqoff: no kprobe/fentry can see the backlog's raise. Passing
            # requires sirqtop to have said so in kernel.warnings.
            details.append("note: raises invisible to %s on this kernel; sirqtop warned: %s"
                           % (backend, kernel.get("warnings")))
            counts["raises"] = "0 (warned)"
        elif num(raises) is None or raises < 1:
            reasons.append("vB.net_rx_raises = %s, expected >= 1" % j(raises))
        if num(sns) is None or sns <= 0:
            reasons.append("vB.softirq_ns = %s, expected > 0" % j(sns))
    # Identity: netns cookies since 5.12; before, keyed by inode and said so.
    rel = re.match(r"(\d+)\.(\d+)", kernel.get("release") or "")
    if rel and va is not None:
        has_cookie = (int(rel.group(1)), int(rel.group(2))) >= (5, 12)
        cookie = va.get("netns_cookie")
        warned_id = any(w.startswith("identity:") for w in kernel.get("warnings") or [])
        if has_cookie and not (num(cookie) and cookie > 0):
            reasons.append("vA.netns_cookie = %s, expected a cookie on %s" % (j(cookie), kernel.get("release")))
        if not has_cookie and (cookie != 0 or not warned_id):
            reasons.append("vA.netns_cookie = %s on %s: expected 0 and an identity warning" % (j(cookie), kernel.get("release")))
        counts["cookie"] = "yes" if num(cookie) and cookie > 0 else "0 (warned)" if warned_id else j(cookie)
    for hook in ("kfree_skb",):
        if hook not in (kernel.get("backends") or {}):
            reasons.append("hook %s not attached: %s" % (hook, kernel.get("fallbacks")))
    def one_path(src, ns_src, dst, ns_dst, hops, via):
        """The one path src -> dst, checked for its hop count, route and packets."""
        what = "path %s -> %s" % (src, dst)
        found = [p for p in doc.get("paths") or []
                 if end_is(p.get("from"), src, ns_src) and end_is(p.get("to"), dst, ns_dst)]
        if len(found) != 1:
            reasons.append("%s: %d entries, expected 1: %s" % (what, len(found), j(doc.get("paths"))[:800]))
            return None
        p = found[0]
        got_via = [(v.get("name"), v.get("netns_inode")) for v in p.get("via") or []]
        if p.get("hops") != hops or got_via != via:
            reasons.append("%s: hops %s via %s, expected %d via %s" % (what, j(p.get("hops")), j(got_via), hops, j(via)))
        if not in_range(p.get("packets"), n - HOP_MISS, n + SLACK):
            reasons.append("%s packets = %s, expected %d..%d" % (what, j(p.get("packets")), n - HOP_MISS, n + SLACK))
        return p

    def end_is(e, name, ns):
        return (e or {}).get("name") == name and (e or {}).get("netns_inode") == ns

    # The path vA -> vB: one hop, every datagram that was tracked (as veth_hop).
    if va is not None and vb is not None:
        p = one_path("vA", ns1, "vB", ns2, 1, [])
        counts["path"] = p and p.get("packets")
        lat = ((p or {}).get("latency") or {}).get("count")
        if p and not in_range(lat, n - HOP_MISS, n + SLACK):
            reasons.append("path vA -> vB latency.count = %s, expected %d..%d" % (j(lat), n - HOP_MISS, n + SLACK))
    # The routed path vE -> (nsR: vF, forwarded out of vG) -> vH: two hops, via vF.
    p = one_path("vE", ns1, "vH", ns2, 2, [("vF", nsr)])
    counts["routed"] = p and p.get("packets")
    enq = (p or {}).get("backlog_enqueues_per_packet")
    if p and (num(enq) is None or abs(enq - 2.0) > 0.05):
        reasons.append("path vE -> vH enqueues per packet = %s, expected 2" % j(enq))
    if vb is not None and vb.get("rx_path") != "backlog":
        reasons.append("vB.rx_path = %s, expected \"backlog\"" % j(vb.get("rx_path")))
    # ground truth from the kernel's own counters, to tell harness from tool problems
    counts["sysfs_tx"], counts["sysfs_rx"] = res.get("sysfs_vA_tx"), res.get("sysfs_vB_rx")
    if res.get("sysfs_vA_tx") not in (None, str(n)) or res.get("sysfs_vB_rx") not in (None, str(n)):
        details.append("note: sysfs counters vA tx=%s vB rx=%s (sent %d)" % (
            res.get("sysfs_vA_tx"), res.get("sysfs_vB_rx"), n))
    # the data-path scenarios, each against the guest kernel's own counters
    counts["dp"], counts["veth_reasons"], counts["dp_reasons"] = {}, list(reasons), []
    if dp_enabled & set(up):
        counts["dp_reasons"].extend(dp.check_backend(doc, backend))
    for name in dp.ORDER:
        status, cell, why = dp.check_scenario(doc, meta, backend, name, n, m, name in dp_enabled)
        counts["dp"][name] = (status, cell)
        counts["dp_reasons"].extend(why)
    reasons.extend(counts["dp_reasons"])
    if reasons:
        details.append("JSON:\n" + raw[:6000])
    return not reasons, counts, reasons, details


def check_filter(boot, backend, n):
    """--filter 'udp dst port 9' on one backend: (ok, counts, reasons). Of two flows from
    vA to vB sent at once (n datagrams to port 9, n/2 to port 10), exactly the first is
    counted on both ends, in vA's hop histogram and on the path vA -> vB."""
    meta, blocks = boot["meta"], boot["blocks"]
    name = "filter_" + backend
    res = kv(meta.get("result_" + name))
    counts, reasons = {}, []
    if "error_" + name in meta:
        reasons.append(meta["error_" + name])
    if not res:
        return False, counts, ["filtered run never ran (guest stopped before it)"]
    stderr = blocks.get(("stderr", name), "").strip()
    last_err = stderr.splitlines()[-1] if stderr else ""
    unsupported = unsupported_reason(meta, backend)
    if unsupported:
        ok = res.get("rc") not in ("0", None) and res.get("ready") == "no" and "sirqtop:" in last_err
        counts["note"] = "kernel has %s" % unsupported
        return ok, counts, [] if ok else ["kernel has %s, yet sirqtop did not fail cleanly" % unsupported]
    if res.get("rc") != "0":
        reasons.append("sirqtop exited with status %s%s" % (res.get("rc"), ": " + last_err if last_err else ""))
    sent = int(res["sysfs_vA_tx"]) if (res.get("sysfs_vA_tx") or "").isdigit() else None
    counts["sysfs_tx"] = sent
    if not in_range(sent, n + n // 2, n + n // 2 + SLACK):
        reasons.append("harness: the kernel counted %s transmits on vA, expected both flows (%d)" % (
            j(sent), n + n // 2))
    try:
        doc = json.loads(blocks.get(("json", name), "").strip() or "null") or {}
    except ValueError as e:
        return False, counts, reasons + ["JSON does not parse: %s" % e]
    if (doc.get("capture") or {}).get("filter") != "udp dst port 9":
        reasons.append("capture.filter = %s" % j((doc.get("capture") or {}).get("filter")))
    ns1, ns2 = (int(meta[k]) if meta.get(k) else None for k in ("ns1_inode", "ns2_inode"))
    ifaces = {(i.get("name"), i.get("netns_inode")): i for i in doc.get("interfaces") or []}
    va, vb = ifaces.get(("vA", ns1)) or {}, ifaces.get(("vB", ns2)) or {}
    tx, rx = va.get("tx_packets"), vb.get("rx_packets")
    hop = ((va.get("latency") or {}).get("veth_hop") or {}).get("count")
    path = sum(p.get("packets") or 0 for p in doc.get("paths") or []
               if (p.get("from") or {}).get("name") == "vA" and (p.get("to") or {}).get("name") == "vB")
    counts.update(tx=tx, rx=rx, hop=hop, path=path)
    # Only the port-9 flow: no ARP (static neighbours), no ICMP reply, no port-10 datagram.
    for what, v in (("vA.tx_packets", tx), ("vB.rx_packets", rx), ("vA veth_hop samples", hop),
                    ("path vA -> vB packets", path)):
        lo = n - HOP_MISS if what in ("vA veth_hop samples", "path vA -> vB packets") else n
        if not in_range(v, lo, n):
            reasons.append("%s = %s, expected %d..%d (the port-9 flow only)" % (what, j(v), lo, n))
    return not reasons, counts, reasons


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.1f" % v
    return str(v)


def print_table(table):
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    print()
    for r in table:
        print("  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip())


def veth_ok(ok, c):
    """The veth scenario's own verdict (the data paths have their own table)."""
    return ok if "veth_reasons" not in c else not c["veth_reasons"]


def dp_cell(c, name):
    """'pass 800/800', 'FAIL 0/800 +800 unseen', 'n/a', 'off ...' (checks not enabled)."""
    if "dp" not in c:  # the backend did not run (n/a) or gave no JSON
        return "n/a" if c.get("note") else "-"
    status, cell = c["dp"].get(name, ("-", ""))
    if status == "n/a":
        return "n/a"
    return ("FAIL" if status == "fail" else status) + (" " + cell if cell else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--markdown")
    ap.add_argument("--backends", default="kprobe,fentry,tracepoint,auto")
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--boot-status", action="append", default=[],
                    help="LOG=STATUS: exit status of QEMU for that log")
    ap.add_argument("--sirqtop-version", default="")
    ap.add_argument("-m", type=int, help="datagrams from the data-path scenarios' wire side (default 3/5 of -n)")
    ap.add_argument("--datapath-checks", default="all",
                    help="data-path scenarios whose sirqtop-side checks are on: all, none or a,b "
                         "(%s); the kernel side is always checked" % ",".join(dp.ORDER))
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()
    backends = [b for b in a.backends.split(",") if b]
    m = a.n * 3 // 5 if a.m is None else a.m
    dp_enabled = dp.parse_enabled(a.datapath_checks)
    dp_rows = []  # (label, scenario, state, note)
    boot_status = dict(s.rsplit("=", 1) for s in a.boot_status)

    rows, filter_rows, failures, all_ok = [], [], [], True
    for path in a.logs:
        boot = parse_log(path)
        meta = boot["meta"]
        kernel = meta.get("uname") or path
        deb = kv(meta.get("cmdline")).get("sirqtop.debian")
        label = "%s (%s)" % (kernel, deb) if deb else kernel
        boot_problems = []
        st = boot_status.get(path)
        if st == "124":
            boot_problems.append("QEMU hit the hard timeout (killed)")
        elif st not in (None, "0"):
            boot_problems.append("QEMU exited with status %s" % st)
        if not boot["started"]:
            boot_problems.append("guest never reached /init")
        elif not boot["done"]:
            boot_problems.append("guest did not reach the end of /init")
        if "error" in meta:
            boot_problems.append("guest: " + meta["error"])
        if re.search(r"Kernel panic|BUG: |Oops|WARNING: CPU", boot["text"]):
            boot_problems.append("kernel panic/BUG/WARNING in the console log")
        st_tx, st_rx = kv(meta.get("selftest")).get("vA_tx"), kv(meta.get("selftest")).get("vB_rx")
        if meta.get("selftest") and (st_tx != str(a.n) or st_rx != str(a.n)):
            boot_problems.append("scenario self-test without sirqtop: %s" % meta.get("selftest"))
        if meta.get("sirqtop") == "absent":
            boot_problems.append("no sirqtop binary in the initramfs (self-test only)")
        if "error_dp_selftest" in meta:
            boot_problems.append("data-path self-test: " + meta["error_dp_selftest"])
        # the data-path scenarios without sirqtop: the kernel counts what was sent
        for name in dp.ORDER:
            state, why = dp.scenario_state(meta, name)
            if state != "up":
                dp_rows.append((label, name, "n/a", why))
                continue
            probs, kernel_counts = dp.setup_problems(meta, name, a.n, m)
            if probs:
                boot_problems.append("%s self-test without sirqtop: %s" % (dp.SCENARIOS[name]["title"], "; ".join(probs)))
                dp_rows.append((label, name, "FAIL", "; ".join(probs)))
            else:
                rdev, _, rexpr = dp.SCENARIOS[name]["recv"]
                note = "%s rx %d = sent" % (rdev, dp.count(rexpr, a.n, m))
                if not kernel_counts:
                    note = ("%s: the kernel's device counter does not count these receives (0); "
                            "%d delivered to pod B's UDP" % (rdev, dp.count(rexpr, a.n, m)))
                dp_rows.append((label, name, "ok", note))
        if boot_problems:
            all_ok = False
            failures.append((kernel, "(boot)", boot_problems,
                             ["console log (%s), last 150 lines:\n" % path +
                              "\n".join(boot["text"].split("\n")[-150:])]))
        for b in backends:
            ok, counts, reasons, details = check_cell(boot, b, a.n, m, dp_enabled)
            all_ok &= ok
            counts["reasons"] = reasons
            rows.append((label, b, ok, counts))
            if not ok:
                failures.append((kernel, b, reasons, details))
        for b in backends:
            if b == "auto":
                continue
            ok, counts, reasons = check_filter(boot, b, a.n)
            all_ok &= ok
            counts["reasons"] = reasons
            filter_rows.append((label, b, ok, counts))
            if not ok:
                failures.append((kernel, b + " --filter", reasons,
                                 ["sirqtop stderr:\n" + boot["blocks"].get(("stderr", "filter_" + b), "")]))

    cols = ("kernel", "backend", "result", "tx", "enq", "rx", "hop", "path", "routed", "raises", "softirq_ns", "cookie", "attach_s")
    table = [cols] + [
        (k, b, ("n/a" if c.get("note") else "PASS") if veth_ok(ok, c) else "FAIL", fmt(c.get("tx")), fmt(c.get("enq")), fmt(c.get("rx")),
         fmt(c.get("hop")), fmt(c.get("path")), fmt(c.get("routed")), fmt(c.get("raises")), fmt(c.get("softirq_ns")), fmt(c.get("cookie")), fmt(c.get("attach_s")))
        for k, b, ok, c in rows
    ]
    print_table(table)
    # data paths: per scenario sirqtop's receives on the final device / the sent count
    print_table([("kernel", "backend") + tuple(dp.ORDER)] + [
        (k, b) + tuple(dp_cell(c, name) for name in dp.ORDER) for k, b, ok, c in rows])
    print_table([("kernel", "backend", "--filter", "tx", "rx", "hop", "path")] + [
        (k, b, ("n/a" if c.get("note") else "PASS") if ok else "FAIL", fmt(c.get("tx")), fmt(c.get("rx")),
         fmt(c.get("hop")), fmt(c.get("path"))) for k, b, ok, c in filter_rows])
    for k, name, state, note in dp_rows:
        print("data path %-9s %-40s %s%s" % (name, k, state, ": " + note if note else ""))
    print()
    for kernel, b, reasons, details in failures:
        print("=" * 78)
        print("FAIL %s %s" % (kernel, b))
        for r in reasons:
            print("  - " + r)
        for d in details:
            print("  " + d.replace("\n", "\n  "))
    for k, b, ok, c in rows:
        if c.get("note"):
            print("n/a  %s %s: %s" % (k, b, c["note"]))
    print("matrix: %s (%d cells, %d failed)" % (
        "PASS" if all_ok else "FAIL", len(rows), sum(1 for r in rows if not r[2])))

    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("<!-- generated by qemu/matrix.sh (qemu/check.py); do not edit -->\n")
            f.write("Tested %s with `%s`: Debian cloud kernels under QEMU (TCG, 2 vCPUs). "
                    "Scenario: %d UDP datagrams of 64 bytes from ns1/vA to ns2/vB; "
                    "counts are sirqtop's (vA tx, vB rx_enqueued, vB rx, vA veth_hop samples, "
                    "packets on the one-hop path vA -> vB and, for %d more datagrams from ns1/vE routed by nsR "
                    "to ns2/vH, on the two-hop path vE -> vF -> vH; vB NET_RX raises; netns cookie: the key that survives namespace churn, "
                    "0 with a warning before 5.12).\n\n" % (
                        datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                        a.sirqtop_version or "?", a.n, a.n))
            f.write("| kernel | --probe | attached (veth_xmit / netif_rx / softirq_raise) | result "
                    "| tx | enq | rx | hop | path | routed | raises | cookie | notes |\n")
            f.write("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
            for k, b, ok, c in rows:
                be = c.get("mechanisms") or c.get("backends") or {}
                hooks = " / ".join(fmt(be.get(h)) for h in HOOKS)
                notes = "; ".join(c.get("veth_reasons", c.get("reasons")) or [c.get("note") or ""]).replace("|", "\\|")
                result = ("n/a" if c.get("note") else "pass") if veth_ok(ok, c) else "**fail**"
                f.write("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" % (
                    k, b, hooks, result, fmt(c.get("tx")), fmt(c.get("enq")),
                    fmt(c.get("rx")), fmt(c.get("hop")), fmt(c.get("path")), fmt(c.get("routed")),
                    fmt(c.get("raises")),
                    fmt(c.get("cookie")), notes))
            f.write("\nData paths (`qemu/datapaths.sh`), in the same captures: %d datagrams from each "
                    "scenario's main source and %d from the wire side of macvlan's and ipvlan's parent, "
                    "each checked against the guest kernel's own `/sys/class/net/*/statistics` deltas. "
                    "A cell is sirqtop's `rx_packets` on the final device / what was sent there, "
                    "`+K unseen` its `rx_unseen` (receives the kernel counted that no attached hook "
                    "saw); pass also means: parents and senders counted as the kernel counts them, "
                    "the paths from each sender reach the device (those through a hidden receive "
                    "where `kernel.backends.rx_another` is kprobe/fentry), a `kernel.warnings` "
                    "line for unseen receives. `off`: sirqtop-side checks not enabled "
                    "(`SIRQTOP_QEMU_DATAPATH_CHECKS`).\n\n" % (a.n, m))
            f.write("| kernel | --probe | rx_another | %s | notes |\n" % " | ".join(
                dp.SCENARIOS[name]["title"] for name in dp.ORDER))
            f.write("|---|---|---|%s---|\n" % ("---|" * len(dp.ORDER)))
            for k, b, ok, c in rows:
                another = (c.get("backends") or {}).get("rx_another", "none" if c.get("backends") else None)
                f.write("| %s | %s | %s | %s | %s |\n" % (k, b, fmt(another), " | ".join(
                    dp_cell(c, name).replace("FAIL", "**fail**") for name in dp.ORDER),
                    "; ".join(c.get("dp_reasons") or []).replace("|", "\\|")))
            f.write("\n`--filter 'udp dst port 9'` (a separate capture per backend, `--timing-rate 0`): "
                    "%d datagrams to port 9 and %d to port 10 from vA to vB at once; pass = exactly "
                    "the first flow on vA's transmits, vB's receives, vA's hop samples and the path "
                    "vA -> vB, while the kernel counted both.\n\n" % (a.n, a.n // 2))
            f.write("| kernel | --probe | result | tx | rx | hop | path | notes |\n|---|---|---|---:|---:|---:|---:|---|\n")
            for k, b, ok, c in filter_rows:
                result = ("n/a" if c.get("note") else "pass") if ok else "**fail**"
                notes = "; ".join(c.get("reasons") or [c.get("note") or ""]).replace("|", "\\|")
                f.write("| %s | %s | %s | %s | %s | %s | %s | %s |\n" % (
                    k, b, result, fmt(c.get("tx")), fmt(c.get("rx")), fmt(c.get("hop")), fmt(c.get("path")), notes))
            f.write("\nScenario set-up, checked without sirqtop in every guest (the kernel counts "
                    "what was sent where it was sent):\n\n")
            for k in dict.fromkeys(r[0] for r in dp_rows):
                mine = [r for r in dp_rows if r[0] == k]
                ok = [dp.SCENARIOS[n]["title"] for _, n, st, note in mine if st == "ok" and note.endswith("= sent")]
                other = ["%s %s (%s)" % (dp.SCENARIOS[n]["title"], st, note) for _, n, st, note in mine
                         if not (st == "ok" and note.endswith("= sent"))]
                f.write("- %s: ok %s%s\n" % (k, ", ".join(ok) or "none", "; " + "; ".join(other) if other else ""))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
