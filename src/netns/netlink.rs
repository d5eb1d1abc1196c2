//! Our small wrapper over `netlink-packet-route` (messages) and `netlink-sys` (a blocking
//! socket): RTM_GETLINK dumps and RTM_GETNSID queries. The socket belongs to the network
//! namespace of the thread that created it, so callers create it after `setns` in a
//! helper thread. Replies are accepted only from the kernel (port 0) and only for the
//! request's sequence number.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::{
    LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkLayerType, LinkMessage,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::stats::{StatsAttribute, StatsFilterMask, StatsMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A link as the kernel reported it, before nsids are mapped to namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLink {
    pub ifindex: u32,
    pub name: String,
    pub kind: Option<String>,
    pub loopback: bool,
    /// IFLA_LINK; omitted when it equals `ifindex` (on newer kernels only without a
    /// link-netnsid).
    pub link: Option<u32>,
    /// IFLA_LINK_NETNSID; only present when the link's peer/lower device is in another netns.
    pub link_netnsid: Option<i32>,
}

impl RawLink {
    /// The parts of an RTM_NEWLINK message that discovery uses.
    pub fn from_message(m: &LinkMessage) -> RawLink {
        let mut link = RawLink {
            ifindex: m.header.index,
            name: String::new(),
            kind: None,
            loopback: m.header.link_layer_type == LinkLayerType::Loopback
                || m.header.flags.contains(LinkFlags::Loopback),
            link: None,
            link_netnsid: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Link(l) => link.link = Some(*l),
                LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(*id),
                LinkAttribute::LinkInfo(infos) => {
                    link.kind = infos.iter().find_map(|i| match i {
                        LinkInfo::Kind(k) => Some(k.to_string()).filter(|k| !k.is_empty()),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
        link
    }
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum NlError {
    Io(io::Error),
    /// The kernel flagged the dump NLM_F_DUMP_INTR (links changed during it): retry.
    Interrupted,
}

impl From<io::Error> for NlError {
    fn from(e: io::Error) -> Self {
        NlError::Io(e)
    }
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NlError::Io(e) => write!(f, "{e}"),
            NlError::Interrupted => write!(f, "dump interrupted by a concurrent change"),
        }
    }
}

/// What one received message means for the exchange it belongs to.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// A reply to hand to the caller.
    Reply(RouteNetlinkMessage),
    /// Not ours (other sequence number or sender) or nothing to do (NOOP).
    Skip,
    /// The exchange ended: DONE of a dump, an ACK, or an error code.
    End(Result<(), i32>),
}

/// Classifies one message of a reply datagram for the request with sequence `seq`.
pub(crate) fn step(msg: NetlinkMessage<RouteNetlinkMessage>, seq: u32) -> Step {
    if msg.header.sequence_number != seq {
        return Step::Skip;
    }
    match msg.payload {
        NetlinkPayload::InnerMessage(m) => Step::Reply(m),
        NetlinkPayload::Done(d) if d.code < 0 => Step::End(Err(-d.code)),
        NetlinkPayload::Done(_) => Step::End(Ok(())),
        NetlinkPayload::Error(e) => match e.code {
            Some(code) => Step::End(Err(-code.get())),
            None => Step::End(Ok(())),
        },
        _ => Step::Skip,
    }
}

/// The messages of one datagram with their header flags; a malformed message (which the
/// kernel never sends) ends the datagram, a message our parser does not know is skipped.
pub(crate) fn messages(buf: &[u8]) -> Vec<(u16, Option<NetlinkMessage<RouteNetlinkMessage>>)> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < buf.len() {
        let Ok(hdr) = NetlinkBuffer::new_checked(&buf[off..]) else {
            break;
        };
        let len = hdr.length() as usize;
        let flags = hdr.flags();
        let end = off + len;
        out.push((flags, NetlinkMessage::deserialize(&buf[off..end]).ok()));
        // Messages are 4-byte aligned within a datagram.
        off = (end + 3) & !3;
    }
    out
}

/// A NETLINK_ROUTE socket bound in the network namespace of the creating thread.
pub(crate) struct NlSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl NlSocket {
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        // A receive timeout so that a kernel that never answers cannot hang discovery.
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: `tv` outlives the call and its size is passed correctly; the fd is the
        // socket's own, open for the whole call.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NlSocket {
            sock,
            seq: 0,
            buf: Vec::with_capacity(32 * 1024),
        })
    }

    /// Receives one datagram from the kernel into `self.buf`, whole: peeks its size
    /// first. Datagrams from any other sender are dropped.
    fn recv(&mut self) -> io::Result<()> {
        loop {
            self.buf.clear();
            let (want, _) = self
                .sock
                .recv_from(&mut self.buf, libc::MSG_PEEK | libc::MSG_TRUNC)?;
            self.buf.clear();
            self.buf.reserve(want);
            let (n, from) = self.sock.recv_from(&mut self.buf, 0)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "netlink socket closed",
                ));
            }
            if from.port_number() == 0 {
                return Ok(());
            }
        }
    }

    /// Sends a request and feeds every reply to `on_reply` until the exchange ends:
    /// NLMSG_DONE for dumps, the first reply (or error/ACK) otherwise.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        mut on_reply: impl FnMut(RouteNetlinkMessage),
    ) -> Result<(), NlError> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags | NLM_F_REQUEST;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let mut out = vec![0u8; req.buffer_len()];
        req.serialize(&mut out);
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(&out, &kernel, 0) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let mut interrupted = false;
        loop {
            if let Err(e) = self.recv() {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            for (hdr_flags, msg) in messages(&self.buf) {
                let Some(msg) = msg else { continue };
                if msg.header.sequence_number == seq && hdr_flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match step(msg, seq) {
                    Step::Skip => {}
                    Step::Reply(m) => {
                        on_reply(m);
                        if !dump {
                            return Ok(());
                        }
                    }
                    Step::End(Err(code)) => return Err(io::Error::from_raw_os_error(code).into()),
                    Step::End(Ok(())) if interrupted => return Err(NlError::Interrupted),
                    Step::End(Ok(())) => return Ok(()),
                }
            }
        }
    }

    /// Dumps every link of the socket's namespace (RTM_GETLINK, NLM_F_DUMP).
    pub fn dump_links(&mut self) -> Result<Vec<RawLink>, NlError> {
        let mut req = LinkMessage::default();
        // Statistics are large and unused here.
        req.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let mut links = Vec::new();
        self.exchange(RouteNetlinkMessage::GetLink(req), NLM_F_DUMP, |m| {
            if let RouteNetlinkMessage::NewLink(l) = m {
                links.push(RawLink::from_message(&l));
            }
        })?;
        Ok(links)
    }

    /// rx_packets of every link of the socket's namespace (RTM_GETSTATS, 64-bit link
    /// statistics only: a fraction of a link dump's size): (ifindex, rx_packets).
    pub fn dump_rx_packets(&mut self) -> Result<Vec<(u32, u64)>, NlError> {
        let mut out = Vec::new();
        let mut req = StatsMessage::default();
        req.header.filter_mask = StatsFilterMask::Link64;
        self.exchange(RouteNetlinkMessage::GetStats(req), NLM_F_DUMP, |m| {
            if let RouteNetlinkMessage::NewStats(s) = m {
                for a in &s.attributes {
                    if let StatsAttribute::Link64(st) = a {
                        out.push((s.header.ifindex, st.rx_packets));
                    }
                }
            }
        })?;
        Ok(out)
    }

    /// The nsid that the socket's namespace uses for the namespace open at `ns_fd`
    /// (RTM_GETNSID with NETNSA_FD); None when it has not assigned one.
    pub fn nsid_of(&mut self, ns_fd: BorrowedFd<'_>) -> Result<Option<i32>, NlError> {
        let mut req = NsidMessage::default();
        // A valid descriptor is never negative, so the cast is lossless.
        req.attributes
            .push(NsidAttribute::Fd(ns_fd.as_raw_fd() as u32));
        let mut nsid = None;
        self.exchange(RouteNetlinkMessage::GetNsId(req), 0, |m| {
            if let RouteNetlinkMessage::NewNsId(n) = m {
                nsid = n.attributes.iter().find_map(|a| match a {
                    NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                    _ => None,
                });
            }
        })?;
        Ok(nsid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage, NLM_F_MULTIPART};
    use netlink_packet_route::link::InfoKind;

    /// An RTM_NEWLINK reply as the kernel would send it.
    fn reply(seq: u32, index: u32, attrs: Vec<LinkAttribute>) -> Vec<u8> {
        let mut l = LinkMessage::default();
        l.header.index = index;
        l.header.link_layer_type = LinkLayerType::Ether;
        l.attributes = attrs;
        encode(
            seq,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)),
        )
    }

    fn encode(seq: u32, payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut h = NetlinkHeader::default();
        h.sequence_number = seq;
        h.flags = NLM_F_MULTIPART;
        let mut m = NetlinkMessage::new(h, payload);
        m.finalize();
        let mut b = vec![0u8; m.buffer_len()];
        m.serialize(&mut b);
        b
    }

    #[test]
    fn veth_with_netnsid() {
        let buf = reply(
            7,
            12,
            vec![
                LinkAttribute::IfName("eth0".into()),
                LinkAttribute::Mtu(1500),
                LinkAttribute::Link(9),
                LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
                LinkAttribute::LinkNetNsId(3),
            ],
        );
        let msgs = messages(&buf);
        assert_eq!(msgs.len(), 1);
        let (_, Some(msg)) = msgs.into_iter().next().unwrap() else {
            panic!("not decoded")
        };
        let Step::Reply(RouteNetlinkMessage::NewLink(l)) = step(msg, 7) else {
            panic!("not a reply")
        };
        assert_eq!(
            RawLink::from_message(&l),
            RawLink {
                ifindex: 12,
                name: "eth0".into(),
                kind: Some("veth".into()),
                loopback: false,
                link: Some(9),
                link_netnsid: Some(3),
            }
        );
    }

    #[test]
    fn loopback_several_messages_and_done() {
        let mut lo = LinkMessage::default();
        lo.header.index = 1;
        lo.header.link_layer_type = LinkLayerType::Loopback;
        lo.header.flags = LinkFlags::Loopback;
        lo.attributes = vec![LinkAttribute::IfName("lo".into())];
        let mut buf = encode(
            1,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lo)),
        );
        // Odd-length name: exercises padding between messages.
        buf.extend(reply(1, 2, vec![LinkAttribute::IfName("br-abc".into())]));
        buf.extend(encode(1, NetlinkPayload::Done(DoneMessage::default())));
        let steps: Vec<Step> = messages(&buf)
            .into_iter()
            .map(|(_, m)| step(m.expect("decoded"), 1))
            .collect();
        assert_eq!(steps.len(), 3);
        let Step::Reply(RouteNetlinkMessage::NewLink(l)) = &steps[0] else {
            panic!()
        };
        let lo = RawLink::from_message(l);
        assert!(lo.loopback);
        assert_eq!((lo.name.as_str(), lo.kind), ("lo", None));
        let Step::Reply(RouteNetlinkMessage::NewLink(l)) = &steps[1] else {
            panic!()
        };
        let br = RawLink::from_message(l);
        assert_eq!((br.ifindex, br.name.as_str(), br.link), (2, "br-abc", None));
        assert!(!br.loopback);
        assert_eq!(steps[2], Step::End(Ok(())));
    }

    #[test]
    fn other_sequences_are_skipped_and_errors_end_the_exchange() {
        let buf = reply(5, 3, vec![LinkAttribute::IfName("veth0".into())]);
        let (_, m) = messages(&buf).into_iter().next().unwrap();
        assert_eq!(step(m.unwrap(), 6), Step::Skip);
        let mut err = ErrorMessage::default();
        err.code = std::num::NonZeroI32::new(-libc::ENODEV);
        let buf = encode(6, NetlinkPayload::Error(err));
        let (_, m) = messages(&buf).into_iter().next().unwrap();
        assert_eq!(step(m.unwrap(), 6), Step::End(Err(libc::ENODEV)));
        // An ACK (error code 0) ends a non-dump exchange successfully.
        let buf = encode(6, NetlinkPayload::Error(ErrorMessage::default()));
        let (_, m) = messages(&buf).into_iter().next().unwrap();
        assert_eq!(step(m.unwrap(), 6), Step::End(Ok(())));
    }

    #[test]
    fn truncated_input_is_not_trusted() {
        let buf = reply(1, 3, vec![LinkAttribute::IfName("veth0".into())]);
        // A header claiming more bytes than the datagram holds ends it.
        assert!(messages(&buf[..buf.len() - 4]).is_empty());
        assert!(messages(&buf[..10]).is_empty());
    }
}
