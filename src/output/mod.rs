//! Faces that read snapshots: the JSON capture (and, later, diffs and exporters).
pub mod json;
pub mod diff;
