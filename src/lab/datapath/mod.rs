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

mod build;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::netkit::netkit_pair;
use super::tcprog::{tools_missing, Redirect, TcObject};
use super::{ifindex, io, ip, netns_inode, LabError, OwnedNetns, Result};

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
    // Declared first: dropped (the namespaces deleted) before the object file.
    namespaces: OwnedNetns,
    // Kept for the lifetime of the lab: the attached programs outlive the file anyway.
    _tc: Option<TcObject>,
    tag: String,
    net: u8,
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
            namespaces: OwnedNetns::default(),
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
        self.namespaces.names()
    }

    /// The kernel's counters of `devices`, in their order.
    pub fn counters(&self) -> Result<Vec<DevStats>> {
        self.devices
            .iter()
            .map(|d| kernel_stats(&d.ns, &d.dev))
            .collect()
    }

    /// The inodes of the topology's namespaces (a capture's `netns_filter`).
    pub fn netns_inodes(&self) -> Result<Vec<u32>> {
        self.namespaces().iter().map(|ns| netns_inode(ns)).collect()
    }

    /// What the kernel counted on each of `devices` since `before` (from
    /// [`TopoLab::counters`]), in their order.
    pub fn deltas(&self, before: &[DevStats]) -> Result<Vec<DevStats>> {
        Ok(self
            .counters()?
            .iter()
            .zip(before)
            .map(|(a, b)| DevStats {
                rx_packets: a.rx_packets.saturating_sub(b.rx_packets),
                tx_packets: a.tx_packets.saturating_sub(b.tx_packets),
            })
            .collect())
    }

    /// Compares the counters now with `before` (from [`TopoLab::counters`]) after `n`
    /// packets from the sender to the receiver: every known per-packet count times `n`.
    /// The error lists every device that differs.
    pub fn check(&self, before: &[DevStats], n: u64) -> std::result::Result<(), String> {
        let deltas = self.deltas(before).map_err(|e| e.to_string())?;
        let mut bad = Vec::new();
        for (d, delta) in self.devices.iter().zip(&deltas) {
            let deltas = [
                ("rx", d.rx, delta.rx_packets),
                ("tx", d.tx, delta.tx_packets),
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
