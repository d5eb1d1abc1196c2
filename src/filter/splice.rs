//! Placing a translated body into a loaded program: libbpf has appended the placeholder
//! (a global function) to every program that calls it; its copy is found by the 64-bit
//! constant only it loads, and replaced from its first instruction to the program's end.

use super::ebpf::{insn, Insn, JA, JMP};

/// `call` with src_reg BPF_PSEUDO_CALL: a call of a function of the program.
const CALL_CODE: u8 = 0x85;
const PSEUDO_CALL: u8 = 1;
/// `ld_imm64` with src_reg BPF_PSEUDO_FUNC: a function's address (callbacks).
const LD_IMM64: u8 = 0x18;
const PSEUDO_FUNC: u8 = 4;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpliceError {
    #[error("the filter placeholder is not the program's last function")]
    NotLast,
    #[error("the filter placeholder's marker is outside any function")]
    NoFunction,
}

/// The start of every function of the program but the main one.
fn functions(prog: &[Insn]) -> Vec<usize> {
    prog.iter()
        .enumerate()
        .filter(|(_, i)| {
            (i.code == CALL_CODE && i.src == PSEUDO_CALL)
                || (i.code == LD_IMM64 && i.src == PSEUDO_FUNC)
        })
        .map(|(at, i)| (at as i64 + 1 + i64::from(i.imm)) as usize)
        .collect()
}

/// `prog` with the placeholder marked by `magic` replaced by `body`; `None` if the program
/// has no such placeholder. The body keeps the placeholder's start (its BTF function
/// and line records point there) and is never shorter than what it replaces (line
/// records inside must stay in the program): no-op jumps pad it in front.
pub fn splice(prog: &[Insn], magic: u64, body: &[Insn]) -> Result<Option<Vec<Insn>>, SpliceError> {
    let lo = magic as u32 as i32;
    let hi = (magic >> 32) as u32 as i32;
    let Some(mark) = prog
        .windows(2)
        .position(|w| w[0].code == LD_IMM64 && w[0].src == 0 && w[0].imm == lo && w[1].imm == hi)
    else {
        return Ok(None);
    };
    let starts = functions(prog);
    let start = starts
        .iter()
        .copied()
        .filter(|s| *s <= mark)
        .max()
        .ok_or(SpliceError::NoFunction)?;
    if starts.iter().any(|s| *s > start) {
        return Err(SpliceError::NotLast);
    }
    let old = prog.len() - start;
    let mut out = prog[..start].to_vec();
    out.extend(std::iter::repeat_n(
        insn(JMP | JA, 0, 0, 0, 0),
        old.saturating_sub(body.len()),
    ));
    out.extend_from_slice(body);
    Ok(Some(out))
}
