//! A small eBPF interpreter for the translator's tests: the instructions it emits, with
//! `bpf_probe_read_kernel` reading a packet that lies in readable memory followed by
//! bytes that are not the packet's (as an skb's head is), so a missing bounds check shows.

use super::ebpf::*;

const STACK_TOP: u64 = 0x1_0000_0000;
const STACK_SIZE: usize = 512;
const PKT: u64 = 0x2_0000_0000;
/// Readable bytes after the packet: not part of it, but copying them does not fault.
const SLACK: usize = 64;

struct Vm<'a> {
    r: [u64; 11],
    stack: [u8; STACK_SIZE],
    mem: &'a [u8],
}

impl Vm<'_> {
    fn stack_at(&mut self, addr: u64, n: usize) -> &mut [u8] {
        let lo = STACK_TOP - STACK_SIZE as u64;
        assert!(
            addr >= lo && addr + n as u64 <= STACK_TOP,
            "stack access {addr:#x}"
        );
        let o = (addr - lo) as usize;
        &mut self.stack[o..o + n]
    }

    fn probe_read(&mut self) -> u64 {
        let (dst, n, src) = (self.r[1], self.r[2] as usize, self.r[3]);
        let ok = src >= PKT && src - PKT + n as u64 <= self.mem.len() as u64;
        let bytes: Vec<u8> = if ok {
            let o = (src - PKT) as usize;
            self.mem[o..o + n].to_vec()
        } else {
            vec![0; n]
        };
        self.stack_at(dst, n).copy_from_slice(&bytes);
        if ok {
            0
        } else {
            (-14i64) as u64
        }
    }
}

/// dst and src (a register or the immediate), cut to 32 bits for 32-bit classes.
fn operands(vm: &Vm, i: Insn, narrow: bool) -> (u64, u64) {
    let a = vm.r[usize::from(i.dst)];
    let b = if i.code & X != 0 {
        vm.r[usize::from(i.src)]
    } else {
        i.imm as i64 as u64
    };
    if narrow {
        (a & 0xffff_ffff, b & 0xffff_ffff)
    } else {
        (a, b)
    }
}

fn size_of(code: u8) -> usize {
    match code & 0x18 {
        W => 4,
        H => 2,
        B => 1,
        _ => 8,
    }
}

/// Runs `prog` with the placeholder's arguments for `pkt` (all of it readable); returns r0.
pub fn run(prog: &[Insn], pkt: &[u8]) -> u64 {
    run_layer(prog, pkt, 0)
}

/// As [`run`], with the placeholder's fourth argument (`l2`).
pub fn run_layer(prog: &[Insn], pkt: &[u8], l2: u64) -> u64 {
    let mut mem = pkt.to_vec();
    mem.extend(std::iter::repeat_n(0xaa, SLACK));
    let mut vm = Vm {
        r: [0; 11],
        stack: [0x55; STACK_SIZE],
        mem: &mem,
    };
    vm.r[1] = PKT;
    vm.r[2] = pkt.len() as u64;
    vm.r[3] = pkt.len() as u64;
    vm.r[4] = l2;
    vm.r[10] = STACK_TOP;
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = prog[pc];
        pc += 1;
        let (d, s) = (usize::from(i.dst), usize::from(i.src));
        let class = i.code & 0x07;
        match class {
            ALU | ALU64 => {
                let op = i.code & 0xf0;
                let (a, b) = operands(&vm, i, class == ALU);
                let bits = if class == ALU { 32 } else { 64 };
                let v = match op {
                    0x00 => a.wrapping_add(b),
                    0x10 => a.wrapping_sub(b),
                    0x20 => a.wrapping_mul(b),
                    0x30 => a.checked_div(b).unwrap_or(0),
                    0x40 => a | b,
                    0x50 => a & b,
                    0x60 => a << (b % bits),
                    0x70 => a >> (b % bits),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(b).unwrap_or(a),
                    0xa0 => a ^ b,
                    MOV => b,
                    END => match i.imm {
                        16 => u64::from((a as u16).swap_bytes()),
                        32 => u64::from((a as u32).swap_bytes()),
                        _ => a.swap_bytes(),
                    },
                    _ => panic!("alu op {op:#x}"),
                };
                vm.r[d] = if class == ALU { v & 0xffff_ffff } else { v };
            }
            JMP | JMP32 => {
                let op = i.code & 0xf0;
                if op == EXIT {
                    return vm.r[0];
                }
                if op == CALL {
                    assert_eq!(i.imm, PROBE_READ_KERNEL, "helper");
                    vm.r[0] = vm.probe_read();
                    continue;
                }
                let (a, b) = operands(&vm, i, class == JMP32);
                let taken = match op {
                    JA => true,
                    JEQ => a == b,
                    JGT => a > b,
                    0x30 => a >= b,
                    0x40 => a & b != 0,
                    JNE => a != b,
                    JLT => a < b,
                    0xb0 => a <= b,
                    _ => panic!("jmp op {op:#x}"),
                };
                if taken {
                    pc = (pc as i64 + i64::from(i.off)) as usize;
                }
            }
            LDX => {
                let n = size_of(i.code);
                let addr = vm.r[s].wrapping_add(i.off as i64 as u64);
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(vm.stack_at(addr, n));
                vm.r[d] = u64::from_le_bytes(b);
            }
            ST | STX => {
                let n = size_of(i.code);
                let v = if class == ST {
                    i.imm as i64 as u64
                } else {
                    vm.r[s]
                };
                let addr = vm.r[d].wrapping_add(i.off as i64 as u64);
                vm.stack_at(addr, n).copy_from_slice(&v.to_le_bytes()[..n]);
            }
            _ => panic!("class {class}"),
        }
    }
    panic!("no exit after 100000 steps");
}
