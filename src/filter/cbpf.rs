//! Classic BPF from libpcap: `pcap_compile` on a dead handle of the layer's link type.

use pcap::{Capture, Linktype};

use super::Layer;

/// One classic BPF instruction (struct bpf_insn of <pcap/bpf.h>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Compiles `expr` (optimised, as tcpdump does) into classic BPF; the error is libpcap's
/// own message.
pub fn compile(expr: &str, layer: Layer) -> Result<Vec<CInsn>, String> {
    compiled(expr, layer, |p| {
        p.get_instructions()
            .iter()
            // pcap exposes the fields only through Display: "code jt jf k".
            .map(|i| parse(&i.to_string()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "libpcap returned an instruction we cannot read".to_string())
    })
}

/// Runs `f` on libpcap's compiled program for `expr`.
pub(super) fn compiled<T>(
    expr: &str,
    layer: Layer,
    f: impl FnOnce(&pcap::BpfProgram) -> Result<T, String>,
) -> Result<T, String> {
    let dead = Capture::dead(Linktype(layer.dlt())).map_err(|e| e.to_string())?;
    let prog = dead.compile(expr, true).map_err(|e| match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    })?;
    f(&prog)
}

fn parse(s: &str) -> Option<CInsn> {
    let mut it = s.split(' ');
    let i = CInsn {
        code: it.next()?.parse().ok()?,
        jt: it.next()?.parse().ok()?,
        jf: it.next()?.parse().ok()?,
        k: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(i)
}

/// A program that rejects every packet (`ret #0`).
pub fn reject_all() -> Vec<CInsn> {
    vec![CInsn {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: 0,
    }]
}
