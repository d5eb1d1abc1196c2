//! The translation against libpcap's own interpreter (`pcap_offline_filter`): the same
//! expressions, the same packets, the same verdicts, at both layers.

use super::cbpf::{self, CInsn};
use super::ebpf::{exit, insn, mov32_imm, Insn, JMP};
use super::{interp, splice, translate, Filter, FilterError, Layer, MAGIC};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const BCAST: [u8; 6] = [0xff; 6];
const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];
const IP_C: [u8; 4] = [192, 168, 7, 9];

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = dst.to_vec();
    p.extend(src);
    p.extend(ethertype.to_be_bytes());
    p.extend(payload);
    p
}

fn vlan(tag: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = tag.to_be_bytes().to_vec();
    p.extend(ethertype.to_be_bytes());
    p.extend(payload);
    p
}

/// An IPv4 header (`opts` extra words of options, `frag` the fragment field) + payload.
fn ipv4(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    opts: u8,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let hl = 20 + 4 * usize::from(opts);
    let total = (hl + payload.len()) as u16;
    let mut p = vec![0x45 + opts, 0];
    p.extend(total.to_be_bytes());
    p.extend([0x12, 0x34]);
    p.extend(frag.to_be_bytes());
    p.extend([ttl, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    p.extend(std::iter::repeat_n(1u8, 4 * usize::from(opts)));
    p.extend(payload);
    p
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((payload.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend(payload);
    p
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut p = sport.to_be_bytes().to_vec();
    p.extend(dport.to_be_bytes());
    p.extend(((8 + data.len()) as u16).to_be_bytes());
    p.extend([0, 0]);
    p.extend(data);
    p
}

fn tcp(sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut p = sport.to_be_bytes().to_vec();
    p.extend(dport.to_be_bytes());
    p.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend(data);
    p
}

fn icmp(kind: u8) -> Vec<u8> {
    vec![kind, 0, 0, 0, 0, 1, 0, 1]
}

fn arp() -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4, 0, 1];
    p.extend(MAC_A);
    p.extend(IP_A);
    p.extend([0; 6]);
    p.extend(IP_B);
    p
}

/// IP packets (without a link header) of every kind the expressions ask about.
fn ip_packets() -> Vec<Vec<u8>> {
    vec![
        ipv4(17, IP_A, IP_B, 64, 0, 0, &udp(40000, 9000, b"flow-a")),
        ipv4(17, IP_A, IP_B, 64, 0, 0, &udp(40001, 9001, b"flow-b")),
        ipv4(17, IP_B, IP_A, 3, 0, 0, &udp(53, 33000, &[7; 120])),
        ipv4(6, IP_A, IP_B, 64, 0, 0, &tcp(41000, 8080, 0x02, b"")),
        ipv4(6, IP_B, IP_A, 64, 0, 0, &tcp(8080, 41000, 0x12, b"")),
        ipv4(6, IP_A, IP_C, 64, 0, 0, &tcp(41001, 22, 0x18, b"ssh")),
        ipv4(
            6,
            IP_A,
            IP_B,
            64,
            0,
            0,
            &tcp(41002, 80, 0x18, b"GET / HTTP/1.1\r\n"),
        ),
        ipv4(6, IP_A, IP_B, 64, 2, 0, &tcp(41003, 8080, 0x10, b"opts")),
        ipv4(17, IP_A, IP_B, 64, 0, 0x2001, &udp(1, 9000, b"frag")),
        ipv4(1, IP_C, IP_A, 64, 0, 0, &icmp(8)),
        ipv4(1, IP_A, IP_C, 64, 0, 0, &icmp(0)),
        ipv6(17, &udp(5353, 9000, b"six")),
        ipv6(6, &tcp(41004, 8080, 0x02, b"")),
        ipv6(58, &icmp(128)),
    ]
}

/// Ethernet frames: the IP packets, ARP, VLAN-tagged traffic, and truncations of them.
fn frames() -> Vec<Vec<u8>> {
    let mut f: Vec<Vec<u8>> = ip_packets()
        .into_iter()
        .map(|p| {
            let t = if p[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
            eth(MAC_B, MAC_A, t, &p)
        })
        .collect();
    f.push(eth(BCAST, MAC_A, 0x0806, &arp()));
    let inner = ipv4(17, IP_A, IP_B, 64, 0, 0, &udp(40000, 9000, b"tagged"));
    f.push(eth(MAC_B, MAC_A, 0x8100, &vlan(100, 0x0800, &inner)));
    f.push(eth(MAC_B, MAC_A, 0x8100, &vlan(200, 0x0806, &arp())));
    with_truncations(f)
}

fn with_truncations(full: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = full.clone();
    for p in &full {
        for n in [
            0, 1, 9, 13, 14, 15, 20, 23, 26, 30, 33, 34, 36, 38, 40, 42, 46, 50,
        ] {
            if n < p.len() {
                out.push(p[..n].to_vec());
            }
        }
        out.push(p[..p.len() - 1].to_vec());
    }
    out
}

const EXPRS: &[&str] = &[
    "udp",
    "tcp",
    "icmp",
    "ip",
    "ip6",
    "arp",
    "udp dst port 9000",
    "udp port 9001",
    "tcp port 8080",
    "not port 22",
    "port 53",
    "host 10.0.0.1",
    "src host 10.0.0.2",
    "dst host 192.168.7.9",
    "net 10.0.0.0/24",
    "not net 192.168.0.0/16",
    "portrange 9000-9001",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] == tcp-syn|tcp-ack",
    "tcp[13] = 0x18",
    "icmp[icmptype] = icmp-echo",
    "ip[8] < 10",
    "ip[6:2] & 0x1fff != 0",
    "ip[2:2] * 3 > 150",
    "ip[2:2] / 5 > 10",
    "ip[2:2] % 7 = 3",
    "ip[2:2] - 30 > 20",
    "ip[16] ^ 10 = 0",
    "(ip[0] & 0xf) << 2 > 20",
    "ip[0] >> 4 = 4",
    "ip[2:2] >> (ip[0] & 3) > 40",
    "ip[2:2] << (ip[9] & 7) > 500",
    "udp[8:4] = 0x666c6f77",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "udp[4:2] / (ip[8] & 3) > 1",
    "len > 100",
    "greater 60",
    "less 50",
    "ip proto 17",
    "udp and (port 9000 or port 53)",
    "ip6 and tcp",
    "ip6 and udp port 9000",
    "icmp6",
    "vlan",
    "vlan 100",
    "vlan and udp port 9000",
    "vlan and arp",
    "ether host 02:00:00:00:00:01",
    "ether broadcast",
    "ether proto 0x0806",
    "ether[12:2] = 0x800 and ip[9] = 6",
];

/// libpcap's verdict and ours, for every expression and packet of a layer.
fn compare(layer: Layer, packets: &[Vec<u8>]) -> usize {
    let mut checked = 0;
    for expr in EXPRS {
        let Ok(prog) = cbpf::compile(expr, layer) else {
            assert_eq!(
                layer,
                Layer::Network,
                "libpcap refused {expr} at the link layer"
            );
            continue;
        };
        let ebpf = translate(&prog).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let (mut yes, mut no) = (0, 0);
        for p in packets {
            let want = cbpf::compiled(expr, layer, |bp| Ok(bp.filter(p))).unwrap();
            let got = interp::run(&ebpf, p);
            assert!(got <= 1, "{expr}: r0 = {got}");
            assert_eq!(got == 1, want, "{expr} on {} bytes: {p:02x?}", p.len());
            if want {
                yes += 1
            } else {
                no += 1
            }
            checked += 1;
        }
        // Every expression tells some packets from others: no test that cannot fail.
        if layer == Layer::Link {
            assert!(yes > 0 && no > 0, "{expr}: {yes} match, {no} do not");
        }
    }
    checked
}

#[test]
fn link_layer_verdicts_match_libpcap() {
    let n = compare(Layer::Link, &frames());
    assert!(n > 2000, "{n}");
}

#[test]
fn network_layer_verdicts_match_libpcap() {
    let n = compare(Layer::Network, &with_truncations(ip_packets()));
    assert!(n > 1000, "{n}");
}

#[test]
fn flows_are_told_apart() {
    let f = Filter::compile("udp dst port 9000").unwrap();
    let frames: Vec<Vec<u8>> = ip_packets()
        .into_iter()
        .map(|p| eth(MAC_B, MAC_A, 0x0800, &p))
        .collect();
    assert_eq!(interp::run(f.body(Layer::Link), &frames[0]), 1);
    assert_eq!(interp::run(f.body(Layer::Link), &frames[1]), 0);
    assert_eq!(interp::run(f.body(Layer::Network), &ip_packets()[0]), 1);
    assert_eq!(interp::run(f.body(Layer::Network), &ip_packets()[1]), 0);
}

#[test]
fn the_placeholder_body_picks_the_layer() {
    let f = Filter::compile("udp dst port 9000").unwrap();
    let body = f.placeholder_body().unwrap();
    let ip = &ip_packets()[0];
    let frame = eth(MAC_B, MAC_A, 0x0800, ip);
    assert_eq!(interp::run_layer(&body, &frame, 1), 1);
    assert_eq!(interp::run_layer(&body, ip, 0), 1);
    // Each layer's bytes read as the other's do not match.
    assert_eq!(interp::run_layer(&body, ip, 1), 0);
    assert_eq!(interp::run_layer(&body, &frame, 0), 0);
}

#[test]
fn link_only_expressions_reject_everything_at_the_network_layer() {
    let f = Filter::compile("arp").unwrap();
    for p in ip_packets() {
        assert_eq!(interp::run(f.body(Layer::Network), &p), 0);
    }
    assert_eq!(
        interp::run(f.body(Layer::Link), &eth(BCAST, MAC_A, 0x0806, &arp())),
        1
    );
}

#[test]
fn bad_expressions_carry_libpcaps_message() {
    for expr in ["tcp port", "frobnicate", "port 99999"] {
        let e = Filter::compile(expr).unwrap_err();
        let FilterError::Compile { msg, .. } = &e else {
            panic!("{e}");
        };
        assert!(!msg.is_empty() && !msg.contains('\n'), "{msg}");
        assert!(e.to_string().contains(expr), "{e}");
    }
}

/// A classic instruction without jump offsets.
fn c(code: u16, k: u32) -> CInsn {
    CInsn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

#[test]
fn classic_programs_the_kernel_refuses_are_refused() {
    let ret = c(0x06, 1);
    // Division by a constant 0, scratch word 16, a jump past the end, no final ret.
    assert!(translate(&[c(0x34, 0), ret]).is_err());
    assert!(translate(&[c(0x60, 16), ret]).is_err());
    assert!(translate(&[c(0x05, 5), ret]).is_err());
    assert!(translate(&[c(0x00, 0)]).is_err());
    assert!(translate(&[]).is_err());
    assert!(translate(&[ret]).is_ok());
}

fn ld_imm64(magic: u64) -> [Insn; 2] {
    [
        insn(0x18, 1, 0, 0, magic as u32 as i32),
        insn(0, 0, 0, 0, (magic >> 32) as u32 as i32),
    ]
}

#[test]
fn splice_replaces_the_last_function_only() {
    let call = insn(0x85, 0, 1, 0, 1); // call the function after the next instruction
    let mut prog = vec![mov32_imm(1, 0), call, exit()];
    prog.extend(ld_imm64(MAGIC));
    prog.push(mov32_imm(0, 0));
    prog.push(exit());
    let body: Vec<Insn> = (0..6).map(|i| mov32_imm(0, i)).chain([exit()]).collect();
    let out = splice(&prog, MAGIC, &body).unwrap().unwrap();
    assert_eq!(&out[..3], &prog[..3]);
    assert_eq!(&out[3..], &body[..]);
    // A shorter body is padded in front with no-op jumps.
    let short = [mov32_imm(0, 1), exit()];
    let out = splice(&prog, MAGIC, &short).unwrap().unwrap();
    assert_eq!(out.len(), prog.len());
    assert_eq!(out[3], insn(JMP, 0, 0, 0, 0));
    assert_eq!(interp::run(&out[3..], &[]), 1);
    // Another placeholder's marker: nothing to do.
    assert_eq!(splice(&prog, 7, &body).unwrap(), None);
    // A function after the placeholder: refused, never corrupted.
    let mut late = vec![
        mov32_imm(1, 0),
        insn(0x85, 0, 1, 0, 1),
        insn(0x85, 0, 1, 0, 5),
        exit(),
    ];
    late.extend(ld_imm64(MAGIC));
    late.push(exit());
    late.push(mov32_imm(0, 0));
    late.push(exit());
    assert_eq!(
        splice(&late, MAGIC, &body),
        Err(super::SpliceError::NotLast)
    );
}

#[test]
fn encoding_round_trips() {
    let i = insn(0x61, 8, 10, -72, 0);
    assert_eq!(i.to_bytes(), [0x61, 0xa8, 0xb8, 0xff, 0, 0, 0, 0]);
    assert_eq!(Insn::from_bytes(i.to_bytes()), i);
}
