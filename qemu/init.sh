#!/bin/busybox sh
# /init of the sirqtop QEMU test guests (see qemu/matrix.sh).
#
# Runs the ground-truth scenario once per backend and writes everything the
# host needs to the serial console between markers:
#   @@SIRQTOP:META key=value            facts about the guest
#   @@SIRQTOP:BEGIN <what> <backend>@@  ... @@SIRQTOP:END <what> <backend>@@
#   @@SIRQTOP:DONE@@                    the script reached its end
# Parameters come from the kernel command line (sirqtop.*=...).
# Whatever happens, the guest powers off at the end.

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /var /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
export HOME=/root LC_ALL=C
# busybox sh runs its own applets before searching PATH: the host's iproute2
# (needed for `ip netns`) must be called by path
ip() { /sbin/ip "$@"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
ln -sf /run /var/run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
dmesg -n 1 2>/dev/null
ulimit -l unlimited 2>/dev/null

param() { # param NAME DEFAULT
    v=$(tr ' ' '\n' < /proc/cmdline | sed -n "s/^sirqtop\.$1=//p" | tail -n1)
    echo "${v:-$2}"
}
BACKENDS=$(param backends kprobe,fentry,tracepoint,auto | tr ',' ' ')
N=$(param n 500)
SIZE=$(param size 64)
DURATION=$(param duration 8s)
READY_TIMEOUT=$(param ready_timeout 60)
NOISE=$(param noise 200)
# datagrams of the data-path scenarios' second source (the wire side): a count
# other than N, so that a receive counted on the wrong device shows
M=$(param m $((N * 3 / 5)))
# sirqtop.env=VAR=value,VAR2=value2: extra environment for sirqtop (debugging,
# e.g. SIRQTOP_LIBBPF_LOG=1 for the verifier logs)
GUEST_ENV=$(param env "" | tr ',' ' ')

meta() { echo "@@SIRQTOP:META $1=$2"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
begin() { echo "@@SIRQTOP:BEGIN $1 $2@@"; }
end() { echo "@@SIRQTOP:END $1 $2@@"; }
dump() { # dump WHAT BACKEND FILE
    begin "$1" "$2"
    [ -f "$3" ] && cat "$3"
    echo
    end "$1" "$2"
}
nsstat() { # nsstat NS DEV rx_packets|tx_packets
    # /proc/net/dev holds the same dev_get_stats() as /sys/class/net/DEV/statistics;
    # busybox's nsenter reads it without `ip netns exec` (a slow exec under TCG)
    nsenter --net="/run/netns/$1" cat /proc/net/dev | awk -v d="$2" -v c="$3" '
        NR > 2 { i = index($0, ":"); n = substr($0, 1, i - 1); gsub(/ /, "", n)
                 split(substr($0, i + 1), f, " ")
                 if (n == d) { print (c == "rx_packets" ? f[2] : f[10]); found = 1 } }
        END { if (!found) print -1 }'
}

setup() {
    meta uname "$(uname -r)"
    meta booted_s "$(uptime_s)"
    # dependencies first (qemu/fetch-kernel.sh wrote the order); a module that
    # does not load makes only the scenarios that need it n/a (they say why)
    for m in $(cat /lib/modules/modules.load 2>/dev/null); do
        if err=$(insmod "/lib/modules/$m.ko" 2>&1); then meta "mod_$m" ok
        else meta "mod_$m" "insmod failed: $err"; fi
    done
    if [ ! -d /sys/module/veth ]; then
        meta error "veth.ko did not load"
        return 1
    fi
    # facts for debugging attach problems
    [ -d /sys/bus/event_source/devices/kprobe ] && meta kprobe_pmu yes || meta kprobe_pmu no
    [ -e /sys/kernel/btf/vmlinux ] && meta btf_vmlinux yes || meta btf_vmlinux no
    [ -e /sys/kernel/btf/veth ] && meta btf_veth yes || meta btf_veth no
    ff=/sys/kernel/tracing/available_filter_functions
    for f in veth_xmit netif_rx __netif_rx __raise_softirq_irqoff; do
        if grep -qE "^$f( |$)" $ff 2>/dev/null; then meta "ftrace_$f" yes; else meta "ftrace_$f" no; fi
    done
    for tp in net/net_dev_start_xmit net/netif_rx net/netif_receive_skb irq/softirq_raise irq/softirq_entry napi/napi_poll; do
        [ -d "/sys/kernel/tracing/events/$tp" ] && meta "tp_${tp#*/}" yes || meta "tp_${tp#*/}" no
    done

    # IPv6 off, so that nothing but the test's packets crosses the pairs; new namespaces
    # inherit it from the root namespace (5.1+: devconf_inherit_init_net)
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    sysctl -qw net.core.devconf_inherit_init_net=1 2>/dev/null
    # Every `ip` is a dynamically linked process, slow to start under TCG: the set-up is
    # one `ip -batch` per namespace. Neighbours are static: no ARP traffic, no
    # unresolved-queue drops.
    # the scenario: ns1/vA 10.99.0.1 <-> ns2/vB 10.99.0.2
    # noise outside the --netns filter: ns3/vC 10.98.0.1 <-> root/vD 10.98.0.2
    # a routed path, two veth hops: ns1/vE 10.97.0.1 -> nsR/vF | nsR/vG -> ns2/vH 10.96.0.2
    ip -batch - <<EOF || return 1
netns add ns1
netns add ns2
netns add ns3
netns add nsR
link add vA address 02:00:0a:63:00:01 netns ns1 type veth peer name vB address 02:00:0a:63:00:02 netns ns2
link add vC address 02:00:0a:62:00:01 netns ns3 type veth peer name vD address 02:00:0a:62:00:02
link add vE address 02:00:0a:61:00:01 netns ns1 type veth peer name vF address 02:00:0a:61:00:02 netns nsR
link add vG address 02:00:0a:60:00:01 netns nsR type veth peer name vH address 02:00:0a:60:00:02 netns ns2
addr add 10.98.0.2/24 dev vD
neigh add 10.98.0.1 lladdr 02:00:0a:62:00:01 dev vD nud permanent
link set lo up
link set vD up
EOF
    for ns in ns1 ns2 ns3 nsR; do
        if [ "$(nsenter --net="/run/netns/$ns" cat /proc/sys/net/ipv6/conf/default/disable_ipv6)" = 0 ]; then
            nsenter --net="/run/netns/$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
            nsenter --net="/run/netns/$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        fi
    done
    nsenter --net=/run/netns/nsR sysctl -qw net.ipv4.ip_forward=1
    ip -n ns1 -batch - <<EOF || return 1
addr add 10.99.0.1/24 dev vA
addr add 10.97.0.1/24 dev vE
link set lo up
link set vE up
link set vA up
route add 10.96.0.0/24 via 10.97.0.2 dev vE
neigh add 10.97.0.2 lladdr 02:00:0a:61:00:02 dev vE nud permanent
neigh add 10.99.0.2 lladdr 02:00:0a:63:00:02 dev vA nud permanent
EOF
    ip -n ns2 -batch - <<EOF || return 1
addr add 10.99.0.2/24 dev vB
addr add 10.96.0.2/24 dev vH
link set lo up
link set vH up
link set vB up
route add 10.97.0.0/24 via 10.96.0.1 dev vH
neigh add 10.96.0.1 lladdr 02:00:0a:60:00:01 dev vH nud permanent
neigh add 10.99.0.1 lladdr 02:00:0a:63:00:01 dev vB nud permanent
EOF
    ip -n ns3 -batch - <<EOF || return 1
addr add 10.98.0.1/24 dev vC
link set lo up
link set vC up
neigh add 10.98.0.2 lladdr 02:00:0a:62:00:02 dev vC nud permanent
EOF
    ip -n nsR -batch - <<EOF || return 1
addr add 10.97.0.2/24 dev vF
addr add 10.96.0.1/24 dev vG
link set lo up
link set vF up
link set vG up
neigh add 10.97.0.1 lladdr 02:00:0a:61:00:01 dev vF nud permanent
neigh add 10.96.0.2 lladdr 02:00:0a:60:00:02 dev vG nud permanent
EOF
    # wait for both ends to have carrier
    i=0
    while [ $i -lt 50 ]; do
        [ "$(ip netns exec ns1 cat /sys/class/net/vA/operstate)" = up ] &&
            [ "$(ip netns exec ns2 cat /sys/class/net/vB/operstate)" = up ] &&
            [ "$(cat /sys/class/net/vD/operstate)" = up ] &&
            [ "$(ip netns exec ns2 cat /sys/class/net/vH/operstate)" = up ] && break
        sleep 0.1
        i=$((i + 1))
    done
    meta ns1_inode "$(stat -L -c %i /run/netns/ns1)"
    meta ns2_inode "$(stat -L -c %i /run/netns/ns2)"
    meta ns3_inode "$(stat -L -c %i /run/netns/ns3)"
    meta nsR_inode "$(stat -L -c %i /run/netns/nsR)"
    meta root_inode "$(stat -L -c %i /proc/self/ns/net)"
    begin links setup
    ip -n ns1 -d link show vA; ip -n ns2 -d link show vB
    end links setup

    # self-test of the scenario without sirqtop: sysfs counters are ground truth
    a0=$(nsstat ns1 vA tx_packets); b0=$(nsstat ns2 vB rx_packets)
    ip netns exec ns1 /bin/udpsend 10.99.0.2 9 "$N" "$SIZE" || meta error "udpsend failed"
    sleep 1
    a1=$(nsstat ns1 vA tx_packets); b1=$(nsstat ns2 vB rx_packets)
    meta selftest "vA_tx=$((a1 - a0)) vB_rx=$((b1 - b0)) sent=$N"
    e0=$(nsstat ns1 vE tx_packets); h0=$(nsstat ns2 vH rx_packets)
    ip netns exec ns1 /bin/udpsend 10.96.0.2 9 "$N" "$SIZE" || meta error "routed udpsend failed"
    sleep 1
    e1=$(nsstat ns1 vE tx_packets); h1=$(nsstat ns2 vH rx_packets)
    meta selftest_routed "vE_tx=$((e1 - e0)) vH_rx=$((h1 - h0)) sent=$N"
    meta setup_done_s "$(uptime_s)"
    dp_setup
    meta dp_setup_done_s "$(uptime_s)"
    dp_snap /tmp/dp0
    dp_traffic selftest
    sleep 1
    dp_snap /tmp/dp1
    meta dp_selftest "$(dp_delta /tmp/dp0 /tmp/dp1)"
    meta dp_selftest_done_s "$(uptime_s)"
    # debugging hook: an extra cpio archive may add /bin/guest-extra.sh
    if [ -x /bin/guest-extra.sh ]; then
        begin extra setup
        /bin/guest-extra.sh 2>&1
        end extra setup
    fi
}

# wait_ready PID ERRFILE: 0 once sirqtop's stderr says ready, 1 if it died or took longer
# than READY_TIMEOUT.
wait_ready() {
    i=0
    while [ $i -lt $((READY_TIMEOUT * 5)) ]; do
        if grep -q 'sirqtop: ready' "$2" 2>/dev/null; then return 0; fi
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

# wait_exit PID NAME: sirqtop must exit on its own after --duration; a generous grace, then
# killed (and said so). Returns its exit status.
wait_exit() {
    i=0
    while kill -0 "$1" 2>/dev/null; do
        if [ $i -ge $((READY_TIMEOUT * 5)) ]; then
            meta "error_$2" "sirqtop still running ${READY_TIMEOUT}s after the traffic: killed"
            kill -9 "$1" 2>/dev/null
            break
        fi
        sleep 0.2
        i=$((i + 1))
    done
    wait "$1"
}

run_backend() { # run_backend BACKEND
    b=$1
    rm -f /tmp/$b.json /tmp/$b.err /tmp/$b.out
    a0=$(nsstat ns1 vA tx_packets); b0=$(nsstat ns2 vB rx_packets)
    e0=$(nsstat ns1 vE tx_packets); h0=$(nsstat ns2 vH rx_packets)
    dp_snap /tmp/dp0
    t0=$(uptime_s)
    nsargs=
    for ns in $DP_NS; do nsargs="$nsargs --netns $ns"; done
    env $GUEST_ENV /bin/sirqtop --json --duration "$DURATION" --probe "$b" --timing-rate 0 --netns ns1 --netns ns2 --netns nsR \
        $nsargs --output /tmp/$b.json >/tmp/$b.out 2>/tmp/$b.err &
    pid=$!
    ready=no
    wait_ready $pid /tmp/$b.err && ready=yes
    t1=$(uptime_s)
    if [ $ready = yes ]; then
        # noise first (in the background), then the measured traffic
        ip netns exec ns3 /bin/udpsend 10.98.0.2 9 "$NOISE" "$SIZE" >/tmp/noise.out 2>&1 &
        npid=$!
        ip netns exec ns1 /bin/udpsend 10.99.0.2 9 "$N" "$SIZE" >/tmp/send.out 2>&1 ||
            meta "error_$b" "udpsend failed: $(cat /tmp/send.out)"
        ip netns exec ns1 /bin/udpsend 10.96.0.2 9 "$N" "$SIZE" >/tmp/send.out 2>&1 ||
            meta "error_$b" "routed udpsend failed: $(cat /tmp/send.out)"
        dp_traffic "$b"
        meta "traffic_$b" "ready_to_end_s=$(awk "BEGIN{print $(uptime_s)-$t1}")"
        wait $npid
    elif kill -0 $pid 2>/dev/null; then
        meta "error_$b" "no ready line after ${READY_TIMEOUT}s"
        kill -9 $pid 2>/dev/null
    fi
    wait_exit $pid "$b"
    rc=$?
    t2=$(uptime_s)
    a1=$(nsstat ns1 vA tx_packets); b1=$(nsstat ns2 vB rx_packets)
    e1=$(nsstat ns1 vE tx_packets); h1=$(nsstat ns2 vH rx_packets)
    dp_snap /tmp/dp1
    meta "dp_$b" "$(dp_delta /tmp/dp0 /tmp/dp1)"
    meta "result_$b" "rc=$rc ready=$ready attach_s=$(awk "BEGIN{print $t1-$t0}") total_s=$(awk "BEGIN{print $t2-$t0}") sysfs_vA_tx=$((a1 - a0)) sysfs_vB_rx=$((b1 - b0)) sysfs_vE_tx=$((e1 - e0)) sysfs_vH_rx=$((h1 - h0))"
    dump stderr "$b" /tmp/$b.err
    dump stdout "$b" /tmp/$b.out
    dump json "$b" /tmp/$b.json
    meta "done_$b" "$(uptime_s)"
}

# run_filtered BACKEND: --filter on this backend. Two flows from ns1 to ns2 at once, N to
# port 9 and N/2 to port 10; `udp dst port 9` must count exactly the first, on both ends,
# in the hop histogram and on the path (README "--filter"; issue 18's QEMU part).
run_filtered() {
    b=$1
    f=filter_$b
    rm -f /tmp/$f.json /tmp/$f.err /tmp/$f.out
    a0=$(nsstat ns1 vA tx_packets)
    env $GUEST_ENV /bin/sirqtop --json --duration "$DURATION" --probe "$b" --netns ns1 --netns ns2 \
        --timing-rate 0 --filter 'udp dst port 9' --output /tmp/$f.json >/tmp/$f.out 2>/tmp/$f.err &
    pid=$!
    ready=no
    wait_ready $pid /tmp/$f.err && ready=yes
    if [ $ready = yes ]; then
        ip netns exec ns1 /bin/udpsend 10.99.0.2 10 $((N / 2)) "$SIZE" >/tmp/other.out 2>&1 &
        opid=$!
        ip netns exec ns1 /bin/udpsend 10.99.0.2 9 "$N" "$SIZE" >/tmp/send.out 2>&1 ||
            meta "error_$f" "udpsend failed: $(cat /tmp/send.out)"
        wait $opid || meta "error_$f" "udpsend (port 10) failed: $(cat /tmp/other.out)"
    elif kill -0 $pid 2>/dev/null; then
        meta "error_$f" "no ready line after ${READY_TIMEOUT}s"
        kill -9 $pid 2>/dev/null
    fi
    wait_exit $pid "$f"
    rc=$?
    a1=$(nsstat ns1 vA tx_packets)
    meta "result_$f" "rc=$rc ready=$ready sysfs_vA_tx=$((a1 - a0))"
    dump stderr "$f" /tmp/$f.err
    dump json "$f" /tmp/$f.json
}

. /bin/datapaths.sh

main() {
    echo "@@SIRQTOP:START@@"
    meta cmdline "$(cat /proc/cmdline)"
    setup || { meta error "setup failed"; return 1; }
    if [ ! -x /bin/sirqtop ]; then
        meta sirqtop absent
        return 0
    fi
    meta sirqtop_version "$(/bin/sirqtop --version 2>&1 | head -n1)"
    for b in $BACKENDS; do
        run_backend "$b"
    done
    for b in $BACKENDS; do
        [ "$b" = auto ] || run_filtered "$b"
    done
}

main 2>&1
begin dmesg all
dmesg | tail -n 200
end dmesg all
echo "@@SIRQTOP:DONE@@"
sync
poweroff -f
# poweroff -f should not return; if it does, make QEMU exit (-no-reboot)
echo o > /proc/sysrq-trigger 2>/dev/null
sleep 5
reboot -f
