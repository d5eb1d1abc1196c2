//! sirqtop: what container networking costs a Linux node, per interface and network namespace.
//!
//! Data flows one way: kernel (bpf/) -> [`collector`] -> [`model::Snapshot`] -> faces
//! ([`output`] JSON, [`tui`] dashboard).
pub mod bpf;
pub mod capture;
pub mod cli;
pub mod collector;
pub mod error;
pub mod filter;
pub mod findings;
/// Test hosts (namespaces, veth pairs, traffic) for the tests and examples: not part of
/// the library's API. Enabled by the `lab` feature, which the dev-dependency on this
/// crate turns on for tests and examples.
#[cfg(feature = "lab")]
#[doc(hidden)]
pub mod lab;
pub mod model;
pub mod netns;
pub mod output;
pub mod probe;
pub mod serve;
pub mod tui;

pub use error::{Error, Result};
