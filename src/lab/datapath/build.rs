//! The builders of [`TopoLab`]: one per topology, each making its namespaces and devices,
//! choosing its sender and receiver and listing the devices of the path with what the
//! kernel counts on each per packet.

use std::process::Command;
use std::time::{Duration, Instant};

use super::super::netkit::netkit_pair;
use super::super::tcprog::{Redirect, TcObject, TcRoute};
use super::super::{
    address, bridge_fdb, ifindex, io, ip, mac, neighbour, static_neighbours, sysctl, veth_pair,
    LabError, Result,
};
use super::{Counted, End, IpvlanMode, MacvlanMode, Source, Topo, TopoLab, Tunnel};

impl TopoLab {
    /// A fresh namespace for `role`, IPv6 off, lo up, as a router if `router`.
    fn netns(&mut self, role: &str, router: bool) -> Result<String> {
        let ns = format!("sqt-{}-{role}-{}", self.tag, std::process::id());
        self.namespaces.add(&ns)?;
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
    pub(super) fn routed(&mut self, tc: Option<Redirect>) -> Result<()> {
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
    pub(super) fn lower_devices(&mut self) -> Result<()> {
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
    pub(super) fn vlan(&mut self) -> Result<()> {
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
    pub(super) fn overlay(&mut self, tun: Tunnel) -> Result<()> {
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
    pub(super) fn netkit(&mut self) -> Result<()> {
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
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("bridge")
            .args(["-n", ns, "link", "show", "dev", port])
            .output()
            .map_err(io("bridge link show"))?;
        if String::from_utf8_lossy(&out.stdout).contains("state forwarding") {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(LabError::Ip(format!(
                "bridge port {port} (in {ns}) not forwarding after 5 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
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
