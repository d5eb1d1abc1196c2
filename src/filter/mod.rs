//! `--filter EXPR`: tcpdump's expression language, compiled by libpcap into classic BPF and
//! translated by us into the body of the BPF object's placeholder functions (see
//! bpf/filter.bpf.h), so the kernel evaluates it once per skb.
//!
//! Two variants, as pwru has: the link-layer one (Ethernet, for transmits) and the
//! network-layer one (raw IP, for skbs first seen at their receive). An expression that
//! needs the link layer (`arp`, `ether host ...`) has no network-layer variant: there it
//! rejects every packet.

mod cbpf;
mod ebpf;
mod install;
#[cfg(test)]
mod interp;
mod splice;
#[cfg(test)]
mod tests;
mod translate;

pub use cbpf::CInsn;
pub use ebpf::Insn;
pub use install::install;
pub use splice::{splice, SpliceError};
pub use translate::translate;

/// The placeholder's marker (bpf/filter.bpf.h): a 64-bit constant only it loads.
pub const MAGIC: u64 = 0x5149_5246_4c54_0002;

/// Which headers the packet bytes a variant reads start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The Ethernet header (DLT_EN10MB): a transmit's skb->data.
    Link,
    /// The IP header (DLT_RAW): a receive's or an enqueue's skb->data.
    Network,
}

impl Layer {
    /// libpcap's data-link type for this layer.
    fn dlt(self) -> i32 {
        match self {
            Layer::Link => 1,     // DLT_EN10MB
            Layer::Network => 12, // DLT_RAW
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("--filter '{expr}': {msg}")]
    Compile { expr: String, msg: String },
    #[error("--filter '{expr}': {msg}")]
    Translate { expr: String, msg: String },
}

/// A compiled filter: the expression and its eBPF bodies, one per layer.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: String,
    link: Vec<Insn>,
    network: Vec<Insn>,
}

impl Filter {
    /// Compiles `expr` with libpcap (both layers) and translates it. An expression
    /// libpcap refuses is an error with libpcap's own message; one that only the
    /// network layer refuses (it names link-layer fields) rejects everything there.
    pub fn compile(expr: &str) -> Result<Filter, FilterError> {
        let err = |msg: String| FilterError::Compile {
            expr: expr.to_string(),
            msg,
        };
        let link = cbpf::compile(expr, Layer::Link).map_err(err)?;
        let network = cbpf::compile(expr, Layer::Network).unwrap_or_else(|_| cbpf::reject_all());
        let tr = |p: &[CInsn]| {
            translate(p).map_err(|msg| FilterError::Translate {
                expr: expr.to_string(),
                msg,
            })
        };
        Ok(Filter {
            expr: expr.to_string(),
            link: tr(&link)?,
            network: tr(&network)?,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The eBPF translation of one layer's program.
    pub fn body(&self, layer: Layer) -> &[Insn] {
        match layer {
            Layer::Link => &self.link,
            Layer::Network => &self.network,
        }
    }

    /// The placeholder's body: both layers' translations, the fourth argument (r4,
    /// non-zero for the link layer) picks one. Each is self-contained (its jumps stay
    /// inside it).
    pub fn placeholder_body(&self) -> Result<Vec<Insn>, FilterError> {
        let skip = i16::try_from(self.network.len()).map_err(|_| FilterError::Translate {
            expr: self.expr.clone(),
            msg: "the filter is too long for eBPF jump offsets".into(),
        })?;
        let mut b = vec![ebpf::insn(ebpf::JMP | ebpf::JNE | ebpf::K, 4, 0, skip, 0)];
        b.extend_from_slice(&self.network);
        b.extend_from_slice(&self.link);
        Ok(b)
    }
}
