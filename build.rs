//! Compiles bpf/sirqtop.bpf.c and generates its libbpf-rs skeleton into OUT_DIR.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH is set by cargo");
    // BPF_KPROBE needs the pt_regs layout of the target architecture.
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        "powerpc64" => "powerpc",
        "s390x" => "s390",
        other => other,
    };
    // sirqtop itself, and the benchmark's floor (empty programs on the same hooks).
    for (src, skel) in [
        ("bpf/sirqtop.bpf.c", "sirqtop.skel.rs"),
        ("bpf/floor.bpf.c", "floor.skel.rs"),
    ] {
        SkeletonBuilder::new()
            .source(src)
            .clang_args([
                "-Ibpf".to_string(),
                format!("-D__TARGET_ARCH_{target_arch}"),
                "-Wall".to_string(),
                "-Wno-unused-function".to_string(),
            ])
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| panic!("compile {src} and generate its skeleton: {e}"));
    }
    for f in [
        "bpf/sirqtop.bpf.c",
        "bpf/floor.bpf.c",
        "bpf/sirqtop.h",
        "bpf/vmlinux.h",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
}
