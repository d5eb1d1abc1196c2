# Data-path scenarios of the QEMU guests, sourced by qemu/init.sh (busybox sh).
#
# Each scenario builds its own namespaces, sends a known number of datagrams
# through one data path whose receive the kernel hands to another device
# without a second netif_receive_skb (rx_handler RX_HANDLER_ANOTHER, tc peer
# redirect), or through a device that is not a veth, and names the devices whose
# /sys/class/net/*/statistics are the ground truth. qemu/check.py holds what is
# expected of each (SCENARIOS there; keep the names in step).
#
#   dp_setup               build every scenario the kernel allows; per scenario
#                          @@SIRQTOP:META dp_scen_NAME=up | n/a <reason>
#   dp_traffic LABEL       send every up scenario's datagrams
#   dp_snap FILE           rx/tx packet counters of every scenario device
#   dp_delta FILE0 FILE1   "dev.rx=D dev.tx=D ..." (plus udp deliveries in pod B
#                          of redirpeer: qrb_udp.rx)
#
# N datagrams from the scenario's main source, M from its second source (the
# wire side of macvlan/ipvlan's parent), both to port 9 (nothing listens: each
# one is counted by the receiving namespace's UDP as NoPorts; ICMP errors back
# are rate limited and land on no checked receiver).

DP_NS=""    # namespaces of the up scenarios (sirqtop --netns)
DP_DEVS=""  # "ns:dev" of the up scenarios
DP_UP=""    # scenario names that are up
DP_ERR=""   # why the last dp_try failed

dp_try() { # dp_try CMD...: run, remember stderr on failure
    if ! "$@" >/tmp/dp.err 2>&1; then
        DP_ERR="\`$*\`: $(head -c 300 /tmp/dp.err | tr '\n' ' ')"
        return 1
    fi
}

# Every `ip` is a dynamically linked process, slow to start under TCG: each scenario
# runs its commands as a few batches (one process per namespace).
dp_ip() { # dp_ip NS|root <<commands: one `ip -batch` in that namespace
    cat > /tmp/dp.batch
    if [ "$1" = root ]; then dp_try ip -batch /tmp/dp.batch
    else dp_try ip -n "$1" -batch /tmp/dp.batch; fi || {
        DP_ERR="$DP_ERR [batch: $(tr '\n' ';' < /tmp/dp.batch | head -c 400)]"
        return 1
    }
}

dp_ns() { # dp_ns NAME...: namespaces without IPv6 (nothing but the test's packets)
    for ns in "$@"; do echo "netns add $ns"; done > /tmp/dp.ns
    dp_ip root < /tmp/dp.ns || return 1
    for ns in "$@"; do
        # inherited from the root namespace (init.sh: devconf_inherit_init_net)
        if [ "$(nsenter --net="/run/netns/$ns" cat /proc/sys/net/ipv6/conf/default/disable_ipv6)" = 0 ]; then
            ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
            ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        fi
        meta "nsinode_$ns" "$(stat -L -c %i "/run/netns/$ns")"
    done
}

dp_cmds() { # dp_cmds NS CMD...: the commands as one batch (a pipe into dp_ip would
    # run it in a subshell, losing DP_ERR)
    local where=$1
    shift
    for c in "$@"; do echo "$c"; done > /tmp/dp.cmds
    dp_ip "$where" < /tmp/dp.cmds
}

dp_end() { # dp_end NS DEV ADDR/LEN [IP=MAC...]: an address, up, static neighbours
    local where=$1 d=$2 nb
    echo "addr add $3 dev $d" > /tmp/dp.end
    echo "link set dev $d up" >> /tmp/dp.end
    shift 3
    for nb in "$@"; do echo "neigh replace ${nb%%=*} lladdr ${nb#*=} dev $d nud permanent"; done >> /tmp/dp.end
    dp_ip "$where" < /tmp/dp.end
}

dp_wait_up() { # dp_wait_up NS DEV: carrier, at most 5 s
    i=0
    while [ $i -lt 50 ]; do
        [ "$(ip netns exec "$1" cat "/sys/class/net/$2/operstate" 2>/dev/null)" != down ] && break
        sleep 0.1
        i=$((i + 1))
    done
}

# Neighbours are static (`nud permanent`: no ARP). `link set dev D up` says `dev`
# because a device may be named like a keyword of `ip link set` (vf).

# --- ipvlan L2 / L3 ---------------------------------------------------------
# wire qXw/wX 10.O.0.1 <-veth-> qXh/pX (parent, MAC ..:02) with ipvlan slaves
# qXa/sXa 10.O.0.2 (receiver) and qXb/sXb 10.O.0.3. N from sibling sXb (a local
# xmit: dev_forward_skb, seen by net:netif_receive_skb), M from the wire (the
# parent's rx_handler hands the skb to sXa: RX_HANDLER_ANOTHER).
dp_ipvlan() { # dp_ipvlan 2|3 SUBNET_OCTET
    x=$1; o=$2
    pmac=02:00:0a:$o:00:02
    dp_ns q${x}w q${x}h q${x}a q${x}b || return 1
    dp_ip root <<EOF || return 1
link add w$x address 02:00:0a:$o:00:01 netns q${x}w type veth peer name p$x address $pmac netns q${x}h
EOF
    dp_ip q${x}h <<EOF || return 1
link add s${x}a link p$x type ipvlan mode l$x
link add s${x}b link p$x type ipvlan mode l$x
link set dev s${x}a netns q${x}a
link set dev s${x}b netns q${x}b
link set dev p$x up
EOF
    # every address behind the parent has the parent's MAC
    dp_end q${x}w w$x 10.$o.0.1/24 10.$o.0.2=$pmac || return 1
    if [ $x = 2 ]; then # L3 mode slaves are NOARP
        dp_end q${x}a s${x}a 10.$o.0.2/24 10.$o.0.1=$pmac 10.$o.0.3=$pmac || return 1
        dp_end q${x}b s${x}b 10.$o.0.3/24 10.$o.0.2=$pmac || return 1
    else
        dp_end q${x}a s${x}a 10.$o.0.2/24 || return 1
        dp_end q${x}b s${x}b 10.$o.0.3/24 || return 1
    fi
    dp_wait_up q${x}w w$x
    DP_NS="$DP_NS q${x}w q${x}h q${x}a q${x}b"
    DP_DEVS="$DP_DEVS q${x}w:w$x q${x}h:p$x q${x}a:s${x}a q${x}b:s${x}b"
}
dp_setup_ipvl2() { dp_ipvlan 2 90; }
dp_setup_ipvl3() { dp_ipvlan 3 89; }
dp_send_ipvl2() { dp_send q2b 10.90.0.2 "$N" && dp_send q2w 10.90.0.2 "$M"; }
dp_send_ipvl3() { dp_send q3b 10.89.0.2 "$N" && dp_send q3w 10.89.0.2 "$M"; }

# --- macvlan, bridge mode ---------------------------------------------------
# wire qmw/wm 10.88.0.1 <-veth-> qmh/pm (parent) with macvlans qma/m1 10.88.0.11
# and qmb/m2 10.88.0.12 (receiver). N from sibling m1 (handed to the parent with
# dev_forward_skb, then macvlan_handle_frame: the kernel counts it on m2 only),
# M from the wire (counted on pm, as a veth receive, and on m2).
dp_setup_macvlan() {
    dp_ns qmw qmh qma qmb || return 1
    dp_ip root <<EOF || return 1
link add wm address 02:00:0a:58:00:01 netns qmw type veth peer name pm address 02:00:0a:58:00:02 netns qmh
EOF
    dp_ip qmh <<EOF || return 1
link add m1 link pm address 02:00:0a:58:00:11 type macvlan mode bridge
link add m2 link pm address 02:00:0a:58:00:12 type macvlan mode bridge
link set dev m1 netns qma
link set dev m2 netns qmb
link set dev pm up
EOF
    dp_end qmw wm 10.88.0.1/24 10.88.0.12=02:00:0a:58:00:12 || return 1
    dp_end qma m1 10.88.0.11/24 10.88.0.12=02:00:0a:58:00:12 || return 1
    dp_end qmb m2 10.88.0.12/24 10.88.0.1=02:00:0a:58:00:01 10.88.0.11=02:00:0a:58:00:11 || return 1
    dp_wait_up qmw wm
    DP_NS="$DP_NS qmw qmh qma qmb"
    DP_DEVS="$DP_DEVS qmw:wm qmh:pm qma:m1 qmb:m2"
}
dp_send_macvlan() { dp_send qma 10.88.0.12 "$N" && dp_send qmw 10.88.0.12 "$M"; }

# --- IPIP overlay (Calico's mode) ------------------------------------------
# node qia: underlay ua 10.80.0.1, tunnel ta 10.81.0.1 <-> node qib: ub 10.80.0.2,
# tb 10.81.0.2. N from qia to tb's address: ta's transmit encapsulates, the
# same skb crosses ua -> ub and is received again on tb (gro_cells).
dp_setup_ipip() {
    dp_ns qia qib || return 1
    dp_ip root <<EOF || return 1
link add ua address 02:00:0a:50:00:01 netns qia type veth peer name ub address 02:00:0a:50:00:02 netns qib
EOF
    # the underlay first: the tunnels' local addresses
    dp_end qia ua 10.80.0.1/24 10.80.0.2=02:00:0a:50:00:02 || return 1
    dp_end qib ub 10.80.0.2/24 10.80.0.1=02:00:0a:50:00:01 || return 1
    dp_cmds qia "link add ta type ipip local 10.80.0.1 remote 10.80.0.2" || return 1
    dp_cmds qib "link add tb type ipip local 10.80.0.2 remote 10.80.0.1" || return 1
    dp_end qia ta 10.81.0.1/24 || return 1
    dp_end qib tb 10.81.0.2/24 || return 1
    dp_wait_up qia ua
    DP_NS="$DP_NS qia qib"
    DP_DEVS="$DP_DEVS qia:ua qia:ta qib:ub qib:tb"
}
dp_send_ipip() { dp_send qia 10.81.0.2 "$N"; }

# --- Cilium-style eBPF host routing: tc bpf_redirect_peer --------------------
# pod qra/ra 10.70.0.1 <-veth-> host qrh/rah; pod qrb/rb 10.70.0.2 <-veth-> host
# qrh/rbh (ifindex 4242, redirect_peer.bpf.c's target). A tc ingress program on
# rah sends every packet into rb with bpf_redirect_peer: rb receives in the same
# __netif_receive_skb_core call that received it on rah. Pod A's gateway MAC is
# rah's (as with Cilium), so the skb is PACKET_HOST when it reaches pod B.
dp_setup_redirpeer() {
    [ -x /sbin/tc ] && [ -s /lib/redirect_peer.o ] || { DP_ERR="no tc or BPF object in the initramfs"; return 1; }
    dp_ns qra qrb qrh || return 1
    dp_ip root <<EOF || return 1
link add ra address 02:00:0a:46:00:01 netns qra type veth peer name rah address 02:00:0a:46:00:02 netns qrh
EOF
    dp_ip qrh <<EOF || return 1
link add rbh index 4242 address 02:00:0a:46:00:04 type veth peer name rb address 02:00:0a:46:00:03 netns qrb
link set dev rah up
link set dev rbh up
EOF
    dp_end qra ra 10.70.0.1/24 10.70.0.2=02:00:0a:46:00:02 || return 1
    dp_end qrb rb 10.70.0.2/24 10.70.0.1=02:00:0a:46:00:04 || return 1
    dp_try ip netns exec qrh /sbin/tc qdisc add dev rah clsact || return 1
    dp_try ip netns exec qrh /sbin/tc filter add dev rah ingress bpf direct-action \
        obj /lib/redirect_peer.o sec tc || return 1
    dp_wait_up qra ra
    dp_wait_up qrb rb
    DP_NS="$DP_NS qra qrb qrh"
    DP_DEVS="$DP_DEVS qra:ra qrh:rah qrh:rbh qrb:rb"
}
dp_send_redirpeer() { dp_send qra 10.70.0.2 "$N"; }

# --- netkit (Cilium's veth replacement, 6.7+), L3 mode ------------------------
# host qnh/nkh 10.60.0.1 <-netkit-> pod qnp/nkp 10.60.0.2; N from the pod.
dp_setup_netkit() {
    # a bool (no module): the kernel's config (qemu/build-initramfs.sh copies it) says
    if ! grep -qx 'CONFIG_NETKIT=y' /lib/modules/config 2>/dev/null; then
        DP_ERR="kernel without netkit (no CONFIG_NETKIT=y; netkit is 6.7+)"
        return 1
    fi
    dp_ns qnh qnp || return 1
    dp_try ip netns exec qnh /bin/nkadd nkh nkp /run/netns/qnp || return 1
    dp_end qnh nkh 10.60.0.1/24 || return 1
    dp_end qnp nkp 10.60.0.2/24 || return 1
    dp_wait_up qnp nkp
    DP_NS="$DP_NS qnh qnp"
    DP_DEVS="$DP_DEVS qnh:nkh qnp:nkp"
}
dp_send_netkit() { dp_send qnp 10.60.0.1 "$N"; }

# --- VLAN sub-interfaces -------------------------------------------------------
# qva/ve <-veth-> qvb/vf; VLAN 10 on both ends: qva/ve.10 10.51.0.1 -> qvb/vf.10
# 10.51.0.2. veth offloads the tag, so the receive on vf goes round again as vf.10
# (vlan_do_receive).
dp_setup_vlan() {
    dp_ns qva qvb || return 1
    dp_ip root <<EOF || return 1
link add ve address 02:00:0a:32:00:01 netns qva type veth peer name vf address 02:00:0a:32:00:02 netns qvb
EOF
    dp_cmds qva "link add link ve name ve.10 type vlan id 10" "link set dev ve up" || return 1
    dp_cmds qvb "link add link vf name vf.10 type vlan id 10" "link set dev vf up" || return 1
    dp_end qva ve.10 10.51.0.1/24 10.51.0.2=02:00:0a:32:00:02 || return 1
    dp_end qvb vf.10 10.51.0.2/24 10.51.0.1=02:00:0a:32:00:01 || return 1
    dp_wait_up qva ve
    DP_NS="$DP_NS qva qvb"
    DP_DEVS="$DP_DEVS qva:ve qva:ve.10 qvb:vf qvb:vf.10"
}
dp_send_vlan() { dp_send qva 10.51.0.2 "$N"; }

# --- VXLAN overlay ---------------------------------------------------------------
# node qxa: underlay xa 10.40.0.1, vxlan vxa (VNI 42) 10.41.0.1 <-> node qxb: xb
# 10.40.0.2, vxb 10.41.0.2. N from qxa to vxb's address: encapsulated in UDP, the same
# skb is received again on vxb (gro_cells).
dp_setup_vxlan() {
    dp_ns qxa qxb || return 1
    dp_ip root <<EOF || return 1
link add xa address 02:00:0a:28:00:01 netns qxa type veth peer name xb address 02:00:0a:28:00:02 netns qxb
EOF
    dp_end qxa xa 10.40.0.1/24 10.40.0.2=02:00:0a:28:00:02 || return 1
    dp_end qxb xb 10.40.0.2/24 10.40.0.1=02:00:0a:28:00:01 || return 1
    dp_cmds qxa "link add vxa address 02:00:0a:29:00:01 type vxlan id 42 local 10.40.0.1 remote 10.40.0.2 dstport 4789 dev xa" || return 1
    dp_cmds qxb "link add vxb address 02:00:0a:29:00:02 type vxlan id 42 local 10.40.0.2 remote 10.40.0.1 dstport 4789 dev xb" || return 1
    dp_end qxa vxa 10.41.0.1/24 10.41.0.2=02:00:0a:29:00:02 || return 1
    dp_end qxb vxb 10.41.0.2/24 10.41.0.1=02:00:0a:29:00:01 || return 1
    dp_wait_up qxa xa
    DP_NS="$DP_NS qxa qxb"
    DP_DEVS="$DP_DEVS qxa:xa qxa:vxa qxb:xb qxb:vxb"
}
dp_send_vxlan() { dp_send qxa 10.41.0.2 "$N"; }

DP_SCENARIOS="ipvl2 ipvl3 macvlan ipip redirpeer netkit vlan vxlan"
# the modules each scenario needs (qemu/fetch-kernel.sh; built in where absent)
DP_MODS_ipvl2=ipvlan DP_MODS_ipvl3=ipvlan DP_MODS_macvlan=macvlan DP_MODS_ipip=ipip
DP_MODS_redirpeer="sch_ingress cls_bpf" DP_MODS_netkit= DP_MODS_vlan=8021q DP_MODS_vxlan=vxlan

dp_send() { # dp_send NS ADDR COUNT
    nsenter --net="/run/netns/$1" /bin/udpsend "$2" 9 "$3" "$SIZE" >/tmp/dpsend.out 2>&1 ||
        { meta "error_dp_$DP_LABEL" "udpsend $* failed: $(cat /tmp/dpsend.out)"; return 1; }
}

dp_setup() {
    for s in $DP_SCENARIOS; do
        DP_ERR=""
        t0=$(uptime_s)
        if "dp_setup_$s"; then
            DP_UP="$DP_UP $s"
            meta "dp_scen_$s" "up setup_s=$(awk "BEGIN{print $(uptime_s)-$t0}")"
        else
            # a module that did not load is the likely cause: say so first
            why=
            for mod in $(eval echo "\$DP_MODS_$s"); do
                [ -d "/sys/module/$mod" ] && continue
                if [ -s "/lib/modules/$mod.ko" ]; then why="$why module $mod did not load;"
                else why="$why module $mod not in this kernel's package;"; fi
            done
            meta "dp_scen_$s" "n/a${why} ${DP_ERR:-setup failed}"
        fi
    done
}

dp_traffic() { # dp_traffic LABEL
    DP_LABEL=$1
    for s in $DP_UP; do "dp_send_$s"; done
}

dp_snap() { # dp_snap FILE: "dev rx tx" per scenario device
    : > "$1"
    for ns in $DP_NS; do
        # /proc/net/dev: the same dev_get_stats() as /sys/class/net/*/statistics, read
        # with busybox's nsenter (no `ip netns exec`: no sysfs remount, no dynamic exec)
        nsenter --net="/run/netns/$ns" cat /proc/net/dev |
            awk -v ns="$ns" -v devs=" $DP_DEVS " '
                NR > 2 { i = index($0, ":"); d = substr($0, 1, i - 1); gsub(/ /, "", d)
                         split(substr($0, i + 1), f, " ")
                         if (index(devs, " " ns ":" d " ")) print d, f[2], f[10] }' >> "$1"
    done
    case " $DP_UP " in *" redirpeer "*)
        # pod B's UDP: every datagram delivered there (to port 9: NoPorts)
        nsenter --net=/run/netns/qrb cat /proc/net/snmp |
            awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print "qrb_udp", $2 + $3, 0}' >> "$1" ;;
    esac
}

dp_delta() { # dp_delta FILE0 FILE1
    awk 'NR == FNR {rx[$1] = $2; tx[$1] = $3; next}
         ($1 in rx) {printf "%s.rx=%d %s.tx=%d ", $1, $2 - rx[$1], $1, $3 - tx[$1]}' "$1" "$2"
}
