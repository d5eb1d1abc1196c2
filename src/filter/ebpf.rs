//! eBPF instructions (struct bpf_insn of <linux/bpf.h>) and the few encodings the
//! translator emits.

/// One eBPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Instruction classes, sizes, modes, operations (the kernel's encoding).
pub const LDX: u8 = 0x01;
pub const ST: u8 = 0x02;
pub const STX: u8 = 0x03;
pub const ALU: u8 = 0x04;
pub const JMP: u8 = 0x05;
pub const JMP32: u8 = 0x06;
pub const ALU64: u8 = 0x07;
pub const W: u8 = 0x00;
pub const H: u8 = 0x08;
pub const B: u8 = 0x10;
pub const DW: u8 = 0x18;
pub const MEM: u8 = 0x60;
pub const K: u8 = 0x00;
pub const X: u8 = 0x08;
pub const ADD: u8 = 0x00;
pub const LSH: u8 = 0x60;
pub const AND: u8 = 0x50;
pub const MOV: u8 = 0xb0;
pub const END: u8 = 0xd0;
pub const TO_BE: u8 = 0x08;
pub const JA: u8 = 0x00;
pub const JEQ: u8 = 0x10;
pub const JGT: u8 = 0x20;
pub const JNE: u8 = 0x50;
pub const JLT: u8 = 0xa0;
pub const CALL: u8 = 0x80;
pub const EXIT: u8 = 0x90;

/// bpf_probe_read_kernel's helper id.
pub const PROBE_READ_KERNEL: i32 = 113;

/// The frame pointer.
pub const FP: u8 = 10;

pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// `dst = imm` (32-bit: the upper half is zeroed).
pub fn mov32_imm(dst: u8, imm: i32) -> Insn {
    insn(ALU | MOV | K, dst, 0, 0, imm)
}

pub fn mov32_reg(dst: u8, src: u8) -> Insn {
    insn(ALU | MOV | X, dst, src, 0, 0)
}

pub fn mov64_reg(dst: u8, src: u8) -> Insn {
    insn(ALU64 | MOV | X, dst, src, 0, 0)
}

pub fn add64_imm(dst: u8, imm: i32) -> Insn {
    insn(ALU64 | ADD | K, dst, 0, 0, imm)
}

pub fn add64_reg(dst: u8, src: u8) -> Insn {
    insn(ALU64 | ADD | X, dst, src, 0, 0)
}

/// A jump whose offset is fixed up later.
pub fn jmp(op: u8, class_src: u8, dst: u8, src: u8, imm: i32) -> Insn {
    insn(class_src | op, dst, src, 0, imm)
}

pub fn exit() -> Insn {
    insn(JMP | EXIT, 0, 0, 0, 0)
}

impl Insn {
    /// The kernel's 8-byte encoding (little-endian host: dst in the low nibble).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}
