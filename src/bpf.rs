//! The generated BPF skeletons, their shared types, and [`Skeleton`]: the loaded sirqtop
//! object together with the storage it borrows.
#![allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    non_camel_case_types,
    non_snake_case
)]
#![allow(unused_imports)]

include!(concat!(env!("OUT_DIR"), "/sirqtop.skel.rs"));

// The benchmark's skeletons; the lint allowances above cover them too.

/// Empty programs on sirqtop's default hooks: the benchmark's overhead floor.
pub mod floor {
    include!(concat!(env!("OUT_DIR"), "/floor.skel.rs"));
}

/// The same hooks with the least exact work (a per-CPU count each, softirq run time): the
/// benchmark's `least` condition.
pub mod least {
    include!(concat!(env!("OUT_DIR"), "/least.skel.rs"));
}

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

/// Sizes and limits from bpf/sirqtop.h, as the skeleton generated them.
pub mod limits {
    use super::types::sirq_limits as L;
    pub const HIST_BUCKETS: usize = L::SIRQ_HIST_BUCKETS.0 as usize;
    pub const NR_VECTORS: usize = L::SIRQ_NR_VECTORS.0 as usize;
    pub const VEC_NET_TX: usize = L::SIRQ_VEC_NET_TX.0 as usize;
    pub const VEC_NET_RX: usize = L::SIRQ_VEC_NET_RX.0 as usize;
    pub const MAX_NETNS_FILTER: usize = L::SIRQ_MAX_NETNS_FILTER.0 as usize;
    pub const INFLIGHT_SLOTS: usize = L::SIRQ_INFLIGHT_SLOTS.0 as usize;
    pub const IFACE_SLOTS: usize = L::SIRQ_IFACE_SLOTS.0 as usize;
    pub const HIST_PCPU_SLOTS: usize = L::SIRQ_HIST_PCPU_SLOTS.0 as usize;
    pub const PATH_SLOTS: usize = L::SIRQ_PATH_SLOTS.0 as usize;
}

/// Why the skeleton could not be had.
#[derive(Debug)]
pub enum SkelError {
    /// Parsing the embedded object failed (never for a binary that was built).
    Open(libbpf_rs::Error),
    /// The kernel refused a program or map; libbpf's log says which.
    Load(libbpf_rs::Error),
    /// The --filter bodies could not be placed into the programs.
    Filter(String),
}

/// The loaded sirqtop skeleton. libbpf-rs skeletons borrow a `MaybeUninit<OpenObject>`;
/// this type owns that storage on the heap, so the skeleton can live as long as its owner
/// (the collector) and is dropped strictly before the storage.
pub struct Skeleton {
    skel: ManuallyDrop<SirqtopSkel<'static>>,
    storage: NonNull<MaybeUninit<OpenObject>>,
}

impl Skeleton {
    /// Opens the embedded object, lets `configure` set its read-only config and choose the
    /// programs to load, and loads it into the kernel.
    /// `configure` may refuse (the --filter bodies could not be placed): nothing loads.
    pub fn load(
        configure: impl FnOnce(&mut OpenSirqtopSkel<'static>) -> Result<(), String>,
    ) -> Result<Skeleton, SkelError> {
        let storage = NonNull::from(Box::leak(Box::new(MaybeUninit::<OpenObject>::uninit())));
        // SAFETY: `storage` is a fresh heap allocation that nothing else references. It is
        // freed only after every skeleton built in it is gone: below on failure, in Drop
        // otherwise.
        let object: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage.as_ptr() };
        let loaded = SirqtopSkelBuilder::default()
            .open(object)
            .map_err(SkelError::Open)
            .and_then(|mut open| {
                configure(&mut open).map_err(SkelError::Filter)?;
                open.load().map_err(SkelError::Load)
            });
        match loaded {
            Ok(skel) => Ok(Skeleton {
                skel: ManuallyDrop::new(skel),
                storage,
            }),
            Err(e) => {
                // SAFETY: the open skeleton was consumed (and dropped) by `load` or never
                // built; nothing borrows the storage any more.
                drop(unsafe { Box::from_raw(storage.as_ptr()) });
                Err(e)
            }
        }
    }
}

impl Deref for Skeleton {
    type Target = SirqtopSkel<'static>;
    fn deref(&self) -> &Self::Target {
        &self.skel
    }
}

impl DerefMut for Skeleton {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.skel
    }
}

impl Drop for Skeleton {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here, before the storage it lives in. Whatever
        // borrowed it (ring buffers, links) belongs to the owner, which drops those first.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
        // SAFETY: `storage` came from Box::leak in `load` and is freed once, after the
        // skeleton that lived in it.
        drop(unsafe { Box::from_raw(self.storage.as_ptr()) });
    }
}

/// Every program in the sirqtop object as (name, ELF section). Opening parses the
/// embedded object only: no kernel, no privileges.
pub fn program_sections() -> Result<Vec<(String, String)>, SkelError> {
    let mut object = MaybeUninit::uninit();
    let open = SirqtopSkelBuilder::default()
        .open(&mut object)
        .map_err(SkelError::Open)?;
    Ok(open
        .open_object()
        .progs()
        .map(|p| {
            (
                p.name().to_string_lossy().into_owned(),
                p.section().to_string_lossy().into_owned(),
            )
        })
        .collect())
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
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_drop_key {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_path_key {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_path_stats {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_path_slot {}
// SAFETY: plain C structs of integers (bpf/sirqtop.h); any bit pattern is valid.
unsafe impl plain::Plain for types::sirq_payer_key {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_payer_stats {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_payer_cache {}
// SAFETY: as above (the comm is an array of C chars).
unsafe impl plain::Plain for types::sirq_slow_event {}
// SAFETY: as above.
unsafe impl plain::Plain for types::sirq_slow_state {}
