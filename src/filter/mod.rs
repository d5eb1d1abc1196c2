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
#[cfg(test)]
mod interp;
mod splice;
#[cfg(test)]
mod tests;
mod translate;

pub use cbpf::CInsn;
pub use ebpf::Insn;
pub use splice::{splice, SpliceError};
pub use translate::translate;

/// The placeholders' markers (bpf/filter.bpf.h): a 64-bit constant only they load.
pub const MAGIC_L2: u64 = 0x5149_5246_4c54_0002;
pub const MAGIC_L3: u64 = 0x5149_5246_4c54_0003;

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

    /// The marker of this layer's placeholder.
    pub fn magic(self) -> u64 {
        match self {
            Layer::Link => MAGIC_L2,
            Layer::Network => MAGIC_L3,
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

    /// The eBPF body of one layer's placeholder.
    pub fn body(&self, layer: Layer) -> &[Insn] {
        match layer {
            Layer::Link => &self.link,
            Layer::Network => &self.network,
        }
    }
}
