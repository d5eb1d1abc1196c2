//! Classic BPF -> eBPF, with the semantics of the kernel's `bpf_convert_filter` (and of
//! libpcap's own interpreter, which they share for what libpcap emits): A and X are 32-bit,
//! 16 words of scratch memory, a packet load past the readable bytes rejects the packet,
//! division by a zero X rejects it.
//!
//! The calling convention of the placeholder it becomes (bpf/filter.bpf.h):
//! `r1` = address of the first packet byte, `r2` = how many bytes from there may be read,
//! `r3` = the packet's length (`len`); returns 1 (match) or 0. Packet bytes are copied
//! with `bpf_probe_read_kernel`, so the body needs no packet pointer type: it works in
//! any tracing program.

use super::cbpf::CInsn;
use super::ebpf::*;

// Registers: r6-r9 survive helper calls.
const DATA: u8 = 6;
const HLEN: u8 = 7;
const A: u8 = 8;
const XR: u8 = 9;
// Stack: scratch memory M[0..16], the load buffer, the packet length.
const MEM_OFF: i16 = -64;
const BUF: i16 = -72;
const WLEN: i16 = -80;
/// Classic BPF's scratch memory words (BPF_MEMWORDS).
const MEMWORDS: u32 = 16;
/// The kernel's limit on classic programs (BPF_MAXINSNS).
const MAXINSNS: usize = 4096;

// Classic BPF fields.
fn class(c: u16) -> u16 {
    c & 0x07
}
fn size(c: u16) -> u16 {
    c & 0x18
}
fn mode(c: u16) -> u16 {
    c & 0xe0
}
fn op(c: u16) -> u16 {
    c & 0xf0
}
fn src(c: u16) -> u16 {
    c & 0x08
}

#[derive(Clone, Copy)]
enum Target {
    Insn(usize),
    Reject,
}

struct Emitter {
    out: Vec<Insn>,
    fixups: Vec<(usize, Target)>,
}

impl Emitter {
    fn push(&mut self, i: Insn) {
        self.out.push(i);
    }

    fn jump(&mut self, i: Insn, t: Target) {
        self.fixups.push((self.out.len(), t));
        self.out.push(i);
    }

    /// Copies `bytes` packet bytes at `k` (plus X for an indexed load) into `dst`, in host
    /// order; a load past the readable bytes (or a failed copy) rejects.
    fn load(&mut self, bytes: i32, k: u32, indexed: bool, dst: u8) {
        // r3 = offset; r1 = offset + size, checked against the readable length. 64-bit
        // arithmetic on 32-bit values: no wrap-around, as libpcap's checks.
        if indexed {
            self.push(mov64_reg(3, XR));
        } else {
            self.push(mov32_imm(3, 0));
        }
        if k <= i32::MAX as u32 {
            self.push(add64_imm(3, k as i32));
        } else {
            self.push(mov32_imm(1, k as i32));
            self.push(add64_reg(3, 1));
        }
        self.push(mov64_reg(1, 3));
        self.push(add64_imm(1, bytes));
        self.jump(jmp(JGT, JMP | X, 1, HLEN, 0), Target::Reject);
        self.push(add64_reg(3, DATA));
        self.push(mov64_reg(1, FP));
        self.push(add64_imm(1, i32::from(BUF)));
        self.push(mov32_imm(2, bytes));
        self.push(insn(JMP | CALL, 0, 0, 0, PROBE_READ_KERNEL));
        self.jump(jmp(JNE, JMP | K, 0, 0, 0), Target::Reject);
        let sz = match bytes {
            4 => W,
            2 => H,
            _ => B,
        };
        self.push(insn(LDX | MEM | sz, dst, FP, BUF, 0));
        if bytes > 1 {
            self.push(insn(ALU | END | TO_BE, dst, 0, 0, bytes * 8));
        }
    }

    /// `r0 = (reg != 0); exit`.
    fn ret_reg(&mut self, reg: u8) {
        self.push(mov32_reg(0, reg));
        self.push(insn(JMP32 | JEQ | K, 0, 0, 1, 0));
        self.push(mov32_imm(0, 1));
        self.push(exit());
    }
}

/// Which instructions can run (the verifier refuses unreachable code), after checking
/// that every jump and fall-through stays inside the program.
fn reachable(p: &[CInsn]) -> Result<Vec<bool>, String> {
    let mut seen = vec![false; p.len()];
    let mut todo = vec![0usize];
    while let Some(i) = todo.pop() {
        if i >= p.len() {
            return Err(format!("classic BPF jumps or falls off its end at {i}"));
        }
        if seen[i] {
            continue;
        }
        seen[i] = true;
        let c = p[i];
        match class(c.code) {
            0x06 => {}
            0x05 if op(c.code) == 0x00 => todo.push(i + 1 + c.k as usize),
            0x05 => {
                todo.push(i + 1 + usize::from(c.jt));
                todo.push(i + 1 + usize::from(c.jf));
            }
            _ => todo.push(i + 1),
        }
    }
    Ok(seen)
}

fn mem_slot(k: u32) -> Result<i16, String> {
    if k >= MEMWORDS {
        return Err(format!("scratch memory word {k} out of range"));
    }
    Ok(MEM_OFF + 4 * k as i16)
}

/// Translates a classic program; the error names what the kernel would refuse too.
pub fn translate(p: &[CInsn]) -> Result<Vec<Insn>, String> {
    if p.is_empty() || p.len() > MAXINSNS {
        return Err(format!("classic BPF program of {} instructions", p.len()));
    }
    let live = reachable(p)?;
    let mut e = Emitter {
        out: Vec::new(),
        fixups: Vec::new(),
    };
    // Prologue: arguments into callee-saved registers, A = X = 0, memory zeroed (the
    // verifier refuses reads of unwritten stack).
    e.push(mov64_reg(DATA, 1));
    e.push(mov32_reg(HLEN, 2));
    e.push(insn(STX | MEM | W, FP, 3, WLEN, 0));
    e.push(mov32_imm(A, 0));
    e.push(mov32_imm(XR, 0));
    for off in (MEM_OFF..0).step_by(8).chain([BUF]) {
        e.push(insn(ST | MEM | DW, FP, 0, off, 0));
    }
    let mut start = vec![0usize; p.len()];
    for (i, c) in p.iter().enumerate() {
        start[i] = e.out.len();
        if !live[i] {
            continue;
        }
        let code = c.code;
        let k = c.k;
        let bad = || format!("unsupported classic BPF instruction {code:#06x} at {i}");
        let next = |off: u32| Target::Insn(i + 1 + off as usize);
        match class(code) {
            // BPF_LD, BPF_LDX
            0x00 | 0x01 => {
                let dst = if class(code) == 0 { A } else { XR };
                let bytes = match size(code) {
                    0x00 => 4,
                    0x08 => 2,
                    0x10 => 1,
                    _ => return Err(bad()),
                };
                match (class(code), mode(code)) {
                    (_, 0x00) => e.push(mov32_imm(dst, k as i32)),
                    (0, 0x20) => e.load(bytes, k, false, A),
                    (0, 0x40) => e.load(bytes, k, true, A),
                    (_, 0x60) => e.push(insn(LDX | MEM | W, dst, FP, mem_slot(k)?, 0)),
                    (_, 0x80) => e.push(insn(LDX | MEM | W, dst, FP, WLEN, 0)),
                    (1, 0xa0) if bytes == 1 => {
                        // X = (P[k] & 0xf) << 2: an IPv4 header's length.
                        e.load(1, k, false, XR);
                        e.push(insn(ALU | AND | K, XR, 0, 0, 0x0f));
                        e.push(insn(ALU | LSH | K, XR, 0, 0, 2));
                    }
                    _ => return Err(bad()),
                }
            }
            // BPF_ST, BPF_STX
            0x02 | 0x03 => {
                let reg = if class(code) == 0x02 { A } else { XR };
                e.push(insn(STX | MEM | W, FP, reg, mem_slot(k)?, 0));
            }
            // BPF_ALU
            0x04 => alu(&mut e, code, k).ok_or_else(bad)?,
            // BPF_JMP
            0x05 => {
                if op(code) == 0x00 {
                    e.jump(jmp(JA, JMP, 0, 0, 0), next(k));
                    continue;
                }
                if op(code) > 0x40 {
                    return Err(bad());
                }
                // The classic ops (JEQ, JGT, JGE, JSET) are eBPF's, on 32 bits.
                let cond = if src(code) == 0x08 {
                    insn(JMP32 | op(code) as u8 | X, A, XR, 0, 0)
                } else {
                    insn(JMP32 | op(code) as u8 | K, A, 0, 0, k as i32)
                };
                e.jump(cond, next(u32::from(c.jt)));
                if c.jf != 0 {
                    e.jump(jmp(JA, JMP, 0, 0, 0), next(u32::from(c.jf)));
                }
            }
            // BPF_RET
            0x06 => match size(code) {
                0x00 => {
                    e.push(mov32_imm(0, i32::from(k != 0)));
                    e.push(exit());
                }
                0x08 => e.ret_reg(XR),
                0x10 => e.ret_reg(A),
                _ => return Err(bad()),
            },
            // BPF_MISC: TAX, TXA
            _ => match code & 0xf8 {
                0x00 => e.push(mov32_reg(XR, A)),
                0x80 => e.push(mov32_reg(A, XR)),
                _ => return Err(bad()),
            },
        }
    }
    let reject = e.out.len();
    if e.fixups.iter().any(|(_, t)| matches!(t, Target::Reject)) {
        e.push(mov32_imm(0, 0));
        e.push(exit());
    }
    for (at, t) in std::mem::take(&mut e.fixups) {
        let to = match t {
            Target::Insn(i) => start[i],
            Target::Reject => reject,
        };
        let off = to as i64 - at as i64 - 1;
        e.out[at].off = i16::try_from(off)
            .map_err(|_| "the filter is too long for eBPF jump offsets".to_string())?;
    }
    Ok(e.out)
}

/// One ALU instruction on A (32-bit, as classic BPF's).
fn alu(e: &mut Emitter, code: u16, k: u32) -> Option<()> {
    let o = op(code) as u8;
    let by_x = src(code) == 0x08;
    match op(code) {
        // NEG
        0x80 => e.push(insn(ALU | 0x80, A, 0, 0, 0)),
        // ADD SUB MUL OR AND XOR
        0x00 | 0x10 | 0x20 | 0x40 | 0x50 | 0xa0 => e.push(alu_op(o, by_x, k)),
        // DIV MOD: by X = 0 rejects; by K = 0 is refused at load by both checkers.
        0x30 | 0x90 => {
            if by_x {
                e.jump(jmp(JEQ, JMP32 | K, XR, 0, 0), Target::Reject);
            } else if k == 0 {
                return None;
            }
            e.push(alu_op(o, by_x, k));
        }
        // LSH RSH: a shift by 32 or more gives 0 (libpcap's rule; eBPF's is undefined).
        0x60 | 0x70 => {
            if by_x {
                e.push(insn(JMP32 | JLT | K, XR, 0, 2, 32));
                e.push(mov32_imm(A, 0));
                e.push(insn(JMP | JA, 0, 0, 1, 0));
            } else if k >= 32 {
                return None;
            }
            e.push(alu_op(o, by_x, k));
        }
        _ => return None,
    }
    Some(())
}

fn alu_op(o: u8, by_x: bool, k: u32) -> Insn {
    if by_x {
        insn(ALU | o | X, A, XR, 0, 0)
    } else {
        insn(ALU | o | K, A, 0, 0, k as i32)
    }
}
