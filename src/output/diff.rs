//! `sirqtop diff`: placeholder until the diff module lands (being written).
use crate::cli::DiffArgs;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("sirqtop diff is not implemented yet")]
    NotYet,
}

pub fn run(_args: &DiffArgs) -> Result<(), DiffError> {
    Err(DiffError::NotYet)
}
