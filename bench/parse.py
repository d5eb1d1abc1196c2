"""Parsing helpers of bench/report.py: iperf3, bench/udpflood.c and sirqtop output, the
raw files of a run, and number formatting. Only the standard library."""
import csv
import json
import math
import statistics

NAN = float("nan")



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
