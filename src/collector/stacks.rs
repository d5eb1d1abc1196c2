//! Raise sites: the sampled kernel stacks that raised NET_RX/NET_TX, symbolized once per
//! stack at snapshot time (never in the ring-buffer callback), with each (interface,
//! vector)'s raises apportioned over its stacks by their share of the samples.

use std::collections::{BTreeMap, HashMap};

use blazesym::symbolize::{source, Input, Symbolizer};

use super::maps;
use crate::bpf::SirqtopSkel;
use crate::error::Result;
use crate::model::{CpuStats, IfaceCounters, IfaceKey, Loss, RaiseSite, NET_RX};

#[derive(Default)]
pub(super) struct RaiseStacks {
    /// Symbolized frames by stack id.
    symbolized: HashMap<u32, Vec<String>>,
    symbolizer: Option<Symbolizer>,
}

impl RaiseStacks {
    pub(super) fn read(
        &mut self,
        skel: &SirqtopSkel,
        counters: &HashMap<IfaceKey, IfaceCounters>,
        cpus: &[CpuStats],
        loss: &Loss,
    ) -> Result<Vec<RaiseSite>> {
        let samples = maps::raise_site_samples(skel)?;
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        for s in &samples {
            if !self.symbolized.contains_key(&s.stack_id) {
                let frames = self.symbolize(&maps::raise_stack(skel, s.stack_id));
                self.symbolized.insert(s.stack_id, frames);
            }
        }
        // Group by (interface, vector) and merge stacks that symbolize alike.
        let mut groups: BTreeMap<(Option<IfaceKey>, usize), BTreeMap<Vec<String>, u64>> =
            BTreeMap::new();
        for s in samples {
            let frames = self
                .symbolized
                .get(&s.stack_id)
                .cloned()
                .unwrap_or_default();
            let e = groups
                .entry((s.iface, s.vector))
                .or_default()
                .entry(frames)
                .or_default();
            *e = e.saturating_add(s.samples);
        }
        let mut out = Vec::new();
        for ((iface, vector), stacks) in groups {
            let total = match (iface, vector) {
                (Some(k), NET_RX) => counters.get(&k).map_or(0, |c| c.net_rx_raises),
                (None, NET_RX) => loss.raises_unattributed,
                (_, v) => cpus
                    .iter()
                    .map(|c| c.vectors[v].raises)
                    .fold(0, u64::saturating_add),
            };
            let weights: Vec<u64> = stacks.values().copied().collect();
            let counts = crate::model::apportion(total, &weights);
            for ((frames, samples), count) in stacks.into_iter().zip(counts) {
                out.push(RaiseSite {
                    iface,
                    vector,
                    samples,
                    count,
                    frames,
                });
            }
        }
        out.sort_by(|a, b| b.count.cmp(&a.count).then(b.samples.cmp(&a.samples)));
        Ok(out)
    }

    fn symbolize(&mut self, addrs: &[u64]) -> Vec<String> {
        let symbolizer = self.symbolizer.get_or_insert_with(Symbolizer::new);
        let src = source::Source::Kernel(source::Kernel::default());
        let names: Vec<String> = match symbolizer.symbolize(&src, Input::AbsAddr(addrs)) {
            Ok(syms) => syms
                .iter()
                .zip(addrs)
                .map(|(s, a)| match s.as_sym() {
                    Some(sym) => format!("{}+{:#x}", sym.name, sym.offset),
                    None => format!("{a:#x}"),
                })
                .collect(),
            Err(_) => addrs.iter().map(|a| format!("{a:#x}")).collect(),
        };
        trim_probe_frames(names)
    }
}

/// Drops the frames of the probe machinery itself (BPF program, trampolines, tracepoint
/// and kprobe dispatch) from the top of a stack, so it starts at the raise.
pub fn trim_probe_frames(frames: Vec<String>) -> Vec<String> {
    const PLUMBING: [&str; 13] = [
        "bpf_",
        "__bpf",
        "___bpf",
        "perf_",
        "__traceiter_",
        "trace_",
        "__probestub",
        "kprobe_",
        "__kprobes",
        "ftrace",
        "arch_rethook",
        "rethook",
        "0x",
    ];
    let skip = frames
        .iter()
        .take_while(|f| PLUMBING.iter().any(|p| f.starts_with(p)))
        .count();
    // A stack made only of plumbing keeps everything rather than nothing.
    if skip == frames.len() {
        frames
    } else {
        frames.into_iter().skip(skip).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_frames_are_trimmed_from_the_top_only() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            trim_probe_frames(f(&[
                "bpf_prog_6deef7357e7b4530_tp_softirq_raise+0x1b2",
                "bpf_trace_run1+0x86",
                "__raise_softirq_irqoff+0x6e",
                "____napi_schedule+0x55",
                "trace_dummy_in_middle+0x1",
            ])),
            f(&[
                "__raise_softirq_irqoff+0x6e",
                "____napi_schedule+0x55",
                "trace_dummy_in_middle+0x1"
            ])
        );
        assert_eq!(trim_probe_frames(f(&["bpf_x+0x1"])), f(&["bpf_x+0x1"]));
        assert_eq!(
            trim_probe_frames(f(&["rethook_trampoline_handler+0x1", "veth_xmit+0x2"])),
            f(&["veth_xmit+0x2"])
        );
    }
}
