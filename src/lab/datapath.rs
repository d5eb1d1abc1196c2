//! The data paths the article recommends instead of veth + iptables, and the ones around
//! them, as small topologies of namespaces: Cilium-style eBPF host routing (tc
//! `bpf_redirect_peer`, `_neigh`, `bpf_redirect` egress and ingress), macvlan, ipvlan, VLAN
//! sub-interfaces, overlays (VXLAN, Geneve, IPIP) and netkit. Each says which devices a
//! packet from its sender to its receiver crosses and what the kernel's own device
//! statistics count on each, per packet: tests send a known number of packets and compare
//! (`/sys/class/net/*/statistics`), and the article lab runs its load over them.
//!
//! Names are unique per tag and pid; everything is removed on drop (also when building
//! fails half-way); traffic only goes to addresses inside the namespaces built here.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::netkit::netkit_pair;
use super::tcprog::{tools_missing, Redirect, TcObject, TcRoute};
use super::{
    address, bridge_fdb, disable_ipv6, ifindex, io, ip, mac, neighbour, netns_inode,
    static_neighbours, sysctl, veth_pair, LabError, Result,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Bridge,
    Private,
    Vepa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    L2,
    L3,
    L3s,
}

/// Where the packets to a macvlan/ipvlan come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Another macvlan/ipvlan of the same parent.
    Sibling,
    /// The parent's wire: the far end of the parent veth.
    Wire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    Vxlan,
    Geneve,
    /// Calico's IPIP mode.
    Ipip,
}

/// A topology: how the sender reaches the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topo {
    /// sender --veth-- node --veth-- receiver, routed by the node: the baseline.
    Routed,
    /// `Routed` with a tc program on the ingress of both host-side veths that redirects
    /// the packets for the other end (Cilium's eBPF host routing).
    Tc(Redirect),
    /// Sender and receiver on macvlans of a veth parent in a node namespace (the sender
    /// on a sibling macvlan or on the parent's far end, the "wire"). VEPA's external
    /// switch is a hairpin bridge on the wire side.
    Macvlan(MacvlanMode, Source),
    /// The same with ipvlans.
    Ipvlan(IpvlanMode, Source),
    /// VLAN sub-interfaces over a veth pair.
    Vlan,
    /// sender --veth-- node1 ==tunnel over a veth underlay== node2 --veth-- receiver.
    Overlay(Tunnel),
    /// `Routed` with netkit pairs (L3 mode, no program) instead of veth.
    Netkit,
}

impl Topo {
    /// A short name: `tc-redirect_peer`, `macvlan-bridge-sibling`, `overlay-vxlan`, ...
    pub fn name(self) -> String {
        let lower = |d: &dyn std::fmt::Debug| format!("{d:?}").to_lowercase();
        match self {
            Topo::Routed => "routed".into(),
            Topo::Tc(r) => format!("tc-{}", r.name()),
            Topo::Macvlan(m, s) => format!("macvlan-{}-{}", lower(&m), lower(&s)),
            Topo::Ipvlan(m, s) => format!("ipvlan-{}-{}", lower(&m), lower(&s)),
            Topo::Vlan => "vlan".into(),
            Topo::Overlay(t) => format!("overlay-{}", lower(&t)),
            Topo::Netkit => "netkit".into(),
        }
    }

    /// Why this topology cannot be built here (a device kind the kernel lacks, a missing
    /// tool); None when it can.
    pub fn missing(self) -> Option<String> {
        let mode = |m: &dyn std::fmt::Debug| format!("{m:?}").to_lowercase();
        match self {
            Topo::Routed => None,
            Topo::Tc(_) => tools_missing(),
            Topo::Macvlan(m, _) => link_missing("macvlan", &["mode", &mode(&m)], true).or_else(
                // VEPA's switch is a bridge.
                || {
                    (m == MacvlanMode::Vepa)
                        .then(|| link_missing("bridge", &[], false))
                        .flatten()
                },
            ),
            Topo::Ipvlan(m, _) => link_missing("ipvlan", &["mode", &mode(&m)], true),
            Topo::Vlan => link_missing("vlan", &["id", "212"], true),
            Topo::Overlay(Tunnel::Vxlan) => {
                link_missing("vxlan", &["id", "212", "dstport", "4789"], false)
            }
            Topo::Overlay(Tunnel::Geneve) => {
                link_missing("geneve", &["id", "212", "remote", "10.212.0.2"], false)
            }
            Topo::Overlay(Tunnel::Ipip) => link_missing(
                "ipip",
                &["local", "10.212.0.1", "remote", "10.212.0.2"],
                false,
            ),
            Topo::Netkit => netkit_missing(),
        }
    }
}

/// One end of the traffic: the device it sends or receives on, in its namespace.
#[derive(Debug, Clone)]
pub struct End {
    pub ns: String,
    pub dev: String,
    pub addr: String,
}

/// A device the topology's packets may cross and what the kernel counts on it per packet
/// sent from the sender to the receiver (`None`: depends on the kernel version, not known).
#[derive(Debug, Clone)]
pub struct Counted {
    pub ns: String,
    pub dev: String,
    pub rx: Option<u64>,
    pub tx: Option<u64>,
}

impl Counted {
    /// (netns inode, ifindex): how sirqtop keys the device.
    pub fn key(&self) -> Result<(u32, u32)> {
        Ok((netns_inode(&self.ns)?, ifindex(&self.ns, &self.dev)?))
    }
}

/// A device's packet counters as the kernel reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
}

/// rx_packets and tx_packets of `dev` in `ns`, from `/sys/class/net/DEV/statistics` as
/// seen inside the namespace (`ip netns exec` mounts its own /sys there).
pub fn kernel_stats(ns: &str, dev: &str) -> Result<DevStats> {
    let dir = format!("/sys/class/net/{dev}/statistics");
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat"])
        .arg(format!("{dir}/rx_packets"))
        .arg(format!("{dir}/tx_packets"))
        .output()
        .map_err(io(format!("reading {dir} in {ns}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match (out.status.success(), v.as_slice()) {
        (true, [rx, tx]) => Ok(DevStats {
            rx_packets: *rx,
            tx_packets: *tx,
        }),
        _ => Err(LabError::Ip(format!(
            "{dir} in {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// The kernel's rx_packets of `dev` in `ns`.
pub fn kernel_rx(ns: &str, dev: &str) -> Result<u64> {
    Ok(kernel_stats(ns, dev)?.rx_packets)
}

/// The kernel's tx_packets of `dev` in `ns`.
pub fn kernel_tx(ns: &str, dev: &str) -> Result<u64> {
    Ok(kernel_stats(ns, dev)?.tx_packets)
}

/// A built topology. `devices` lists every device of the path, each with what the kernel
/// counts on it per packet from `sender` to `receiver`; the reverse way is routed too (the
/// article's TCP needs it) except where the topology cannot deliver (macvlan private).
#[derive(Debug)]
pub struct TopoLab {
    pub topo: Topo,
    pub sender: End,
    pub receiver: End,
    pub devices: Vec<Counted>,
    namespaces: Vec<String>,
    // Kept for the lifetime of the lab: the attached programs outlive the file anyway.
    _tc: Option<TcObject>,
    tag: String,
    net: u8,
}

impl Drop for TopoLab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its devices, their pairs and their tc programs.
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl TopoLab {
    /// Builds `topo`. `tag`: up to 8 characters that make names unique with the pid;
    /// `net`: the second octet of the 10.net.0.0/16 it uses (nothing else may use it).
    pub fn build(topo: Topo, tag: &str, net: u8) -> Result<TopoLab> {
        if tag.is_empty() || tag.len() > 8 {
            return Err(LabError::Ip(format!("lab tag {tag:?}: 1 to 8 characters")));
        }
        let none = || End {
            ns: String::new(),
            dev: String::new(),
            addr: String::new(),
        };
        let mut t = TopoLab {
            topo,
            sender: none(),
            receiver: none(),
            devices: Vec::new(),
            namespaces: Vec::new(),
            _tc: None,
            tag: tag.to_string(),
            net,
        };
        // On an error `t` is dropped here, which removes what was built.
        match topo {
            Topo::Routed => t.routed(None)?,
            Topo::Tc(r) => t.routed(Some(r))?,
            Topo::Macvlan(..) | Topo::Ipvlan(..) => t.lower_devices()?,
            Topo::Vlan => t.vlan()?,
            Topo::Overlay(tun) => t.overlay(tun)?,
            Topo::Netkit => t.netkit()?,
        }
        Ok(t)
    }

    /// Every namespace of the topology (for a capture's netns filter).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The kernel's counters of `devices`, in their order.
    pub fn counters(&self) -> Result<Vec<DevStats>> {
        self.devices
            .iter()
            .map(|d| kernel_stats(&d.ns, &d.dev))
            .collect()
    }

    /// Compares the counters now with `before` (from [`TopoLab::counters`]) after `n`
    /// packets from the sender to the receiver: every known per-packet count times `n`.
    /// The error lists every device that differs.
    pub fn check(&self, before: &[DevStats], n: u64) -> std::result::Result<(), String> {
        let after = self.counters().map_err(|e| e.to_string())?;
        let mut bad = Vec::new();
        for ((d, b), a) in self.devices.iter().zip(before).zip(&after) {
            let deltas = [
                ("rx", d.rx, a.rx_packets - b.rx_packets),
                ("tx", d.tx, a.tx_packets - b.tx_packets),
            ];
            for (what, per, got) in deltas {
                if let Some(per) = per.filter(|p| p * n != got) {
                    bad.push(format!(
                        "{}/{} {what}_packets +{got}, expected +{}",
                        d.ns,
                        d.dev,
                        per * n
                    ));
                }
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.topo.name(), bad.join("; ")))
        }
    }

    /// A fresh namespace for `role`, IPv6 off, lo up, as a router if `router`.
    fn netns(&mut self, role: &str, router: bool) -> Result<String> {
        let ns = format!("sqt-{}-{role}-{}", self.tag, std::process::id());
        // A leftover of a crashed earlier run with the same pid would collide.
        let _ = ip(&["netns", "del", &ns]);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        disable_ipv6(&ns);
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        if router {
            // Before any device exists, so that `default` applies to them: no reverse-path
            // filter (redirected packets arrive where the routes do not point) and no
            // ICMP redirects (they would add packets to the counts).
            for kv in [
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
                "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.default.send_redirects=0",
            ] {
                sysctl(&ns, kv)?;
            }
        }
        Ok(ns)
    }

    fn dev(&self, role: &str) -> String {
        format!("{}{role}", self.tag)
    }

    fn addr(&self, subnet: u8, host: u8) -> String {
        format!("10.{}.{subnet}.{host}", self.net)
    }

    fn count(&mut self, ns: &str, dev: &str, rx: Option<u64>, tx: Option<u64>) {
        self.devices.push(Counted {
            ns: ns.to_string(),
            dev: dev.to_string(),
            rx,
            tx,
        });
    }

    /// A pod on a veth to a router namespace: `pod`'s `pdev` 10.net.SUB.2/24 with the
    /// router's `hdev` 10.net.SUB.1 as its default gateway, static neighbours.
    fn pod_link(&self, pod: &str, pdev: &str, node: &str, hdev: &str, sub: u8) -> Result<End> {
        veth_pair((pod, pdev), (node, hdev))?;
        let (pa, ga) = (self.addr(sub, 2), self.addr(sub, 1));
        address(pod, pdev, &pa)?;
        address(node, hdev, &ga)?;
        ip(&["-n", pod, "route", "add", "default", "via", &ga])?;
        static_neighbours((pod, pdev, &pa), (node, hdev, &ga))?;
        Ok(End {
            ns: pod.to_string(),
            dev: pdev.to_string(),
            addr: pa,
        })
    }

    /// sender --veth-- node --veth-- receiver, optionally with tc host routing.
    fn routed(&mut self, tc: Option<Redirect>) -> Result<()> {
        let (s, n, r) = (
            self.netns("s", false)?,
            self.netns("n", true)?,
            self.netns("r", false)?,
        );
        let (hs, hr) = (self.dev("hs"), self.dev("hr"));
        self.sender = self.pod_link(&s, &self.dev("s"), &n, &hs, 1)?;
        self.receiver = self.pod_link(&r, &self.dev("r"), &n, &hr, 2)?;
        let (sd, rd) = (self.sender.dev.clone(), self.receiver.dev.clone());
        let (mut hr_rx, mut hr_tx, mut r_rx) = (Some(0), Some(1), Some(1));
        if let Some(how) = tc {
            // Packets to one pod arrive at the other pod's host end.
            let route = |dst: &End, host: &str, on: &str| -> Result<TcRoute> {
                let (peer_mac, host_mac) = (mac_bytes(&dst.ns, &dst.dev)?, mac_bytes(&n, host)?);
                Ok(TcRoute {
                    on: ifindex(&n, on)?,
                    dst: dst.addr.parse().map_err(|e| LabError::Ip(format!("{e}")))?,
                    how,
                    ifindex: ifindex(&n, host)?,
                    macs: match how {
                        Redirect::Neigh => None,
                        // Received by the host end: addressed to it, from the pod.
                        Redirect::Ingress => Some((host_mac, peer_mac)),
                        Redirect::Peer | Redirect::Egress => Some((peer_mac, host_mac)),
                    },
                })
            };
            let routes = [
                route(&self.receiver, &hr, &hs)?,
                route(&self.sender, &hs, &hr)?,
            ];
            let obj = TcObject::compile(&routes)?;
            obj.attach_ingress(&n, &hs)?;
            obj.attach_ingress(&n, &hr)?;
            self._tc = Some(obj);
            match how {
                // Straight into the receiver's veth: its host end sees nothing. The kernel
                // counts the receive on the peer since 6.7 ("bpf: Fix dev's rx stats for
                // bpf_redirect_peer traffic"); before that it is not counted at all.
                Redirect::Peer => (hr_tx, r_rx) = (Some(0), kernel_at_least(6, 7).then_some(1)),
                // Into hr's receive path: the kernel counts no receive there (only a veth's
                // peer transmit is one); the node then routes it out of hr.
                Redirect::Ingress => hr_rx = Some(0),
                Redirect::Neigh | Redirect::Egress => {}
            }
        }
        self.count(&s, &sd, Some(0), Some(1));
        self.count(&n, &hs, Some(1), Some(0));
        self.count(&n, &hr, hr_rx, hr_tx);
        self.count(&r, &rd, r_rx, Some(0));
        Ok(())
    }

    /// Macvlans or ipvlans: wire --veth-- node's parent `p`; sender and receiver on
    /// siblings of `p` (or the sender on the wire), all in 10.net.1.0/24.
    fn lower_devices(&mut self) -> Result<()> {
        let (kind, mode, src) = match self.topo {
            Topo::Macvlan(m, s) => ("macvlan", format!("{m:?}"), s),
            Topo::Ipvlan(m, s) => ("ipvlan", format!("{m:?}"), s),
            _ => unreachable!("lower_devices is only built for macvlan and ipvlan"),
        };
        let mode = mode.to_lowercase();
        let vepa = self.topo == Topo::Macvlan(MacvlanMode::Vepa, src);
        let private = self.topo == Topo::Macvlan(MacvlanMode::Private, src);
        let (w, n, s, r) = (
            self.netns("w", false)?,
            self.netns("n", false)?,
            self.netns("s", false)?,
            self.netns("r", false)?,
        );
        let (wd, p, sd, rd) = (self.dev("w"), self.dev("p"), self.dev("s"), self.dev("r"));
        veth_pair((&w, &wd), (&n, &p))?;
        ip(&["-n", &n, "link", "set", &p, "up"])?;
        for (ns, dev) in [(&s, &sd), (&r, &rd)] {
            ip(&[
                "-n", &n, "link", "add", dev, "link", &p, "type", kind, "mode", &mode,
            ])?;
            ip(&["-n", &n, "link", "set", dev, "netns", ns])?;
        }
        // VEPA sends siblings' frames to the wire's switch, which must send them back:
        // a bridge with hairpin on the wire's end, the receiver's MAC statically on it.
        let wire_dev = if vepa {
            let br = self.dev("br");
            // No multicast snooping: with it the bridge's own stack sends IGMP reports
            // (two, a second apart) once it has an address, which the counts would see.
            ip(&[
                "-n",
                &w,
                "link",
                "add",
                &br,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            ip(&["-n", &w, "link", "set", &wd, "master", &br])?;
            ip(&[
                "-n",
                &w,
                "link",
                "set",
                &wd,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ])?;
            ip(&["-n", &w, "link", "set", &wd, "up"])?;
            let rmac = mac(&r, &rd)?;
            ip(&["-n", &w, "link", "set", &br, "up"])?;
            bridge_fdb(&w, &rmac, &wd)?;
            forwarding(&w, &wd)?;
            br
        } else {
            wd.clone()
        };
        let (wa, sa, ra) = (self.addr(1, 1), self.addr(1, 2), self.addr(1, 3));
        address(&w, &wire_dev, &wa)?;
        address(&s, &sd, &sa)?;
        address(&r, &rd, &ra)?;
        if matches!(self.topo, Topo::Ipvlan(IpvlanMode::L3 | IpvlanMode::L3s, _)) {
            // L3 slaves do no ARP (their MAC is the parent's): the wire needs the
            // receiver's entry only, and the slaves' replies to the wire are routed in the
            // node's namespace, out of the parent.
            neighbour(&w, &wire_dev, &ra, &mac(&r, &rd)?)?;
            ip(&[
                "-n",
                &n,
                "route",
                "add",
                &format!("{}/24", self.addr(1, 0)),
                "dev",
                &p,
            ])?;
            neighbour(&n, &p, &wa, &mac(&w, &wire_dev)?)?;
        } else {
            static_neighbours((&w, &wire_dev, &wa), (&r, &rd, &ra))?;
            static_neighbours((&s, &sd, &sa), (&r, &rd, &ra))?;
        }
        self.receiver = End {
            ns: r.clone(),
            dev: rd.clone(),
            addr: ra,
        };
        self.sender = match src {
            Source::Sibling => End {
                ns: s.clone(),
                dev: sd.clone(),
                addr: sa,
            },
            Source::Wire => End {
                ns: w.clone(),
                dev: wire_dev.clone(),
                addr: wa,
            },
        };
        let z = Some(0);
        match src {
            Source::Sibling => {
                // Bridge mode (and ipvlan) deliver to the sibling inside the parent;
                // private and VEPA send out of the parent; only VEPA's switch returns it.
                let out = (vepa || private) as u64;
                let back = Some(vepa as u64);
                self.count(&s, &sd, z, Some(1));
                self.count(&n, &p, back, Some(out));
                self.count(&w, &wd, Some(out), back);
                if vepa {
                    // Forwarded by the bridge, not delivered to it.
                    self.count(&w, &wire_dev, z, z);
                }
                self.count(&r, &rd, Some(1 - private as u64), z);
            }
            Source::Wire => {
                if vepa {
                    self.count(&w, &wire_dev, z, Some(1));
                }
                self.count(&w, &wd, z, Some(1));
                self.count(&n, &p, Some(1), z);
                self.count(&s, &sd, z, z);
                self.count(&r, &rd, Some(1), z);
            }
        }
        Ok(())
    }

    /// VLAN 212 sub-interfaces on both ends of a veth pair.
    fn vlan(&mut self) -> Result<()> {
        let (s, r) = (self.netns("s", false)?, self.netns("r", false)?);
        let (sp, rp, sv, rv) = (self.dev("sp"), self.dev("rp"), self.dev("s"), self.dev("r"));
        veth_pair((&s, &sp), (&r, &rp))?;
        let (sa, ra) = (self.addr(1, 2), self.addr(1, 3));
        for (ns, parent, vdev, a) in [(&s, &sp, &sv, &sa), (&r, &rp, &rv, &ra)] {
            ip(&["-n", ns, "link", "set", parent, "up"])?;
            ip(&[
                "-n", ns, "link", "add", vdev, "link", parent, "type", "vlan", "id", "212",
            ])?;
            address(ns, vdev, a)?;
        }
        static_neighbours((&s, &sv, &sa), (&r, &rv, &ra))?;
        self.sender = End {
            ns: s.clone(),
            dev: sv.clone(),
            addr: sa,
        };
        self.receiver = End {
            ns: r.clone(),
            dev: rv.clone(),
            addr: ra,
        };
        let z = Some(0);
        self.count(&s, &sv, z, Some(1));
        self.count(&s, &sp, z, Some(1));
        self.count(&r, &rp, Some(1), z);
        self.count(&r, &rv, Some(1), z);
        Ok(())
    }

    /// Two nodes joined by a veth underlay (10.net.0.0/24) and a tunnel over it; the
    /// sender's pod on node 1 (10.net.1.0/24), the receiver's on node 2 (10.net.2.0/24).
    fn overlay(&mut self, tun: Tunnel) -> Result<()> {
        let (s, n1, n2, r) = (
            self.netns("s", false)?,
            self.netns("n1", true)?,
            self.netns("n2", true)?,
            self.netns("r", false)?,
        );
        let (hs, hr, u1, u2, t) = (
            self.dev("hs"),
            self.dev("hr"),
            self.dev("u1"),
            self.dev("u2"),
            self.dev("t"),
        );
        self.sender = self.pod_link(&s, &self.dev("s"), &n1, &hs, 1)?;
        self.receiver = self.pod_link(&r, &self.dev("r"), &n2, &hr, 2)?;
        veth_pair((&n1, &u1), (&n2, &u2))?;
        let (ua1, ua2) = (self.addr(0, 1), self.addr(0, 2));
        address(&n1, &u1, &ua1)?;
        address(&n2, &u2, &ua2)?;
        static_neighbours((&n1, &u1, &ua1), (&n2, &u2, &ua2))?;
        let (ta1, ta2) = (self.addr(3, 1), self.addr(3, 2));
        // (node, underlay device, local, remote, the far tunnel address, the far pods).
        let ends = [
            (
                n1.clone(),
                u1.clone(),
                ua1.clone(),
                ua2.clone(),
                ta2.clone(),
                self.addr(2, 0),
            ),
            (
                n2.clone(),
                u2.clone(),
                ua2.clone(),
                ua1.clone(),
                ta1.clone(),
                self.addr(1, 0),
            ),
        ];
        for (node, under, local, remote, _, _) in &ends {
            let kind: Vec<&str> = match tun {
                Tunnel::Vxlan => vec![
                    "vxlan", "id", "212", "local", local, "remote", remote, "dstport", "4789",
                    "dev", under,
                ],
                Tunnel::Geneve => vec!["geneve", "id", "212", "remote", remote],
                Tunnel::Ipip => vec!["ipip", "local", local, "remote", remote, "dev", under],
            };
            let mut cmd = vec!["-n", node.as_str(), "link", "add", t.as_str(), "type"];
            cmd.extend(kind);
            ip(&cmd)?;
        }
        address(&n1, &t, &ta1)?;
        address(&n2, &t, &ta2)?;
        if tun != Tunnel::Ipip {
            static_neighbours((&n1, &t, &ta1), (&n2, &t, &ta2))?;
        }
        for (node, _, _, _, via, pods) in &ends {
            let pods = format!("{pods}/24");
            if tun == Tunnel::Ipip {
                // Point to point, no L2: the far pods' subnet goes into the tunnel.
                ip(&["-n", node, "route", "add", &pods, "dev", &t])?;
            } else {
                ip(&["-n", node, "route", "add", &pods, "via", via, "dev", &t])?;
            }
        }
        let (sd, rd, z, one) = (
            self.sender.dev.clone(),
            self.receiver.dev.clone(),
            Some(0),
            Some(1),
        );
        self.count(&s, &sd, z, one);
        self.count(&n1, &hs, one, z);
        self.count(&n1, &t, z, one);
        self.count(&n1, &u1, z, one);
        self.count(&n2, &u2, one, z);
        self.count(&n2, &t, one, z);
        self.count(&n2, &hr, z, one);
        self.count(&r, &rd, one, z);
        Ok(())
    }

    /// sender --netkit-- node --netkit-- receiver (L3 mode: no MACs, no ARP), routed /32s.
    fn netkit(&mut self) -> Result<()> {
        let (s, n, r) = (
            self.netns("s", false)?,
            self.netns("n", true)?,
            self.netns("r", false)?,
        );
        let z = Some(0);
        for (pod, sub, is_sender) in [(s.clone(), 1u8, true), (r.clone(), 2, false)] {
            let (pdev, hdev) = if is_sender {
                (self.dev("s"), self.dev("ks"))
            } else {
                (self.dev("r"), self.dev("kr"))
            };
            netkit_pair(&n, &hdev, &pod, &pdev)?;
            let a = self.addr(sub, 2);
            ip(&["-n", &pod, "addr", "add", &format!("{a}/32"), "dev", &pdev])?;
            ip(&["-n", &pod, "link", "set", &pdev, "up"])?;
            ip(&["-n", &pod, "route", "add", "default", "dev", &pdev])?;
            ip(&["-n", &n, "link", "set", &hdev, "up"])?;
            ip(&["-n", &n, "route", "add", &format!("{a}/32"), "dev", &hdev])?;
            let end = End {
                ns: pod.clone(),
                dev: pdev.clone(),
                addr: a,
            };
            if is_sender {
                self.count(&pod, &pdev, z, Some(1));
                self.count(&n, &hdev, Some(1), z);
                self.sender = end;
            } else {
                self.count(&n, &hdev, z, Some(1));
                self.count(&pod, &pdev, Some(1), z);
                self.receiver = end;
            }
        }
        Ok(())
    }
}

/// Waits until the bridge port `port` forwards: the bridge enables it only once the
/// kernel's link watcher has seen its carrier, up to a second after it came up, and drops
/// what arrives before.
fn forwarding(ns: &str, port: &str) -> Result<()> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let out = Command::new("bridge")
            .args(["-n", ns, "link", "show", "dev", port])
            .output()
            .map_err(io("bridge link show"))?;
        if String::from_utf8_lossy(&out.stdout).contains("state forwarding") {
            return Ok(());
        }
        if std::time::Instant::now() > end {
            return Err(LabError::Ip(format!(
                "bridge port {port} (in {ns}) not forwarding after 5 s"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn mac_bytes(ns: &str, dev: &str) -> Result<[u8; 6]> {
    let text = mac(ns, dev)?;
    let mut out = [0u8; 6];
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(LabError::Ip(format!("MAC address {text} of {dev}")));
    }
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16)
            .map_err(|e| LabError::Ip(format!("MAC address {text} of {dev}: {e}")))?;
    }
    Ok(out)
}

/// Whether the running kernel is at least major.minor.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (major, minor)
}

/// A scratch namespace for probes, unique per call (tests probe in parallel).
fn probe_ns() -> Result<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let ns = format!(
        "sqt-probe{}-{}",
        N.fetch_add(1, Ordering::Relaxed),
        std::process::id()
    );
    let _ = ip(&["netns", "del", &ns]);
    ip(&["netns", "add", &ns])?;
    Ok(ns)
}

/// Why a `kind` device (with `args`, on a veth parent if `on_parent`) cannot be created
/// here; None when it can.
pub fn link_missing(kind: &str, args: &[&str], on_parent: bool) -> Option<String> {
    let ns = match probe_ns() {
        Ok(ns) => ns,
        Err(e) => return Some(format!("cannot create a namespace to test for {kind}: {e}")),
    };
    let r = ip(&[
        "-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
    ])
    .and_then(|()| {
        let mut cmd = vec!["-n", &ns, "link", "add", "x0"];
        if on_parent {
            cmd.extend(["link", "p0"]);
        }
        cmd.extend(["type", kind]);
        cmd.extend(args);
        ip(&cmd)
    });
    let _ = ip(&["netns", "del", &ns]);
    r.err()
        .map(|e| format!("this kernel has no {kind} ({e}): load its module or build it in"))
}

/// Why no netkit pair can be created here; None when one can.
fn netkit_missing() -> Option<String> {
    let ns = match probe_ns() {
        Ok(ns) => ns,
        Err(e) => return Some(format!("cannot create a namespace to test for netkit: {e}")),
    };
    let r = netkit_pair(&ns, "k0", &ns, "k1");
    let _ = ip(&["netns", "del", &ns]);
    r.err()
        .map(|e| format!("this kernel has no netkit ({e}): it needs Linux 6.7+ with CONFIG_NETKIT"))
}
