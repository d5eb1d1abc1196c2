//! The generated BPF skeleton and its shared types.
#![allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    non_camel_case_types,
    non_snake_case
)]
#![allow(unused_imports)]

include!(concat!(env!("OUT_DIR"), "/sirqtop.skel.rs"));

/// Empty programs on sirqtop's default hooks: the benchmark's overhead floor.
pub mod floor {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        non_camel_case_types,
        non_snake_case
    )]
    #![allow(unused_imports)]
    include!(concat!(env!("OUT_DIR"), "/floor.skel.rs"));
}

// SAFETY: these are `#[repr(C)]` structs made only of integers and arrays of integers
// (generated from bpf/sirqtop.h), so every bit pattern is a valid value.
unsafe impl plain::Plain for types::sirq_iface_key {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_iface_counters {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_iface_hists {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_hist {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_softirq_stats {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_iface_event {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_site_key {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_iface_slot {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_hist_slot {}
