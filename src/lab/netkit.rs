//! netkit pairs (Cilium's veth replacement since Linux 6.7) created over rtnetlink: the
//! iproute2 of older distributions cannot create them, and the lab must work wherever the
//! kernel can. One RTM_NEWLINK request, as `ip link add P type netkit mode l3 peer name Q
//! netns NS` sends it.

use std::fs::File;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoNetkit, LinkAttribute, LinkInfo, LinkMessage, NetkitMode, NetkitPolicy,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::{in_netns, io, LabError, Result};

/// The RTM_NEWLINK message for an L3 netkit pair: `primary` in the namespace the request is
/// sent from, `peer` in the namespace open at `peer_ns_fd`; both policies "forward", so it
/// carries packets without a program, like a veth pair.
pub fn new_link_message(primary: &str, peer: &str, peer_ns_fd: i32) -> LinkMessage {
    let mut peer_msg = LinkMessage::default();
    peer_msg.attributes = vec![
        LinkAttribute::IfName(peer.to_string()),
        LinkAttribute::NetNsFd(peer_ns_fd),
    ];
    let mut msg = LinkMessage::default();
    msg.attributes = vec![
        LinkAttribute::IfName(primary.to_string()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Netkit),
            LinkInfo::Data(InfoData::Netkit(vec![
                InfoNetkit::Mode(NetkitMode::L3),
                InfoNetkit::Policy(NetkitPolicy::Pass),
                InfoNetkit::PeerPolicy(NetkitPolicy::Pass),
                InfoNetkit::Peer(peer_msg),
            ])),
        ]),
    ];
    msg
}

/// Creates the netkit pair `primary` (in `ns`) <-> `peer` (in `peer_ns`), both down.
pub fn netkit_pair(ns: &str, primary: &str, peer_ns: &str, peer: &str) -> Result<()> {
    let path = format!("/run/netns/{peer_ns}");
    let peer_ns_fd = File::open(&path).map_err(io(path))?;
    let msg = new_link_message(primary, peer, peer_ns_fd.as_raw_fd());
    let what = format!("netkit {primary} (in {ns}) <-> {peer} (in {peer_ns})");
    // The socket is opened on a thread inside `ns`: the link is created where it lives.
    let r = in_netns(ns, move || request_ack(msg))?;
    drop(peer_ns_fd);
    r.map_err(|e| LabError::Ip(format!("{what}: {e}")))
}

/// Sends `RTM_NEWLINK msg` with NLM_F_ACK and waits for the kernel's answer.
fn request_ack(msg: LinkMessage) -> std::io::Result<()> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    header.sequence_number = 1;
    let mut req = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(msg)),
    );
    req.finalize();
    let mut out = vec![0u8; req.buffer_len()];
    req.serialize(&mut out);
    sock.send_to(&out, &SocketAddr::new(0, 0), 0)?;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let (_, from) = sock.recv_from(&mut buf, 0)?;
        if from.port_number() != 0 {
            continue;
        }
        let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf)
            .map_err(|e| std::io::Error::other(format!("netlink reply: {e}")))?;
        if reply.header.sequence_number != 1 {
            continue;
        }
        if let NetlinkPayload::Error(e) = reply.payload {
            return match e.code {
                None => Ok(()),
                Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    /// The request carries what the kernel's netkit_new_link reads: the kind, L3 mode and
    /// the peer (its name and namespace) in IFLA_NETKIT_PEER_INFO.
    #[test]
    fn message_round_trips_with_kind_mode_and_peer() {
        let m = new_link_message("s21lk0", "s21lk1", 42);
        let mut b = vec![0u8; m.buffer_len()];
        m.emit(&mut b);
        let back = LinkMessage::parse(b.as_slice()).expect("parses");
        let infos = back
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i.clone()),
                _ => None,
            })
            .expect("link info");
        assert!(infos.contains(&LinkInfo::Kind(InfoKind::Netkit)));
        let data = infos
            .iter()
            .find_map(|i| match i {
                LinkInfo::Data(InfoData::Netkit(d)) => Some(d.clone()),
                _ => None,
            })
            .expect("netkit data");
        assert!(data.contains(&InfoNetkit::Mode(NetkitMode::L3)));
        let peer = data
            .iter()
            .find_map(|d| match d {
                InfoNetkit::Peer(p) => Some(p.clone()),
                _ => None,
            })
            .expect("peer");
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("s21lk1".into())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(42)));
    }
}
