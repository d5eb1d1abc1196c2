//! Compiles the BPF programs in bpf/ and generates their libbpf-rs skeletons into OUT_DIR.
use std::env;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

/// The BPF sources and the skeleton each becomes: sirqtop itself, and the benchmark's
/// floor (empty programs on the same hooks) and least exact work (a count per hook and the
/// softirq run time).
const OBJECTS: [(&str, &str); 3] = [
    ("bpf/sirqtop.bpf.c", "sirqtop.skel.rs"),
    ("bpf/floor.bpf.c", "floor.skel.rs"),
    ("bpf/least.bpf.c", "least.skel.rs"),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH is set by cargo");
    // vmlinux.h carries the architecture's pt_regs, which BPF_KPROBE reads arguments from:
    // a header from another architecture would compile into wrong register offsets.
    let vmlinux_dir = format!("bpf/vmlinux/{arch}");
    if !Path::new(&vmlinux_dir).join("vmlinux.h").exists() {
        eprintln!(
            "error: no {vmlinux_dir}/vmlinux.h for target architecture {arch}.\n\
             Generate it on a {arch} machine whose kernel has BTF (CO-RE keeps it portable \
             across kernel versions):\n  mkdir -p {vmlinux_dir} && bpftool btf dump file \
             /sys/kernel/btf/vmlinux format c > {vmlinux_dir}/vmlinux.h"
        );
        std::process::exit(1);
    }
    // BPF_KPROBE needs the __TARGET_ARCH_ name libbpf uses for this architecture.
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        "powerpc64" => "powerpc",
        "s390x" => "s390",
        "loongarch64" => "loongarch",
        other => other,
    };
    for (src, skel) in OBJECTS {
        SkeletonBuilder::new()
            .source(src)
            .clang_args([
                "-Ibpf".to_string(),
                format!("-I{vmlinux_dir}"),
                format!("-D__TARGET_ARCH_{target_arch}"),
                "-Wall".to_string(),
                "-Wno-unused-function".to_string(),
            ])
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| panic!("compile {src} and generate its skeleton: {e}"));
        println!("cargo:rerun-if-changed={src}");
    }
    for part in [
        "bpf/sirqtop.h",
        "bpf/state.bpf.h",
        "bpf/iface.bpf.h",
        "bpf/transmit.bpf.h",
        "bpf/receive.bpf.h",
        "bpf/softirq.bpf.h",
        "bpf/filter.bpf.h",
    ] {
        println!("cargo:rerun-if-changed={part}");
    }
    println!("cargo:rerun-if-changed={vmlinux_dir}/vmlinux.h");
}
