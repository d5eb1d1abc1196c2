#!/usr/bin/env bash
# A bounded soak of `sirqtop serve` (not in CI): serve under a rate-limited UDP flood over
# one veth pair, with network namespaces (each a veth pair that sends a few packets)
# created and deleted all along, and a scrape every second. Samples RSS, threads, open
# file descriptors and the exposition's series count each SAMPLE seconds into a CSV, and
# prints it as it goes. Results: BENCHMARKS.md ("serve soak").
#
# usage: sudo bench/soak_serve.sh [MINUTES]      (default 60)
#
# env (all optional):
#   PPS=5000           flood rate, datagrams per second (iperf3 -u -l 64): keep the machine's
#                      other users in mind
#   CHURN_EVERY=0.4    seconds between namespace creations (each lives ~2 s)
#   FORGET_AFTER=1m    serve --forget-after
#   SAMPLE=60          seconds between samples
#   SIRQTOP=target/release/sirqtop
#   OUT=bench/results/<date>-soak-serve.csv
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
MINUTES=${1:-60}
PPS=${PPS:-5000}
CHURN_EVERY=${CHURN_EVERY:-0.4}
FORGET_AFTER=${FORGET_AFTER:-1m}
SAMPLE=${SAMPLE:-60}
SIRQTOP=${SIRQTOP:-$repo/target/release/sirqtop}
OUT=${OUT:-$repo/bench/results/$(date -u +%F)-soak-serve.csv}

die() { echo "soak_serve: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$SIRQTOP" ] || die "no $SIRQTOP (cargo build --release)"
command -v iperf3 >/dev/null || die "needs iperf3"
case $MINUTES in '' | *[!0-9]*) die "MINUTES must be a whole number" ;; esac

# Unique names: several soaks (or tests) may share the kernel.
tag=sk$$
nsa=${tag}a nsb=${tag}b
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in $(ip netns list | awk '{print $1}' | grep "^${tag}"); do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

ip netns add "$nsa"
ip netns add "$nsb"
ip link add "${tag}va" netns "$nsa" type veth peer name "${tag}vb" netns "$nsb"
ip -n "$nsa" addr add 10.231.0.1/24 dev "${tag}va"
ip -n "$nsb" addr add 10.231.0.2/24 dev "${tag}vb"
ip -n "$nsa" link set "${tag}va" up
ip -n "$nsb" link set "${tag}vb" up

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$SIRQTOP" serve --listen "127.0.0.1:$port" --forget-after "$FORGET_AFTER" \
	>/dev/null 2>"$OUT.serve.log" &
serve=$!
pids+=("$serve")
for _ in $(seq 100); do
	grep -q "serving" "$OUT.serve.log" 2>/dev/null && break
	kill -0 "$serve" 2>/dev/null || die "serve exited: $(cat "$OUT.serve.log")"
	sleep 0.2
done

# The flood: 64-byte datagrams at PPS (iperf3 paces them), for the whole run.
ip netns exec "$nsb" iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
ip netns exec "$nsa" iperf3 -c 10.231.0.2 -p 5299 -u -l 64 -b $((PPS * 64 * 8)) \
	-t $((MINUTES * 60 + 30)) >/dev/null 2>&1 &
pids+=($!)

# Churn: a namespace pair with a veth between them, a few packets, gone ~2 s later.
(
	i=0
	while :; do
		i=$((i + 1))
		a=${tag}c${i}x b=${tag}c${i}y
		ip netns add "$a" && ip netns add "$b" &&
			ip link add "${tag}x$i" netns "$a" type veth peer name "${tag}y$i" netns "$b" &&
			ip -n "$a" addr add 10.232.0.1/30 dev "${tag}x$i" &&
			ip -n "$b" addr add 10.232.0.2/30 dev "${tag}y$i" &&
			ip -n "$a" link set "${tag}x$i" up && ip -n "$b" link set "${tag}y$i" up &&
			ip netns exec "$a" ping -c 3 -i 0.2 -W 1 10.232.0.2 >/dev/null 2>&1 || true
		(sleep 2; ip netns del "$a" 2>/dev/null; ip netns del "$b" 2>/dev/null) &
		sleep "$CHURN_EVERY"
	done
) &
pids+=($!)

# A scrape every second, like a Prometheus with a 1 s interval; the series count of the
# last one is kept for the sampler.
(
	while :; do
		curl -s --max-time 5 "http://127.0.0.1:$port/metrics" | grep -vc '^#' >"$OUT.series.tmp" || true
		mv -f "$OUT.series.tmp" "$OUT.series" 2>/dev/null || true
		sleep 1
	done
) &
pids+=($!)

echo "minute,rss_kib,threads,fds,series,cpu_s" | tee "$OUT"
start=$(date +%s)
clk=$(getconf CLK_TCK)
for m in $(seq 0 $((MINUTES * 60 / SAMPLE))); do
	kill -0 "$serve" 2>/dev/null || die "serve died: $(tail -3 "$OUT.serve.log")"
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$serve/status")
	threads=$(awk '/^Threads/ {print $2}' "/proc/$serve/status")
	fds=$(ls "/proc/$serve/fd" | wc -l)
	series=$(cat "$OUT.series" 2>/dev/null || echo 0)
	cpu=$(awk -v t="$clk" '{printf "%.1f", ($14 + $15) / t}' "/proc/$serve/stat")
	echo "$(awk -v s=$((m * SAMPLE)) 'BEGIN {printf "%.1f", s / 60}'),$rss,$threads,$fds,$series,$cpu" | tee -a "$OUT"
	next=$((start + (m + 1) * SAMPLE))
	now=$(date +%s)
	[ "$next" -gt "$now" ] && sleep $((next - now))
done
kill -TERM "$serve"
wait "$serve" && echo "serve: SIGTERM -> exit 0" || echo "serve: exit $?"
rm -f "$OUT.series"
