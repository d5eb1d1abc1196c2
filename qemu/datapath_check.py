"""Checks of the QEMU guests' data-path scenarios (qemu/datapaths.sh), used by check.py.

Every scenario sends a known number of datagrams through one data path. Ground truth is
the guest kernel's own /sys/class/net/*/statistics delta over each sirqtop run (init.sh:
META dp_<backend>) and over a run without sirqtop (META dp_selftest), which must show the
scenario itself works: the kernel counted what was sent where it was sent.

sirqtop's side, per scenario and backend (only for the scenarios whose checks are on):
- the receiving device: with a backend that sees receives after a peer redirect or an
  rx_handler (kernel.backends.rx_another = kprobe/fentry), rx_packets equals the kernel's
  count and rx_unseen is 0; without (rx_another = none: tracepoint), rx_unseen is exactly
  the receives on the hidden path (rx_packets the rest) and kernel.warnings names it;
- on every backend rx_unseen = kernel_rx_packets - rx_packets (when positive), and
  kernel_rx_packets is the kernel's own delta;
- parents (the lower device, the host-side veth): rx_packets is what the kernel counted
  there, never the upper's receives;
- senders: tx_packets is the kernel's count, also for macvlan/ipvlan/ipip/netkit/vlan;
- paths: from the first transmitter to the final receiver, every packet (a hidden receive
  only when rx_another is not none).
"""
import json

SLACK = 30
HOP_MISS = 5

# name -> description. Counts: "N" (main source) or "M" (wire side), see datapaths.sh.
#  recv:     (dev, ns, sent): the device the datagrams end on
#  hidden:   count reaching recv through a receive net:netif_receive_skb does not see
#  parents:  [(dev, ns, count)] what the kernel counts on the devices below/before recv
#  senders:  [(dev, ns, count)]
#  paths:    [(from, from_ns, count, hidden)]: paths ending on recv
#  truth:    alternative ground truth for recv when a kernel's device counter does not
#            count the receive (bpf_redirect_peer before 6.x): a pseudo device of dp_delta
SCENARIOS = {
    "ipvl2": dict(
        title="ipvlan L2", ns=["q2w", "q2h", "q2a", "q2b"],
        recv=("s2a", "q2a", "N+M"), hidden="M", parents=[("p2", "q2h", "M")],
        senders=[("s2b", "q2b", "N"), ("w2", "q2w", "M")],
        paths=[("s2b", "q2b", "N", False), ("w2", "q2w", "M", True)]),
    "ipvl3": dict(
        title="ipvlan L3", ns=["q3w", "q3h", "q3a", "q3b"],
        recv=("s3a", "q3a", "N+M"), hidden="M", parents=[("p3", "q3h", "M")],
        senders=[("s3b", "q3b", "N"), ("w3", "q3w", "M")],
        paths=[("s3b", "q3b", "N", False), ("w3", "q3w", "M", True)]),
    "macvlan": dict(
        title="macvlan bridge", ns=["qmw", "qmh", "qma", "qmb"],
        recv=("m2", "qmb", "N+M"), hidden="N+M", parents=[("pm", "qmh", "M")],
        senders=[("m1", "qma", "N"), ("wm", "qmw", "M")],
        paths=[("m1", "qma", "N", True), ("wm", "qmw", "M", True)]),
    "ipip": dict(
        title="IPIP", ns=["qia", "qib"],
        recv=("tb", "qib", "N"), hidden="0", parents=[("ub", "qib", "N")],
        senders=[("ta", "qia", "N"), ("ua", "qia", "N")],
        paths=[("ta", "qia", "N", False)]),
    "redirpeer": dict(
        title="tc redirect_peer", ns=["qra", "qrb", "qrh"],
        recv=("rb", "qrb", "N"), hidden="N", parents=[("rah", "qrh", "N")],
        senders=[("ra", "qra", "N")],
        paths=[("ra", "qra", "N", True)], truth="qrb_udp"),
    "netkit": dict(
        title="netkit", ns=["qnh", "qnp"],
        recv=("nkh", "qnh", "N"), hidden="0", parents=[],
        senders=[("nkp", "qnp", "N")],
        paths=[("nkp", "qnp", "N", False)]),
    "vlan": dict(
        title="VLAN", ns=["qva", "qvb"],
        recv=("vf.10", "qvb", "N"), hidden="N", parents=[("vf", "qvb", "N")],
        senders=[("ve.10", "qva", "N"), ("ve", "qva", "N")],
        paths=[("ve.10", "qva", "N", True)]),
    "vxlan": dict(
        title="VXLAN", ns=["qxa", "qxb"],
        recv=("vxb", "qxb", "N"), hidden="0", parents=[("xb", "qxb", "N")],
        senders=[("vxa", "qxa", "N"), ("xa", "qxa", "N")],
        paths=[("vxa", "qxa", "N", False)]),
}
ORDER = ["ipvl2", "ipvl3", "macvlan", "ipip", "redirpeer", "netkit", "vlan", "vxlan"]


# small helpers, shared with check.py
def j(v):
    return json.dumps(v)


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def kv(s):
    return dict(p.split("=", 1) for p in (s or "").split() if "=" in p)


def count(expr, n, m):
    return sum({"N": n, "M": m, "0": 0}[t] for t in expr.split("+"))


def counters(meta, key):
    """{dev: {"rx": int, "tx": int}} from a dp_delta line."""
    out = {}
    for k, v in kv(meta.get(key)).items():
        dev, _, what = k.rpartition(".")
        try:
            out.setdefault(dev, {})[what] = int(v)
        except ValueError:
            pass
    return out


def scenario_state(meta, name):
    """("up", None) or ("n/a", reason)."""
    st = meta.get("dp_scen_" + name)
    if st is None:
        return "n/a", "the guest did not try it (an older init.sh?)"
    if st.startswith("up"):
        return "up", None
    return "n/a", st[len("n/a "):] if st.startswith("n/a ") else st


def inodes(meta, names):
    out = []
    for ns in names:
        v = meta.get("nsinode_" + ns)
        if v:
            out.append(int(v))
    return out


def setup_problems(meta, name, n, m, key="dp_selftest"):
    """The kernel's own counters over a run (self-test or a backend's) against what was
    sent: returns (problems, kernel_counts_recv). kernel_counts_recv is False when the
    receiving device's counter does not count this path but the alternative truth does."""
    sc = SCENARIOS[name]
    c = counters(meta, key)
    probs = []
    rdev, _, rexpr = sc["recv"]
    want = count(rexpr, n, m)
    got = (c.get(rdev) or {}).get("rx")
    kernel_counts = True
    if got != want:
        alt = (c.get(sc.get("truth") or "") or {}).get("rx")
        if sc.get("truth") and got == 0 and alt == want:
            kernel_counts = False
        else:
            probs.append("%s rx %s, sent %d" % (rdev, j(got), want))
    for field, devs in (("rx", sc["parents"]), ("tx", sc["senders"])):
        for dev, _, expr in devs:
            if (c.get(dev) or {}).get(field) != count(expr, n, m):
                probs.append("%s %s %s, expected %d" % (dev, field, j((c.get(dev) or {}).get(field)), count(expr, n, m)))
    return probs, kernel_counts


def check_scenario(doc, meta, backend, name, n, m, enabled):
    """One scenario in one backend's JSON. Returns (status, cell, reasons):
    status "pass" | "fail" | "n/a" | "off" (sirqtop-side checks not enabled)."""
    sc = SCENARIOS[name]
    state, why = scenario_state(meta, name)
    if state != "up":
        return "n/a", "n/a", []
    reasons = []
    probs, kernel_counts = setup_problems(meta, name, n, m, "dp_" + backend)
    if probs:
        # the kernel itself did not deliver: nothing to hold sirqtop to
        return "fail", "kernel?", ["%s: the kernel's counters during the run: %s" % (sc["title"], "; ".join(probs))]
    kc = counters(meta, "dp_" + backend)
    ns_inode = {ns: int(meta["nsinode_" + ns]) for ns in sc["ns"] if meta.get("nsinode_" + ns)}
    ifaces = doc.get("interfaces") or []

    def find(dev, ns):
        for i in ifaces:
            if i.get("name") == dev and i.get("netns_inode") == ns_inode.get(ns):
                return i
        return None

    rdev, rns, rexpr = sc["recv"]
    want = count(rexpr, n, m)
    hidden = count(sc["hidden"], n, m)
    krx = kc[rdev]["rx"]
    rec = find(rdev, rns)
    another = rx_another(doc)
    sees = another in ("kprobe", "fentry")
    rx = (rec or {}).get("rx_packets")
    unseen = (rec or {}).get("rx_unseen")
    cell = "%s/%s" % (rx if rx is not None else "-", want)
    if unseen:
        cell += " +%s unseen" % unseen
    if not enabled:
        return "off", cell, []
    what = "%s: %s@%s" % (sc["title"], rdev, rns)
    if rec is None:
        reasons.append("%s missing from the output" % what)
        return "fail", cell, reasons
    kfield = rec.get("kernel_rx_packets")
    # the kernel's own delta, as sirqtop read it: the guest read the same counter over a
    # slightly longer window
    if kernel_counts and not (num(kfield) is not None and krx - SLACK <= kfield <= krx):
        reasons.append("%s kernel_rx_packets = %s, the guest kernel counted %d" % (what, j(kfield), krx))
    if num(rx) is not None and num(kfield) is not None and unseen != max(0, kfield - rx):
        reasons.append("%s rx_unseen = %s, expected kernel_rx_packets - rx_packets = %d"
                       % (what, j(unseen), max(0, kfield - rx)))
    if sees or hidden == 0:
        if not (num(rx) is not None and want <= rx <= want + SLACK):
            reasons.append("%s rx_packets = %s, expected %d..%d (%s sees every receive)"
                           % (what, j(rx), want, want + SLACK, another))
        if unseen not in (0, None) and kernel_counts:
            reasons.append("%s rx_unseen = %s, expected 0" % (what, j(unseen)))
    elif kernel_counts:
        # nothing sees the hidden receives: exactly those are unseen, the rest counted
        if not (num(rx) is not None and want - hidden <= rx <= want - hidden + SLACK):
            reasons.append("%s rx_packets = %s, expected %d (the receives net:netif_receive_skb sees)"
                           % (what, j(rx), want - hidden))
        if not (num(unseen) is not None and hidden - SLACK <= unseen <= hidden):
            reasons.append("%s rx_unseen = %s, expected %d (the receives no hook sees)" % (what, j(unseen), hidden))
        warnings = (doc.get("kernel") or {}).get("warnings") or []
        if not any(rdev in w for w in warnings):
            reasons.append("%s: no kernel.warnings line names it: %s" % (what, j(warnings)[:400]))
    else:
        # this kernel's device counter does not count the path (redirect_peer before 6.x)
        # and no hook sees it: nothing to report, but nothing invented either
        if rx not in (0, None) or unseen not in (0, None):
            reasons.append("%s rx_packets %s / rx_unseen %s: the kernel counted none and no hook sees them"
                           % (what, j(rx), j(unseen)))
    # parents: what the kernel counted there, never the upper's receives; senders: every
    # transmit, whatever the kind
    for role, field, devs in (("parent", "rx", sc["parents"]), ("sender", "tx", sc["senders"])):
        for dev, ns, expr in devs:
            got = (find(dev, ns) or {}).get(field + "_packets")
            if not (num(got) is not None and count(expr, n, m) <= got <= kc[dev][field] + SLACK):
                reasons.append("%s: %s %s@%s %s_packets = %s, the kernel counted %d there"
                               % (sc["title"], role, dev, ns, field, j(got), kc[dev][field]))
    for src, sns, expr, hid in sc["paths"]:
        if hid and not sees:
            continue
        pw = count(expr, n, m)
        found = [p for p in doc.get("paths") or []
                 if (p.get("from") or {}).get("name") == src
                 and (p.get("from") or {}).get("netns_inode") == ns_inode.get(sns)
                 and (p.get("to") or {}).get("name") == rdev
                 and (p.get("to") or {}).get("netns_inode") == ns_inode.get(rns)]
        got = sum(p.get("packets") or 0 for p in found)
        if not (pw - HOP_MISS <= got <= pw + SLACK):
            reasons.append("%s: path %s -> %s packets %d, expected %d..%d; paths from %s: %s" % (
                sc["title"], src, rdev, got, pw - HOP_MISS, pw + SLACK, src,
                j([(p["to"].get("name"), p.get("hops"), p.get("packets")) for p in doc.get("paths") or []
                   if (p.get("from") or {}).get("name") == src])))
    return ("fail" if reasons else "pass"), cell, reasons


def rx_another(doc):
    """kernel.backends.rx_another; README's schema: absent means none."""
    return ((doc.get("kernel") or {}).get("backends") or {}).get("rx_another", "none")


def check_backend(doc, backend):
    """kernel.backends.rx_another: the forced backend (none for tracepoint); auto's is
    checked by what it reports. Returns the reasons."""
    another = rx_another(doc)
    forced = {"kprobe": "kprobe", "fentry": "fentry", "tracepoint": "none"}.get(backend)
    if forced and another != forced:
        return ["data paths: kernel.backends.rx_another = %s, expected %s (fallbacks: %s)"
                % (j(another), j(forced), j((doc.get("kernel") or {}).get("fallbacks")))]
    if another not in ("kprobe", "fentry", "none"):
        return ["data paths: kernel.backends.rx_another = %s, expected kprobe, fentry or none" % j(another)]
    return []


def parse_enabled(spec):
    """'all' | 'none' | 'a,b' -> set of scenario names."""
    spec = (spec or "all").strip()
    if spec == "all":
        return set(ORDER)
    if spec == "none":
        return set()
    names = {s for s in spec.split(",") if s}
    unknown = names - set(ORDER)
    if unknown:
        raise SystemExit("check.py: unknown data-path scenario(s) %s (known: %s)"
                         % (", ".join(sorted(unknown)), ", ".join(ORDER)))
    return names
