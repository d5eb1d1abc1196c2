//! Faces that read snapshots: the JSON capture (and, later, diffs and exporters).
pub mod diff;
pub mod json;
