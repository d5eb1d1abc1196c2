//! Minimal rtnetlink client: RTM_GETLINK dumps and RTM_GETNSID queries over a raw
//! NETLINK_ROUTE socket. The socket belongs to the network namespace of the thread that
//! created it, so callers create it after `setns` in a helper thread.
//!
//! Parsing is split from I/O (`parse_messages`, `parse_link`, `parse_nsid`) so that it can
//! be unit-tested on hand-built buffers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

// Constants from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>,
// <linux/net_namespace.h>, <linux/if_arp.h>. Defined here rather than taken from `libc`
// so that the module does not depend on which of them a given libc release exports.
pub(crate) const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
pub(crate) const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
pub(crate) const IFINFOMSG_LEN: usize = 16;
/// NLMSG_ALIGN(sizeof(struct rtgenmsg)).
pub(crate) const RTGENMSG_LEN: usize = 4;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_LINK: u16 = 5;
pub(crate) const IFLA_LINKINFO: u16 = 18;
const IFLA_EXT_MASK: u16 = 29;
pub(crate) const IFLA_LINK_NETNSID: u16 = 37;
pub(crate) const IFLA_INFO_KIND: u16 = 1;
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
pub(crate) const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;
pub(crate) const ARPHRD_LOOPBACK: u16 = 772;
pub(crate) const IFF_LOOPBACK: u32 = 0x8;
const NLA_TYPE_MASK: u16 = !((1 << 15) | (1 << 14)); // strip NLA_F_NESTED, NLA_F_NET_BYTEORDER

/// A link as the kernel reported it, before nsids are mapped to namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLink {
    pub ifindex: u32,
    pub name: String,
    pub kind: Option<String>,
    pub ifi_type: u16,
    pub flags: u32,
    /// IFLA_LINK; omitted when it equals `ifindex` (on newer kernels only without a
    /// link-netnsid).
    pub link: Option<u32>,
    /// IFLA_LINK_NETNSID; only present when the link's peer/lower device is in another netns.
    pub link_netnsid: Option<i32>,
}

impl RawLink {
    pub fn is_loopback(&self) -> bool {
        self.ifi_type == ARPHRD_LOOPBACK || self.flags & IFF_LOOPBACK != 0
    }
}

/// One netlink message header plus its payload (the bytes after the 16-byte header).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Splits a datagram into netlink messages. Stops at the first malformed header, which
/// the kernel never produces; a truncated tail is ignored rather than trusted.
pub(crate) fn parse_messages(buf: &[u8]) -> impl Iterator<Item = Msg<'_>> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        let rest = buf.get(off..)?;
        let len = u32_at(rest, 0)? as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        let msg = Msg {
            ty: u16_at(rest, 4)?,
            flags: u16_at(rest, 6)?,
            seq: u32_at(rest, 8)?,
            payload: rest.get(NLMSG_HDRLEN..len)?,
        };
        off += align4(len);
        Some(msg)
    })
}

/// Iterates over route attributes as `(type without flag bits, payload)`.
pub(crate) fn parse_attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        let rest = buf.get(off..)?;
        let len = u16_at(rest, 0)? as usize;
        if len < 4 || len > rest.len() {
            return None;
        }
        let ty = u16_at(rest, 2)? & NLA_TYPE_MASK;
        off += align4(len);
        Some((ty, rest.get(4..len)?))
    })
}

/// A NUL-terminated attribute string (the kernel includes the NUL; tolerate its absence).
fn attr_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses the payload of an RTM_NEWLINK message (struct ifinfomsg + attributes).
pub(crate) fn parse_link(payload: &[u8]) -> Option<RawLink> {
    // struct ifinfomsg { u8 family; u8 pad; u16 type; i32 index; u32 flags; u32 change; }
    let ifi_type = u16_at(payload, 2)?;
    let ifindex = u32::try_from(i32_at(payload, 4)?).ok()?;
    let flags = u32_at(payload, 8)?;
    let mut link = RawLink {
        ifindex,
        name: String::new(),
        kind: None,
        ifi_type,
        flags,
        link: None,
        link_netnsid: None,
    };
    for (ty, data) in parse_attrs(payload.get(IFINFOMSG_LEN..)?) {
        match ty {
            IFLA_IFNAME => link.name = attr_str(data),
            IFLA_LINK => link.link = u32_at(data, 0),
            IFLA_LINK_NETNSID => link.link_netnsid = i32_at(data, 0),
            IFLA_LINKINFO => {
                link.kind = parse_attrs(data)
                    .find(|(t, _)| *t == IFLA_INFO_KIND)
                    .map(|(_, d)| attr_str(d))
                    .filter(|k| !k.is_empty());
            }
            _ => {}
        }
    }
    Some(link)
}

/// Parses the payload of an RTM_NEWNSID reply: the nsid, or None when not assigned (-1).
pub(crate) fn parse_nsid(payload: &[u8]) -> Option<i32> {
    parse_attrs(payload.get(RTGENMSG_LEN..)?)
        .find(|(t, _)| *t == NETNSA_NSID)
        .and_then(|(_, d)| i32_at(d, 0))
        .filter(|&n| n >= 0)
}

/// Appends one attribute (header, payload, padding) to a request buffer.
fn push_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    // Attribute payloads built here are a few bytes; the cast cannot truncate.
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align4(buf.len()), 0);
}

/// Builds a complete request message; `nlmsg_pid` 0 addresses the kernel.
pub(crate) fn build_request(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut buf = Vec::with_capacity(align4(len));
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(body);
    buf.resize(align4(buf.len()), 0);
    buf
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

/// A NETLINK_ROUTE socket bound in the network namespace of the creating thread.
pub(crate) struct NlSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl NlSocket {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2) call with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // A receive timeout so that a kernel that never answers cannot hang discovery.
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: `tv` outlives the call and its size is passed correctly.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl and its exact size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::addr_of!(addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NlSocket {
            fd,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    fn send(&mut self, ty: u16, flags: u16, body: &[u8]) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let req = build_request(ty, flags, self.seq, body);
        // SAFETY: sockaddr_nl is plain old data; all-zero (nl_pid 0) addresses the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `req` and `kernel` are valid for the lengths passed.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    req.as_ptr().cast(),
                    req.len(),
                    0,
                    std::ptr::addr_of!(kernel).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(self.seq);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Receives one datagram into `self.buf`, growing it first if the datagram is larger.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            // Peek with MSG_TRUNC to learn the real datagram size so nothing is cut off.
            // SAFETY: `self.buf` is valid for writes of its length.
            let want = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_PEEK | libc::MSG_TRUNC,
                )
            };
            if want < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            let want = want as usize; // non-negative, checked above
            if want > self.buf.len() {
                self.buf.resize(want, 0);
            }
            // SAFETY: `self.buf` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "netlink socket closed",
                ));
            }
            return Ok(n as usize);
        }
    }

    /// Sends a request and feeds every reply message to `on_msg` until the exchange ends:
    /// NLMSG_DONE for dumps, the first reply (or error) otherwise.
    fn exchange(
        &mut self,
        ty: u16,
        flags: u16,
        body: &[u8],
        mut on_msg: impl FnMut(&Msg<'_>),
    ) -> Result<(), NlError> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let seq = self.send(ty, flags, body)?;
        let mut interrupted = false;
        loop {
            let n = self.recv()?;
            for msg in parse_messages(&self.buf[..n]) {
                // Replies to an earlier request (e.g. one that timed out) are not ours.
                if msg.seq != seq {
                    continue;
                }
                if msg.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.ty {
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    NLMSG_ERROR => {
                        let code = i32_at(msg.payload, 0).unwrap_or(-libc::EPROTO);
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(-code).into());
                        }
                        // An ACK ends a non-dump exchange.
                        return Ok(());
                    }
                    NLMSG_DONE => {
                        // Since 4.x the DONE payload carries the dump's error code.
                        let code = i32_at(msg.payload, 0).unwrap_or(0);
                        if code < 0 {
                            return Err(io::Error::from_raw_os_error(-code).into());
                        }
                        return if interrupted {
                            Err(NlError::Interrupted)
                        } else {
                            Ok(())
                        };
                    }
                    _ => {
                        on_msg(&msg);
                        if !dump {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Dumps every link of the socket's namespace (RTM_GETLINK, NLM_F_DUMP).
    pub fn dump_links(&mut self) -> Result<Vec<RawLink>, NlError> {
        let mut body = vec![0u8; IFINFOMSG_LEN]; // ifi_family AF_UNSPEC, everything else 0
                                                 // Statistics are large and unused here.
        push_attr(
            &mut body,
            IFLA_EXT_MASK,
            &RTEXT_FILTER_SKIP_STATS.to_ne_bytes(),
        );
        let mut links = Vec::new();
        self.exchange(RTM_GETLINK, NLM_F_DUMP, &body, |msg| {
            if msg.ty == RTM_NEWLINK {
                if let Some(l) = parse_link(msg.payload) {
                    links.push(l);
                }
            }
        })?;
        Ok(links)
    }

    /// The nsid that the socket's namespace uses for the namespace open at `ns_fd`
    /// (RTM_GETNSID with NETNSA_FD); None when it has not assigned one.
    pub fn nsid_of(&mut self, ns_fd: BorrowedFd<'_>) -> Result<Option<i32>, NlError> {
        let mut body = vec![0u8; RTGENMSG_LEN]; // rtgen_family AF_UNSPEC
                                                // A valid descriptor is never negative, so the cast is lossless.
        push_attr(
            &mut body,
            NETNSA_FD,
            &(ns_fd.as_raw_fd() as u32).to_ne_bytes(),
        );
        let mut nsid = None;
        self.exchange(RTM_GETNSID, 0, &body, |msg| {
            if msg.ty == RTM_NEWNSID {
                nsid = parse_nsid(msg.payload);
            }
        })?;
        Ok(nsid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an RTM_NEWLINK message the way the kernel lays it out.
    fn link_msg(
        seq: u32,
        ifindex: i32,
        ifi_type: u16,
        flags: u32,
        attrs: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        body.push(0u8); // family
        body.push(0u8); // pad
        body.extend_from_slice(&ifi_type.to_ne_bytes());
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&flags.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes()); // change
        for (ty, data) in attrs {
            push_attr(&mut body, *ty, data);
        }
        let mut msg = build_request(RTM_NEWLINK, 0x2, seq, &body);
        // build_request sets NLM_F_REQUEST; a kernel reply has NLM_F_MULTI only.
        msg[6..8].copy_from_slice(&0x2u16.to_ne_bytes());
        msg
    }

    fn nested(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (t, d) in attrs {
            push_attr(&mut v, *t, d);
        }
        v
    }

    const IFLA_MTU_FOR_TEST: u16 = 4;

    #[test]
    fn parses_veth_with_netnsid() {
        let info = nested(&[(IFLA_INFO_KIND, b"veth\0"), (2 /* INFO_DATA */, &[1, 2, 3])]);
        let buf = link_msg(
            7,
            12,
            1, // ARPHRD_ETHER
            0x1003,
            &[
                (IFLA_IFNAME, b"eth0\0".to_vec()),
                (IFLA_MTU_FOR_TEST, 1500u32.to_ne_bytes().to_vec()),
                (IFLA_LINK, 9u32.to_ne_bytes().to_vec()),
                // The kernel sets NLA_F_NESTED on some nests; it must be ignored.
                (IFLA_LINKINFO | 0x8000, info),
                (IFLA_LINK_NETNSID, 3i32.to_ne_bytes().to_vec()),
            ],
        );
        let msgs: Vec<_> = parse_messages(&buf).collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].ty, RTM_NEWLINK);
        assert_eq!(msgs[0].seq, 7);
        let link = parse_link(msgs[0].payload).expect("parse");
        assert_eq!(
            link,
            RawLink {
                ifindex: 12,
                name: "eth0".into(),
                kind: Some("veth".into()),
                ifi_type: 1,
                flags: 0x1003,
                link: Some(9),
                link_netnsid: Some(3),
            }
        );
        assert!(!link.is_loopback());
    }

    #[test]
    fn parses_loopback_and_multiple_messages() {
        let mut buf = link_msg(
            1,
            1,
            ARPHRD_LOOPBACK,
            IFF_LOOPBACK,
            &[(IFLA_IFNAME, b"lo\0".to_vec())],
        );
        // Odd-length name: exercises attribute padding.
        buf.extend(link_msg(
            1,
            2,
            1,
            0,
            &[
                (IFLA_IFNAME, b"br-abc\0".to_vec()),
                (IFLA_MTU_FOR_TEST, vec![0; 4]),
            ],
        ));
        buf.extend(build_request(NLMSG_DONE, 0, 1, &0i32.to_ne_bytes()));
        let msgs: Vec<_> = parse_messages(&buf).collect();
        assert_eq!(msgs.len(), 3);
        let lo = parse_link(msgs[0].payload).expect("lo");
        assert!(lo.is_loopback());
        assert_eq!(lo.name, "lo");
        assert_eq!(lo.kind, None);
        let br = parse_link(msgs[1].payload).expect("br");
        assert_eq!((br.ifindex, br.name.as_str(), br.link), (2, "br-abc", None));
        assert_eq!(msgs[2].ty, NLMSG_DONE);
    }

    #[test]
    fn tolerates_truncated_and_malformed_input() {
        let buf = link_msg(1, 3, 1, 0, &[(IFLA_IFNAME, b"veth0\0".to_vec())]);
        // A header claiming more bytes than the buffer holds stops the iteration.
        assert_eq!(parse_messages(&buf[..buf.len() - 4]).count(), 0);
        assert_eq!(parse_messages(&buf[..10]).count(), 0);
        // An attribute with a bogus length ends attribute parsing but keeps the header.
        let mut payload = buf[NLMSG_HDRLEN..].to_vec();
        payload[IFINFOMSG_LEN..IFINFOMSG_LEN + 2].copy_from_slice(&200u16.to_ne_bytes());
        let link = parse_link(&payload).expect("header still valid");
        assert_eq!((link.ifindex, link.name.as_str()), (3, ""));
        // Too short for an ifinfomsg.
        assert!(parse_link(&payload[..6]).is_none());
        // Negative ifindex is rejected.
        let neg = link_msg(1, -1, 1, 0, &[]);
        assert!(parse_link(&neg[NLMSG_HDRLEN..]).is_none());
    }

    #[test]
    fn parses_nsid_reply() {
        let mut body = vec![0u8; RTGENMSG_LEN];
        push_attr(&mut body, NETNSA_NSID, &5i32.to_ne_bytes());
        assert_eq!(parse_nsid(&body), Some(5));
        let mut unassigned = vec![0u8; RTGENMSG_LEN];
        push_attr(&mut unassigned, NETNSA_NSID, &(-1i32).to_ne_bytes());
        assert_eq!(parse_nsid(&unassigned), None);
        assert_eq!(parse_nsid(&[0, 0]), None);
    }

    #[test]
    fn request_layout() {
        let mut body = vec![0u8; RTGENMSG_LEN];
        push_attr(&mut body, NETNSA_FD, &7u32.to_ne_bytes());
        let req = build_request(RTM_GETNSID, 0, 42, &body);
        assert_eq!(req.len(), 16 + 4 + 8);
        assert_eq!(u32_at(&req, 0), Some(28));
        assert_eq!(u16_at(&req, 4), Some(RTM_GETNSID));
        assert_eq!(u16_at(&req, 6), Some(NLM_F_REQUEST));
        assert_eq!(u32_at(&req, 8), Some(42));
        assert_eq!(u16_at(&req, 20), Some(8)); // attr len
        assert_eq!(u16_at(&req, 22), Some(NETNSA_FD));
        assert_eq!(u32_at(&req, 24), Some(7));
    }
}
