//! The article's data paths as one lab: a client, an optional node and a server ("pod")
//! in namespaces of their own, joined as a [`DataPath`] says.

use super::{
    address, bridge_fdb, ip, mac, netns_inode, ns_exec, static_neighbours, sysctl, veth_pair,
    OwnedNetns, Result,
};

/// How the client reaches the server in a [`PathLab`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPath {
    /// Client and server on one veth pair: a VM on its NIC.
    Vm,
    /// Client -> node over a veth pair (the NIC), NodePort-style DNAT on the node, routed
    /// to the pod over a calico-like veth (a /32 route, proxy ARP, no bridge).
    Container,
    /// The same, with the pod behind a Linux bridge on the node (docker, flannel).
    Bridge,
    /// Client -> node over a veth pair; the pod on a bridge-mode macvlan of the node's
    /// end, in its own namespace (no DNAT: the pod's address is on the wire).
    Macvlan,
    /// Like `Macvlan` with an L2 ipvlan (it shares the NIC's MAC address).
    Ipvlan,
    /// Like `Bridge`, without DNAT: the client sends to the pod's address, routed by the
    /// node.
    RoutedBridge,
}

impl DataPath {
    pub fn name(self) -> &'static str {
        match self {
            DataPath::Vm => "vm",
            DataPath::Container => "container",
            DataPath::Bridge => "bridge",
            DataPath::Macvlan => "macvlan",
            DataPath::Ipvlan => "ipvlan",
            DataPath::RoutedBridge => "routed-bridge",
        }
    }
}

/// A client, an optional node and a server ("pod") in namespaces of their own, joined as
/// `DataPath` says. Static neighbours everywhere and IPv6 off: what is measured is only
/// what is sent. Everything is removed on drop.
#[derive(Debug)]
pub struct PathLab {
    pub kind: DataPath,
    pub client_ns: String,
    pub node_ns: Option<String>,
    pub server_ns: String,
    /// The client's veth.
    pub client_if: String,
    /// The server's interface (its veth, or its macvlan).
    pub server_if: String,
    /// Where the server listens.
    pub server_addr: String,
    /// Where the client sends: the server, or the node's NodePort address.
    pub target_addr: String,
    /// The port the client sends to (NodePort) and the server's.
    pub target_port: u16,
    pub server_port: u16,
    namespaces: OwnedNetns,
}

impl PathLab {
    /// Builds the lab. `tag`: a few characters that make names unique with the pid;
    /// `net`: the second octet of the 10.net.0.0/16 it uses (nothing else may use it).
    pub fn new(kind: DataPath, tag: &str, net: u8) -> Result<PathLab> {
        let pid = std::process::id();
        let n = |r: &str| format!("sqt-{tag}-{r}-{pid}");
        let with_node = kind != DataPath::Vm;
        let mut lab = PathLab {
            kind,
            client_ns: n("c"),
            node_ns: with_node.then(|| n("n")),
            server_ns: n("s"),
            client_if: format!("sq{tag}c"),
            server_if: format!("sq{tag}s"),
            server_addr: String::new(),
            target_addr: String::new(),
            target_port: 30080,
            server_port: 8080,
            namespaces: OwnedNetns::default(),
        };
        let all: Vec<String> = [
            Some(lab.client_ns.clone()),
            lab.node_ns.clone(),
            Some(lab.server_ns.clone()),
        ]
        .into_iter()
        .flatten()
        .collect();
        for ns in &all {
            lab.namespaces.add(ns)?;
        }
        match kind {
            DataPath::Vm => lab.build_vm(net)?,
            _ => lab.build_node(net)?,
        }
        if lab.target_addr.is_empty() {
            lab.target_addr = lab.server_addr.clone();
            lab.target_port = lab.server_port;
        }
        Ok(lab)
    }

    fn build_vm(&mut self, net: u8) -> Result<()> {
        let (c, s) = (&self.client_ns, &self.server_ns);
        veth_pair((c, &self.client_if), (s, &self.server_if))?;
        let (ca, sa) = (format!("10.{net}.1.1"), format!("10.{net}.1.2"));
        address(c, &self.client_if, &ca)?;
        address(s, &self.server_if, &sa)?;
        static_neighbours((c, &self.client_if, &ca), (s, &self.server_if, &sa))?;
        self.server_addr = sa;
        Ok(())
    }

    /// Client <-> node (the NIC) and the node's way to the pod.
    fn build_node(&mut self, net: u8) -> Result<()> {
        let node = self.node_ns.clone().unwrap_or_default();
        let (c, s) = (self.client_ns.clone(), self.server_ns.clone());
        let nic = "nic0";
        veth_pair((&c, &self.client_if), (&node, nic))?;
        let (ca, na) = (format!("10.{net}.1.1"), format!("10.{net}.1.254"));
        address(&c, &self.client_if, &ca)?;
        address(&node, nic, &na)?;
        static_neighbours((&c, &self.client_if, &ca), (&node, nic, &na))?;
        sysctl(&node, "net.ipv4.ip_forward=1")?;
        let pod_addr = format!("10.{net}.2.2");
        match self.kind {
            DataPath::Container => {
                // calico: the pod's veth has no bridge; the node routes its /32 to it and
                // answers the pod's ARP for the gateway (169.254.1.1) by proxy.
                let cali = "cali0";
                veth_pair((&s, &self.server_if), (&node, cali))?;
                ip(&[
                    "-n",
                    &s,
                    "addr",
                    "add",
                    &format!("{pod_addr}/32"),
                    "dev",
                    &self.server_if,
                ])?;
                ip(&["-n", &s, "link", "set", &self.server_if, "up"])?;
                ip(&["-n", &node, "link", "set", cali, "up"])?;
                sysctl(&node, &format!("net.ipv4.conf.{cali}.proxy_arp=1"))?;
                ip(&[
                    "-n",
                    &node,
                    "route",
                    "add",
                    &format!("{pod_addr}/32"),
                    "dev",
                    cali,
                ])?;
                ip(&[
                    "-n",
                    &s,
                    "route",
                    "add",
                    "169.254.1.1",
                    "dev",
                    &self.server_if,
                    "scope",
                    "link",
                ])?;
                ip(&[
                    "-n",
                    &s,
                    "route",
                    "add",
                    "default",
                    "via",
                    "169.254.1.1",
                    "dev",
                    &self.server_if,
                ])?;
                static_neighbours(
                    (&s, &self.server_if, &pod_addr),
                    (&node, cali, "169.254.1.1"),
                )?;
                self.nodeport(&node, &na, &pod_addr)?;
                // The client reaches the node only; replies come back un-DNATed.
            }
            DataPath::Bridge | DataPath::RoutedBridge => {
                let (br, port) = ("br0", "vport0");
                ip(&["-n", &node, "link", "add", br, "type", "bridge"])?;
                let gw = format!("10.{net}.2.1");
                address(&node, br, &gw)?;
                veth_pair((&s, &self.server_if), (&node, port))?;
                ip(&["-n", &node, "link", "set", port, "master", br])?;
                ip(&["-n", &node, "link", "set", port, "up"])?;
                address(&s, &self.server_if, &pod_addr)?;
                ip(&["-n", &s, "route", "add", "default", "via", &gw])?;
                static_neighbours((&s, &self.server_if, &pod_addr), (&node, br, &gw))?;
                // A static FDB entry: no flooding (which would clone the skb).
                bridge_fdb(&node, &mac(&s, &self.server_if)?, port)?;
                if self.kind == DataPath::Bridge {
                    self.nodeport(&node, &na, &pod_addr)?;
                } else {
                    ip(&[
                        "-n",
                        &c,
                        "route",
                        "add",
                        &format!("10.{net}.2.0/24"),
                        "via",
                        &na,
                    ])?;
                }
            }
            DataPath::Macvlan | DataPath::Ipvlan => {
                // The pod's macvlan (ipvlan) on the node's NIC, moved into its namespace.
                let (kind, mode) = if self.kind == DataPath::Macvlan {
                    ("macvlan", "bridge")
                } else {
                    ("ipvlan", "l2")
                };
                ip(&[
                    "-n",
                    &node,
                    "link",
                    "add",
                    &self.server_if,
                    "link",
                    nic,
                    "type",
                    kind,
                    "mode",
                    mode,
                ])?;
                ip(&["-n", &node, "link", "set", &self.server_if, "netns", &s])?;
                let pa = format!("10.{net}.1.2");
                address(&s, &self.server_if, &pa)?;
                static_neighbours((&c, &self.client_if, &ca), (&s, &self.server_if, &pa))?;
                self.server_addr = pa;
                return Ok(());
            }
            DataPath::Vm => {}
        }
        self.server_addr = pod_addr;
        Ok(())
    }

    /// NodePort: the node's address and port 30080 DNATed to the pod's 8080.
    fn nodeport(&mut self, node: &str, node_addr: &str, pod_addr: &str) -> Result<()> {
        for proto in ["tcp", "udp"] {
            ns_exec(
                node,
                &[
                    "iptables",
                    "-t",
                    "nat",
                    "-A",
                    "PREROUTING",
                    "-d",
                    node_addr,
                    "-p",
                    proto,
                    "--dport",
                    "30080",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    &format!("{pod_addr}:8080"),
                ],
            )?;
        }
        self.target_addr = node_addr.to_string();
        self.target_port = 30080;
        Ok(())
    }

    pub fn client_inode(&self) -> Result<u32> {
        netns_inode(&self.client_ns)
    }
    pub fn server_inode(&self) -> Result<u32> {
        netns_inode(&self.server_ns)
    }
}
