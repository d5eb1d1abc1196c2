#!/usr/bin/env bash
# sirqtop overhead benchmark: sirqtop side by side with the floor (empty programs on the
# same hooks), bpftrace and bcc, over one veth pair between two network namespaces; and a
# real service (nginx behind two veth hops, loaded by wrk: bench/service.sh).
# Method and results: BENCHMARKS.md.
#
# usage: sudo bench/run.sh
#
# env (all optional):
#   REPS=5             interleaved rounds; the condition order is rotated every round
#   SECS=5             seconds per measurement (iperf3 -t)
#   CONDITIONS="untraced floor least sirqtop lite filtered bpfstats bpftrace bcc"
#                      filtered = sirqtop --json --filter udp: the filter's evaluation once
#                      per packet, against `sirqtop` in the same run
#   WORKLOADS="udp tcp http"   http = the real service, with its own conditions
#                      (SERVICE_CONDITIONS, SERVICE_CONNS, SERVE_PORT: see bench/service.sh)
#   SENDER_CPU=0 RECEIVER_CPU=1   CPU pinning of both ends (BENCHMARKS.md says why)
#   UDP_TOOL=udpflood  bench/udpflood.c (send() per datagram, recvmmsg sink); or iperf3
#                      (-u -b 0 -l 64), whose receiver drops 15-20 % here (BENCHMARKS.md)
#   PROFILE=1          per-hook BPF run time (separate runs with BPF stats on)
#   PROFILE_TOOLS="floor bpfstats lite bpftrace bcc"   what the profile runs cover
#   PERF=1             perf cpu-clock profile of the sender's CPU per condition (if perf exists)
#   READY_RUNS=7       extra sirqtop start-ups timed to "sirqtop: ready" (and BASE_SIRQTOP's)
#   USERSPACE=1        examples/bench_userspace (snapshot path, RSS at 10k interfaces)
#   SKIP_BUILD=0       1 = use the binaries already in target/release
#   OUT=bench/results/<date>.md   the report; raw data goes to the same name without .md
#   BCC_KERNEL_SOURCE  kernel headers for bcc (see "bcc" in BENCHMARKS.md)
#   MAX_LOAD=          wait (up to 10 min) until the 1-min load average is below this
#   BASE_SIRQTOP=      another sirqtop binary (an earlier build) for the `base` condition:
#                      the same `--json` capture, interleaved with the others, so a change's
#                      cost is measured against the code before it in the same run
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

REPS=${REPS:-5}
SECS=${SECS:-5}
CONDITIONS=${CONDITIONS:-untraced floor least sirqtop lite filtered bpfstats bpftrace bcc}
WORKLOADS=${WORKLOADS:-udp tcp http}
SENDER_CPU=${SENDER_CPU:-0}
RECEIVER_CPU=${RECEIVER_CPU:-1}
UDP_TOOL=${UDP_TOOL:-udpflood}
PROFILE=${PROFILE:-1}
PERF=${PERF:-1}
PROFILE_TOOLS=${PROFILE_TOOLS:-floor bpfstats lite bpftrace bcc}
READY_RUNS=${READY_RUNS:-7}
USERSPACE=${USERSPACE:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
MAX_LOAD=${MAX_LOAD:-}
BASE_SIRQTOP=${BASE_SIRQTOP:-}
stamp_name=$(date +%Y-%m-%d-%H%M%S)
OUT=${OUT:-$here/results/$stamp_name.md}
raw=${OUT%.md}

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (BPF, network namespaces): sudo bench/run.sh"
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash >= 5 (EPOCHREALTIME)"
[[ $REPS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ ]] || die "REPS and SECS must be positive integers"
case $UDP_TOOL in udpflood | iperf3) ;; *) die "UDP_TOOL must be udpflood or iperf3" ;; esac
for c in $CONDITIONS; do
    case $c in untraced | floor | least | sirqtop | lite | filtered | bpfstats | bpftrace | bcc) ;;
    base) [ -x "$BASE_SIRQTOP" ] || die "condition 'base' needs BASE_SIRQTOP=<an executable sirqtop>" ;;
    *) die "unknown condition '$c' (untraced floor least sirqtop lite filtered bpfstats bpftrace bcc base)" ;;
    esac
done
for w in $WORKLOADS; do
    case $w in udp | tcp | http) ;; *) die "unknown workload '$w' (udp tcp http)" ;; esac
done
# shellcheck source=bench/service.sh
. "$here/service.sh"
HTTP=0
[[ " $WORKLOADS " == *" http "* ]] && HTTP=1 && service_check
ncpu=$(nproc)
[ "$SENDER_CPU" -lt "$ncpu" ] && [ "$RECEIVER_CPU" -lt "$ncpu" ] || die "SENDER_CPU/RECEIVER_CPU must be < $ncpu"

# ---- cleanup: whatever this run started or changed is undone on any exit --------------
NSA=sqbench-$$-tx
NSB=sqbench-$$-rx
TPID=            # the running tracer
SPID=            # the running iperf3 server
STATS_OLD=       # kernel.bpf_stats_enabled before we changed it
MOUNTED=()       # file systems this run mounted
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in $TPID $SPID; do
        kill -INT "$p" 2>/dev/null && sleep 0.5
        kill -KILL "$p" 2>/dev/null || true
    done
    # Watchers and profilers this script started, then whatever still runs in our namespaces.
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    for ns in "$NSA" "$NSB"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    done
    ip netns del "$NSA" 2>/dev/null || true
    ip netns del "$NSB" 2>/dev/null || true
    service_cleanup
    [ -n "$STATS_OLD" ] && sysctl -q -w kernel.bpf_stats_enabled="$STATS_OLD" >/dev/null 2>&1
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount "${MOUNTED[i]}" 2>/dev/null || true; done
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && [ -e "$raw" ]; then
        chown -R "$SUDO_USER:" "$raw" "$OUT" "$target/bench" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build and tools ---------------------------------------------------------------------
target=${CARGO_TARGET_DIR:-$repo/target}
SIRQTOP=$target/release/sirqtop
FLOOR=$target/release/examples/bench_floor
USERBENCH=$target/release/examples/bench_userspace
if [ "$SKIP_BUILD" != 1 ]; then
    log "building: cargo build --release --bin sirqtop --examples"
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && ! command -v cargo >/dev/null; then
        # Build as the invoking user, with their toolchain, so target/ stays theirs.
        sudo -u "$SUDO_USER" -H bash -lc "cd '$repo' && cargo build --release --bin sirqtop --examples" >&2
    else
        (cd "$repo" && cargo build --release --bin sirqtop --examples) >&2
    fi
fi
for b in "$SIRQTOP" "$FLOOR"; do [ -x "$b" ] || die "$b is missing (build failed?)"; done

apt_updated=0
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2 (apt-get)"
    [ $apt_updated = 1 ] || { apt-get update -qq >&2 && apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2
}
need iperf3 iperf3
need python3 python3
need ss iproute2
[[ " $CONDITIONS " == *" bpftrace "* || ($HTTP = 1 && " $SERVICE_CONDITIONS " == *" bpftrace "*) ]] && need bpftrace bpftrace
[ "$PROFILE" = 1 ] && { need bpftool bpftool || true; }
FLOOD=$target/bench/udpflood
if [ "$UDP_TOOL" = udpflood ]; then
    need cc gcc
    mkdir -p "$target/bench"
    cc -O2 -Wall -o "$FLOOD" "$here/udpflood.c" || die "building bench/udpflood.c failed"
fi

# Classic tracepoints (bpftrace, bcc) need tracefs; bcc 0.26 looks under debugfs.
mount_if_missing() { # mount_if_missing TYPE DIR
    if ! mountpoint -q "$2" && [ -d "$2" ]; then
        mount -t "$1" "$1" "$2" && MOUNTED+=("$2")
    fi
}
if [[ " $CONDITIONS $SERVICE_CONDITIONS " == *" bpftrace "* || " $CONDITIONS " == *" bcc "* ]]; then
    mount_if_missing debugfs /sys/kernel/debug
    mount_if_missing tracefs /sys/kernel/tracing
fi

mkdir -p "$raw"
PY="python3 $here/report.py"

# bcc: softirqs -d compiles C against kernel headers at start-up. This kernel may have
# none (no package, no CONFIG_IKHEADERS): fall back to Debian's newest packaged headers
# (the program uses only tracepoint fields, whose layout bcc reads from tracefs), and say
# so; if bcc still cannot run, the condition is n/a with the reason.
BCC_TOOL=
BCC_NOTE=
bcc_setup() {
    local tool
    need softirqs-bpfcc bpfcc-tools || { BCC_NOTE="bpfcc-tools could not be installed"; return 1; }
    tool=$(command -v softirqs-bpfcc)
    local rel; rel=$(uname -r)
    if [ -z "${BCC_KERNEL_SOURCE:-}" ] && [ ! -e "/lib/modules/$rel/build" ] && [ ! -e /sys/kernel/kheaders.tar.xz ]; then
        local cache=/var/cache/sirqtop-bench hdr common arch
        hdr=$(ls -d "$cache"/headers-* 2>/dev/null | sort -V | tail -1 || true)
        if [ -z "$hdr" ]; then
            local pkg
            [ $apt_updated = 1 ] || { apt-get update -qq >&2 && apt_updated=1; }
            pkg=$(apt-cache search --names-only '^linux-headers-[0-9.]+-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
            [ -n "$pkg" ] || { BCC_NOTE="no kernel headers for $rel and no linux-headers package to fall back to"; return 1; }
            log "bcc: no headers for $rel; installing $pkg as a stand-in"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >&2 ||
                { BCC_NOTE="installing $pkg failed"; return 1; }
            arch=/usr/src/$pkg
            common=${arch%-amd64}-common
            # bcc's BCC_KERNEL_SOURCE wants one tree; Debian splits it into -common + -amd64.
            hdr=$cache/headers-${pkg#linux-headers-}
            mkdir -p "$hdr" && cp -a "$common/." "$hdr/" && cp -a "$arch/." "$hdr/"
        fi
        export BCC_KERNEL_SOURCE=$hdr
        BCC_NOTE="headers: $(basename "$hdr") (Debian package) standing in for $rel, which has none"
    fi
    local err
    if ! err=$(timeout 120 env PYTHONUNBUFFERED=1 "$tool" -d 1 1 2>&1 >/dev/null); then
        BCC_NOTE="softirqs-bpfcc does not run here: $(printf '%s\n' "$err" | grep -vE '^\s*(File|\^|b = )' | tail -3 | tr '\n' ' ')"
        return 1
    fi
    BCC_TOOL=$tool
}
if [[ " $CONDITIONS " == *" bcc "* && " $WORKLOADS " == *" "[ut][dc]p" "* ]]; then
    if ! bcc_setup; then
        log "bcc: n/a: $BCC_NOTE"
        printf '%s\n' "$BCC_NOTE" >"$raw/bcc-na.txt"
    fi
    [ -n "$BCC_NOTE" ] && printf '%s\n' "$BCC_NOTE" >"$raw/bcc-note.txt"
fi

# ---- the workload: two namespaces, one veth pair -------------------------------------------
X=$(($$ % 250 + 1))
IPA=10.230.$X.1
IPB=10.230.$X.2
VA=sqb$$t
VB=sqb$$r
ip netns add "$NSA"
ip netns add "$NSB"
ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB"
ip -n "$NSA" addr add "$IPA/24" dev "$VA"
ip -n "$NSB" addr add "$IPB/24" dev "$VB"
for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
ip -n "$NSA" link set "$VA" up
ip -n "$NSB" link set "$VB" up
log "namespaces $NSA ($IPA, cpu $SENDER_CPU) -> $NSB ($IPB, cpu $RECEIVER_CPU)"

# One measurement; prints what report.py makes of it: "rx_kpps sent_kpps loss%" for UDP,
# "gbit_s retransmits -" for TCP.
PORT=5201
measure() { # measure udp|tcp|http SECS OUTFILE
    local w=$1 secs=$2 out=$3 i args=()
    [ "$w" = http ] && { service_measure "$secs" "$out"; return; }
    if [ "$w" = udp ] && [ "$UDP_TOOL" = udpflood ]; then
        ip netns exec "$NSB" taskset -c "$RECEIVER_CPU" "$FLOOD" sink "$PORT" "$secs" >"$out.sink" 2>&1 &
        SPID=$!
        for i in $(seq 100); do grep -q listening "$out.sink" 2>/dev/null && break; sleep 0.02; done
        timeout $((secs + 30)) ip netns exec "$NSA" taskset -c "$SENDER_CPU" "$FLOOD" send "$IPB" "$PORT" \
            "$secs" 64 >"$out" 2>&1 || true
        for i in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
        SPID=
        cat "$out.sink" >>"$out" && rm -f "$out.sink"
        $PY result udp "$out"
        return
    fi
    [ "$w" = udp ] && args=(-u -b 0 -l 64)
    ip netns exec "$NSB" iperf3 -s -1 -A "$RECEIVER_CPU" -p "$PORT" >/dev/null 2>&1 &
    SPID=$!
    for i in $(seq 100); do
        [ -n "$(ip netns exec "$NSB" ss -Hltn "sport = :$PORT" 2>/dev/null)" ] && break
        sleep 0.02
    done
    timeout $((secs + 30)) ip netns exec "$NSA" iperf3 -c "$IPB" -p "$PORT" -A "$SENDER_CPU" \
        "${args[@]}" -t "$secs" -J >"$out" 2>&1 || true
    for i in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=
    $PY result "$w" "$out"
}

# ---- tracers --------------------------------------------------------------------------------
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
READY_MS=
# start_tracer COND BASE [extra args]: starts it, waits for its ready line. BASE.out/.err
# hold its stdout/stderr, each line prefixed with the time it was read.
start_tracer() {
    local cond=$1 base=$2 pat cmd t0 line i limit=30
    shift 2
    case $cond in
    floor) cmd=("$FLOOR" "$@") pat='bench_floor: ready' ;;
    least) cmd=("$FLOOR" --least "$@") pat='bench_floor: ready' ;;
    sirqtop) cmd=("$SIRQTOP" --json --duration 1h -o "$base.json" "$@") pat='sirqtop: ready' ;;
    lite) cmd=("$SIRQTOP" --json --duration 1h --lite -o "$base.json" "$@") pat='sirqtop: ready' ;;
    filtered) cmd=("$SIRQTOP" --json --duration 1h --filter udp -o "$base.json" "$@") pat='sirqtop: ready' ;;
    bpfstats) cmd=("$SIRQTOP" --json --duration 1h --bpf-stats -o "$base.json" "$@") pat='sirqtop: ready' ;;
    base) cmd=("$BASE_SIRQTOP" --json --duration 1h -o "$base.json" "$@") pat='sirqtop: ready' ;;
    serve) cmd=("$SIRQTOP" serve --listen "127.0.0.1:$SERVE_PORT" "$@") pat='sirqtop: ready' ;;
    bpftrace) cmd=(bpftrace -B line "$here/subset.bt") pat='bpftrace: ready' ;;
    bcc) cmd=(env PYTHONUNBUFFERED=1 "$BCC_TOOL" -d 3600 1) pat='Tracing soft irq' limit=180 ;;
    *) die "start_tracer $cond" ;;
    esac
    t0=$EPOCHREALTIME
    "${cmd[@]}" > >(stamp >"$base.out") 2> >(stamp >"$base.err") &
    TPID=$!
    for ((i = 0; i < limit * 50; i++)); do
        line=$(grep -h -m1 -F "$pat" "$base.err" "$base.out" 2>/dev/null | head -1 || true)
        [ -n "$line" ] && break
        kill -0 "$TPID" 2>/dev/null || break
        sleep 0.02
    done
    if [ -z "$line" ]; then
        log "$cond did not get ready: $(tail -c 300 "$base.err" 2>/dev/null | tr '\n' ' ')"
        stop_tracer
        return 1
    fi
    READY_MS=$(awk -v a="$t0" -v b="${line%% *}" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
}
HWM_KIB=
stop_tracer() {
    local i
    [ -n "$TPID" ] || return 0
    HWM_KIB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$TPID/status" 2>/dev/null || true)
    kill -INT "$TPID" 2>/dev/null || true
    for i in $(seq 300); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$TPID" 2>/dev/null || true
    wait "$TPID" 2>/dev/null || true
    TPID=
    sleep 0.2 # let the stamp readers drain
}

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# Other people's BPF tracing programs (a test suite attaching sirqtop for a few seconds, say)
# fire on this workload's packets too and would tax whatever condition is being measured.
# Every sample waits until none is loaded, a watcher polls bpftool (~1 ms) every 0.2 s while
# it runs, and a sample that had company is measured again.
ours_ids() { # prog ids behind the fds the running tracer holds
    [ -n "$TPID" ] && grep -h '^prog_id:' /proc/"$TPID"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | tr '\n' ' '
    return 0
}
foreign() { # prints "ID TYPE NAME" per foreign tracing program; exit 2 without bpftool
    command -v bpftool >/dev/null || return 2
    bpftool prog show 2>/dev/null | awk -v ours=" $1 " '$1 ~ /^[0-9]+:$/ {
        id = substr($1, 1, length($1) - 1)
        if ($2 ~ /^(tracing|raw_tracepoint|tracepoint|kprobe|perf_event|ext)$/ && index(ours, " " id " ") == 0)
            print id, $2, $4
    }'
}
watch_foreign() { # watch_foreign OURS FILE: appends foreign programs seen, until killed
    while :; do
        foreign "$1"
        sleep 0.2
    done >>"$2"
}
FOREIGN_WAIT=${FOREIGN_WAIT:-180}
wait_alone() {
    local i n ours
    ours=$(ours_ids)
    for ((i = 0; i < FOREIGN_WAIT * 5; i++)); do
        n=$(foreign "$ours" | awk '{ print $3 }' | sort -u | tr '\n' ' ')
        # Another bench/run.sh at the same time would load the same CPUs.
        n+=$(ip netns list 2>/dev/null | awk -v me="-$$-" '$1 ~ /^sq(bench|svc)-/ && index($1, me) == 0 { printf "%s ", $1 }')
        [ -z "$n" ] && return 0
        ((i == 0)) && log "waiting for other BPF tracing programs / benchmark runs to go: $n"
        sleep 0.2
    done
    log "still not alone after ${FOREIGN_WAIT}s: measuring anyway ($n)"
}
# measure_alone W SECS OUT: measure, again (up to 3 times) if other tracing programs showed up.
COMPANY=0
measure_alone() {
    local try res wpid ours
    ours=$(ours_ids)
    for try in 1 2 3; do
        wait_alone
        : >"$3.foreign"
        watch_foreign "$ours" "$3.foreign" &
        wpid=$!
        res=$(measure "$@")
        kill "$wpid" 2>/dev/null
        wait "$wpid" 2>/dev/null || true
        COMPANY=$(awk '{ print $3 }' "$3.foreign" | sort -u | wc -l)
        ((COMPANY == 0)) && break
        log "other BPF tracing programs appeared during the sample ($(awk '{ print $3 }' "$3.foreign" | sort -u | tr '\n' ' ')): measuring again"
    done
    echo "$res"
}

# ---- wait for a quiet machine -----------------------------------------------------------
if [ -n "$MAX_LOAD" ]; then
    for i in $(seq 60); do
        awk -v l="$(loadavg)" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && break
        [ "$i" = 1 ] && log "waiting for load average < $MAX_LOAD (now $(loadavg))"
        sleep 10
    done
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -r)"
    echo "cpus: $ncpu ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
    echo "sirqtop: $("$SIRQTOP" --version 2>/dev/null) ($(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?'))"
    [ -n "$BASE_SIRQTOP" ] && echo "base: $BASE_SIRQTOP ($("$BASE_SIRQTOP" --version 2>/dev/null))"
    echo "iperf3: $(iperf3 --version 2>/dev/null | head -1)"
    if [ $HTTP = 1 ]; then
        echo "service: nginx $(dpkg-query -W -f '${Version}' nginx-light 2>/dev/null), wrk $(dpkg-query -W -f '${Version}' wrk 2>/dev/null), $SERVICE_CONNS keep-alive connections; conditions: $SERVICE_CONDITIONS"
    fi
    command -v bpftrace >/dev/null && echo "bpftrace: $(bpftrace --version 2>/dev/null)"
    [ -n "$BCC_TOOL" ] && echo "bcc: $(dpkg-query -W -f '${Version}' bpfcc-tools 2>/dev/null) (softirqs -d)"
    echo "reps: $REPS x ${SECS}s; conditions: $CONDITIONS; workloads: $WORKLOADS"
    echo "pinning: sender cpu $SENDER_CPU, receiver cpu $RECEIVER_CPU; UDP flood: $UDP_TOOL, 64-byte payload"
    echo "load_start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$raw/env.txt"

# ---- the matrix -------------------------------------------------------------------------------
read -r -a conds <<<"$CONDITIONS"
works=()
for w in $WORKLOADS; do [ "$w" = http ] || works+=("$w"); done
if [ -e "$raw/bcc-na.txt" ]; then
    keep=()
    for c in "${conds[@]}"; do [ "$c" = bcc ] || keep+=("$c"); done
    conds=("${keep[@]}")
fi
n=${#conds[@]}
est=$((REPS * n * ${#works[@]} * (SECS + 2) + 60))
log "matrix: $REPS rounds x ${#conds[@]} conditions x ${#works[@]} workloads x ${SECS}s (~$((est / 60)) min)"

((${#works[@]} == 0)) && n=0 # the service alone
log "warm-up (untraced, not recorded)"
for w in "${works[@]}"; do measure "$w" 2 "$raw/warmup-$w.txt" >/dev/null; done

printf 'round\tpos\tcondition\tworkload\tvalue\tsent\tloss_pct\tload1\tforeign_progs\n' >"$raw/samples.tsv"
printf 'round\tcondition\tready_ms\thwm_kib\ttraced_tx\n' >"$raw/tracers.tsv"
failed=" "
for ((r = 1; r <= REPS; r++)); do
    for ((p = 0; p < n; p++)); do
        c=${conds[$(((p + r - 1) % n))]}
        [[ $failed == *" $c "* ]] && continue
        base=$raw/r$r-$c
        if [ "$c" != untraced ]; then
            if ! start_tracer "$c" "$base"; then
                failed+="$c "
                printf '%s\n' "$c did not start: $(tail -c 300 "$base.err" | tr '\n' ' ')" >"$raw/$c-failed.txt"
                continue
            fi
        else
            READY_MS=
        fi
        # Alternate the workload order too.
        ws=("${works[@]}")
        ((r % 2 == 0)) && ws=($(printf '%s\n' "${works[@]}" | tac))
        for w in "${ws[@]}"; do
            measure_alone "$w" "$SECS" "$base-$w.result.txt" >"$base-$w.res"
            read -r v sent loss <"$base-$w.res"
            COMPANY=$(awk '{ print $3 }' "$base-$w.result.txt.foreign" | sort -u | wc -l)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$p" "$c" "$w" "$v" "$sent" "$loss" "$(loadavg)" \
                "$COMPANY" >>"$raw/samples.tsv"
            log "round $r/$REPS $c $w: $v $([ "$w" = udp ] && echo kpps || echo Gbit/s) (load $(loadavg))"
        done
        if [ "$c" != untraced ]; then
            stop_tracer
            tx=
            [ -e "$base.json" ] && tx=$($PY captured "$base.json" "$NSA" "$VA" || true)
            printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$READY_MS" "$HWM_KIB" "$tx" >>"$raw/tracers.tsv"
        fi
    done
done

[ $HTTP = 1 ] && service_matrix

# ---- per-hook cost: separate runs with BPF run-time statistics on ------------------------------
if [ "$PROFILE" = 1 ]; then
    log "profile: per-hook BPF run time (separate runs, stats on)"
    mkdir -p "$raw/profile"
    for c in $PROFILE_TOOLS; do
        [ "$c" = bcc ] && [ -z "$BCC_TOOL" ] && continue
        [ "$c" = bpftrace ] && ! command -v bpftrace >/dev/null && continue
        for w in "${works[@]}"; do
            base=$raw/profile/$c-$w
            extra=()
            case $c in
            floor) extra=(--bpf-stats) ;;
            lite) extra=(--bpf-stats) ;;
            bpftrace | bcc)
                command -v bpftool >/dev/null || continue
                STATS_OLD=${STATS_OLD:-$(sysctl -n kernel.bpf_stats_enabled)}
                sysctl -q -w kernel.bpf_stats_enabled=1
                ;;
            esac
            wait_alone
            start_tracer "$c" "$base" "${extra[@]}" || continue
            ts=$EPOCHREALTIME
            measure_alone "$w" "$SECS" "$base.workload.txt" >"$base.result"
            if [[ $c == bpftrace || $c == bcc ]]; then
                # Its programs: the prog ids behind the fds it holds (bpftool here shows no pids).
                for id in $(grep -h '^prog_id:' /proc/"$TPID"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -un); do
                    bpftool prog show id "$id" -j 2>/dev/null && echo
                done >"$base.bpftool.json"
            fi
            te=$EPOCHREALTIME
            stop_tracer
            awk -v a="$ts" -v b="$te" 'BEGIN { printf "%.0f\n", (b - a) * 1e9 }' >"$base.window_ns"
            if [ -n "$STATS_OLD" ]; then
                sysctl -q -w kernel.bpf_stats_enabled="$STATS_OLD"
                STATS_OLD=
            fi
        done
    done
fi

# ---- where the sender's CPU goes: perf cpu-clock samples during the UDP flood ----------------
if [ "$PERF" = 1 ] && command -v perf >/dev/null && [[ " $WORKLOADS " == *" udp "* ]] && ((SECS >= 3)); then
    log "perf: cpu-clock profile of cpu $SENDER_CPU during the UDP flood"
    mkdir -p "$raw/perf"
    for c in untraced floor lite sirqtop; do
        base=$raw/perf/$c
        wait_alone
        if [ "$c" != untraced ]; then start_tracer "$c" "$base" || continue; fi
        for try in 1 2 3; do
            wait_alone
            : >"$base.foreign"
            watch_foreign "$(ours_ids)" "$base.foreign" &
            wpid=$!
            measure udp "$SECS" "$base.workload.txt" >"$base.result" &
            mpid=$!
            sleep 1
            perf record -q -e cpu-clock -F 2999 -C "$SENDER_CPU" -g -o "$base.data" -- sleep $((SECS - 2)) >/dev/null 2>&1 || true
            wait "$mpid" || true
            kill "$wpid" 2>/dev/null
            wait "$wpid" 2>/dev/null || true
            [ -s "$base.foreign" ] || break
            log "perf $c: other BPF tracing programs appeared: profiling again"
        done
        # Symbolize while the tracer's programs are still loaded (their JIT symbols go with them).
        perf report -i "$base.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -80 >"$base.self.txt" || true
        perf script -i "$base.data" -F ip,sym 2>/dev/null >"$base.script.txt" || true
        [ "$c" != untraced ] && stop_tracer
        $PY perfcat "$base.script.txt" >"$base.perf.json"
        rm -f "$base.data" "$base.data.old" "$base.script.txt"
    done
fi

# ---- attach-to-ready time -------------------------------------------------------------------------
if ((READY_RUNS > 0)); then
    # With BASE_SIRQTOP, its start-ups interleaved with these: a ratio from the same run.
    modes=(sirqtop lite)
    [ -n "$BASE_SIRQTOP" ] && modes+=(base)
    log "ready time: $READY_RUNS start-ups each of ${modes[*]}"
    printf 'mode\tready_ms\n' >"$raw/ready.tsv"
    for ((i = 1; i <= READY_RUNS; i++)); do
        for c in "${modes[@]}"; do
            start_tracer "$c" "$raw/ready-$c-$i" || continue
            stop_tracer
            printf '%s\t%s\n' "$c" "$READY_MS" >>"$raw/ready.tsv"
        done
    done
fi

# ---- user space ----------------------------------------------------------------------------------
if [ "$USERSPACE" = 1 ] && [ -x "$USERBENCH" ]; then
    log "user space: bench_userspace (10k synthetic interfaces)"
    "$USERBENCH" --ifaces 10000 --cpus "$ncpu" --json >"$raw/userspace.json"
    "$USERBENCH" --ifaces 10000 --cpus 64 --json >"$raw/userspace-64cpu.json"
fi

echo "load_end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/env.txt"
$PY report "$raw" >"$OUT"
cat "$OUT"
log "report: $OUT (raw data: $raw/)"
