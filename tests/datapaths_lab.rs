//! The lab's data-path builders (src/lab/datapath.rs) proven against the kernel: each
//! topology is built, a known number of UDP datagrams goes from its sender to its
//! receiver, and every device of the path shows exactly what the kernel's own statistics
//! (`/sys/class/net/*/statistics`) must show for them (and nothing where nothing must
//! pass). Topologies whose device kind this kernel lacks are skipped with the reason.
//! Root only; the tests take turns (they share the kernel); all names are unique per pid
//! and tag, all in 10.212.0.0/16, 10.214.0.0/16 and 10.215.0.0/16.

mod common;

use std::time::{Duration, Instant};

use sirqtop::lab::datapath::{IpvlanMode, MacvlanMode, Source, Tunnel};
use sirqtop::lab::tcprog::Redirect;
use sirqtop::lab::{Topo, TopoLab};

const N: usize = 500;
const PORT: u16 = 5212;

/// Builds `topo`, sends N datagrams and checks every device of the path.
fn prove(topo: Topo, tag: &str, net: u8) {
    require_root!();
    let _turn = common::serial();
    if let Topo::Tc(_) = topo {
        require_tool!("tc", &["-V"], "iproute2");
        require_tool!("clang", &["--version"], "clang");
    }
    if let Some(why) = topo.missing() {
        eprintln!("skipped {}: {why}", topo.name());
        return;
    }
    let lab = TopoLab::build(topo, tag, net).expect("building the topology");
    let _sink = common::udp_sink(&lab.receiver.ns, &lab.receiver.addr, PORT);
    let before = lab.counters().expect("kernel counters");
    common::send_udp(&lab.sender.ns, &lab.receiver.addr, PORT, N, 64);
    // Transmits are counted when sent, receives when the backlog has run: give it time,
    // then the counts must be exact.
    let end = Instant::now() + Duration::from_secs(3);
    let mut r = lab.check(&before, N as u64);
    while r.is_err() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        r = lab.check(&before, N as u64);
    }
    if let Err(e) = r {
        panic!("{e}");
    }
    // Nothing more arrives later (no duplicate delivery, no late packets).
    std::thread::sleep(Duration::from_millis(200));
    lab.check(&before, N as u64)
        .unwrap_or_else(|e| panic!("later: {e}"));
}

#[test]
fn routed_veth_baseline() {
    prove(Topo::Routed, "dpro", 212);
}

#[test]
fn tc_redirect_peer() {
    prove(Topo::Tc(Redirect::Peer), "dpp", 214);
}

#[test]
fn tc_redirect_neigh() {
    prove(Topo::Tc(Redirect::Neigh), "dpn", 214);
}

#[test]
fn tc_redirect_egress() {
    prove(Topo::Tc(Redirect::Egress), "dpe", 214);
}

#[test]
fn tc_redirect_ingress() {
    prove(Topo::Tc(Redirect::Ingress), "dpi", 214);
}

#[test]
fn macvlan_bridge_from_sibling() {
    prove(
        Topo::Macvlan(MacvlanMode::Bridge, Source::Sibling),
        "dpmbs",
        215,
    );
}

#[test]
fn macvlan_bridge_from_parent() {
    prove(
        Topo::Macvlan(MacvlanMode::Bridge, Source::Wire),
        "dpmbw",
        215,
    );
}

/// Private: a sibling's packets leave through the parent and never reach the receiver.
#[test]
fn macvlan_private_from_sibling() {
    prove(
        Topo::Macvlan(MacvlanMode::Private, Source::Sibling),
        "dpmps",
        215,
    );
}

#[test]
fn macvlan_private_from_parent() {
    prove(
        Topo::Macvlan(MacvlanMode::Private, Source::Wire),
        "dpmpw",
        215,
    );
}

/// VEPA: a sibling's packets go out to the wire's (hairpin) switch and come back in.
#[test]
fn macvlan_vepa_from_sibling() {
    prove(
        Topo::Macvlan(MacvlanMode::Vepa, Source::Sibling),
        "dpmvs",
        215,
    );
}

#[test]
fn ipvlan_l2() {
    prove(Topo::Ipvlan(IpvlanMode::L2, Source::Sibling), "dpi2s", 215);
    prove(Topo::Ipvlan(IpvlanMode::L2, Source::Wire), "dpi2w", 215);
}

#[test]
fn ipvlan_l3() {
    prove(Topo::Ipvlan(IpvlanMode::L3, Source::Sibling), "dpi3s", 215);
    prove(Topo::Ipvlan(IpvlanMode::L3, Source::Wire), "dpi3w", 215);
}

#[test]
fn ipvlan_l3s() {
    prove(Topo::Ipvlan(IpvlanMode::L3s, Source::Sibling), "dpi4s", 215);
    prove(Topo::Ipvlan(IpvlanMode::L3s, Source::Wire), "dpi4w", 215);
}

#[test]
fn vlan_over_veth() {
    prove(Topo::Vlan, "dpvl", 212);
}

#[test]
fn overlay_vxlan() {
    prove(Topo::Overlay(Tunnel::Vxlan), "dpvx", 212);
}

#[test]
fn overlay_geneve() {
    prove(Topo::Overlay(Tunnel::Geneve), "dpgn", 212);
}

#[test]
fn overlay_ipip() {
    prove(Topo::Overlay(Tunnel::Ipip), "dpip", 212);
}

#[test]
fn netkit_pairs() {
    prove(Topo::Netkit, "dpnk", 212);
}

/// Everything a topology builds goes with it: its namespaces, and with them its devices
/// and tc programs.
#[test]
fn dropped_topologies_leave_nothing() {
    require_root!();
    let _turn = common::serial();
    require_tool!("tc", &["-V"], "iproute2");
    require_tool!("clang", &["--version"], "clang");
    let lab = TopoLab::build(Topo::Tc(Redirect::Peer), "dpdrop", 212).expect("building");
    let names: Vec<String> = lab.namespaces().to_vec();
    assert_eq!(names.len(), 3, "sender, node, receiver: {names:?}");
    for ns in &names {
        assert!(std::path::Path::new(&format!("/run/netns/{ns}")).exists());
    }
    drop(lab);
    for ns in &names {
        assert!(
            !std::path::Path::new(&format!("/run/netns/{ns}")).exists(),
            "{ns} left behind"
        );
    }
}

/// A failed build removes what it had built already.
#[test]
fn failed_build_leaves_nothing() {
    require_root!();
    let _turn = common::serial();
    let ours = |tag: &str| {
        let prefix = format!("sqt-{tag}-");
        let suffix = format!("-{}", std::process::id());
        std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
            .collect::<Vec<_>>()
    };
    // A tag too long for device names is refused before anything is built.
    assert!(TopoLab::build(Topo::Routed, "waytoolongtag", 212).is_err());
    // A device kind this kernel lacks fails the build half-way, namespaces made.
    let lacking = [
        Topo::Netkit,
        Topo::Overlay(Tunnel::Ipip),
        Topo::Overlay(Tunnel::Geneve),
        Topo::Vlan,
    ]
    .into_iter()
    .find(|t| t.missing().is_some());
    let Some(topo) = lacking else {
        eprintln!("skipped the half-way part: this kernel has every device kind");
        return;
    };
    assert!(TopoLab::build(topo, "dpfail", 212).is_err());
    assert_eq!(ours("dpfail"), Vec::<String>::new(), "left behind");
}
