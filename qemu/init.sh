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
DURATION=$(param duration 6s)
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
nsstat() { # nsstat NS DEV COUNTER
    ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3" 2>/dev/null || echo -1
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

    # the scenario: ns1/vA 10.99.0.1 <-> ns2/vB 10.99.0.2
    ip netns add ns1 && ip netns add ns2 || return 1
    # noise outside the --netns filter: ns3/vC 10.98.0.1 <-> root/vD 10.98.0.2
    ip netns add ns3 || return 1
    # a routed path, two veth hops: ns1/vE 10.97.0.1 -> nsR/vF | nsR/vG -> ns2/vH 10.96.0.2
    ip netns add nsR || return 1
    for ns in ns1 ns2 ns3 nsR; do
        ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec $ns sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    done
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip link add vA address 02:00:0a:63:00:01 netns ns1 type veth \
        peer name vB address 02:00:0a:63:00:02 netns ns2 || return 1
    ip link add vC address 02:00:0a:62:00:01 netns ns3 type veth \
        peer name vD address 02:00:0a:62:00:02 || return 1
    ip -n ns1 addr add 10.99.0.1/24 dev vA
    ip -n ns2 addr add 10.99.0.2/24 dev vB
    ip -n ns3 addr add 10.98.0.1/24 dev vC
    ip addr add 10.98.0.2/24 dev vD
    ip link add vE address 02:00:0a:61:00:01 netns ns1 type veth \
        peer name vF address 02:00:0a:61:00:02 netns nsR || return 1
    ip link add vG address 02:00:0a:60:00:01 netns nsR type veth \
        peer name vH address 02:00:0a:60:00:02 netns ns2 || return 1
    ip -n ns1 addr add 10.97.0.1/24 dev vE
    ip -n nsR addr add 10.97.0.2/24 dev vF
    ip -n nsR addr add 10.96.0.1/24 dev vG
    ip -n ns2 addr add 10.96.0.2/24 dev vH
    ip netns exec nsR sysctl -qw net.ipv4.ip_forward=1
    for l in "ns1 vE" "nsR vF" "nsR vG" "ns2 vH"; do
        set -- $l
        ip -n $1 link set $2 up
    done
    ip -n ns1 route add 10.96.0.0/24 via 10.97.0.2 dev vE
    ip -n ns2 route add 10.97.0.0/24 via 10.96.0.1 dev vH
    ip -n ns1 neigh add 10.97.0.2 lladdr 02:00:0a:61:00:02 dev vE nud permanent
    ip -n nsR neigh add 10.97.0.1 lladdr 02:00:0a:61:00:01 dev vF nud permanent
    ip -n nsR neigh add 10.96.0.2 lladdr 02:00:0a:60:00:02 dev vG nud permanent
    ip -n ns2 neigh add 10.96.0.1 lladdr 02:00:0a:60:00:01 dev vH nud permanent
    # static neighbours: no ARP traffic, no unresolved-queue drops
    ip -n ns1 neigh add 10.99.0.2 lladdr 02:00:0a:63:00:02 dev vA nud permanent
    ip -n ns2 neigh add 10.99.0.1 lladdr 02:00:0a:63:00:01 dev vB nud permanent
    ip -n ns3 neigh add 10.98.0.2 lladdr 02:00:0a:62:00:02 dev vC nud permanent
    ip neigh add 10.98.0.1 lladdr 02:00:0a:62:00:01 dev vD nud permanent
    for ns in ns1 ns2 ns3 nsR; do ip -n $ns link set lo up; done
    ip link set lo up
    ip -n ns1 link set vA up
    ip -n ns2 link set vB up
    ip -n ns3 link set vC up
    ip link set vD up
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

run_backend() { # run_backend BACKEND
    b=$1
    rm -f /tmp/$b.json /tmp/$b.err /tmp/$b.out
    a0=$(nsstat ns1 vA tx_packets); b0=$(nsstat ns2 vB rx_packets)
    e0=$(nsstat ns1 vE tx_packets); h0=$(nsstat ns2 vH rx_packets)
    dp_snap /tmp/dp0
    t0=$(uptime_s)
    nsargs=
    for ns in $DP_NS; do nsargs="$nsargs --netns $ns"; done
    env $GUEST_ENV /bin/sirqtop --json --duration "$DURATION" --probe "$b" --netns ns1 --netns ns2 --netns nsR \
        $nsargs --output /tmp/$b.json >/tmp/$b.out 2>/tmp/$b.err &
    pid=$!
    ready=no
    i=0
    while [ $i -lt $((READY_TIMEOUT * 5)) ]; do
        if grep -q 'sirqtop: ready' /tmp/$b.err 2>/dev/null; then ready=yes; break; fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.2
        i=$((i + 1))
    done
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
    # sirqtop must exit on its own after --duration; give it a generous grace
    rc=
    i=0
    while kill -0 $pid 2>/dev/null; do
        if [ $i -ge $((READY_TIMEOUT * 5)) ]; then
            meta "error_$b" "sirqtop still running ${READY_TIMEOUT}s after the traffic: killed"
            kill -9 $pid 2>/dev/null
            break
        fi
        sleep 0.2
        i=$((i + 1))
    done
    wait $pid
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
