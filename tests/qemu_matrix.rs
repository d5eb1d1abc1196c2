//! Kernel matrix: boots Debian's bullseye (5.10), bookworm (6.1) and trixie (6.12) cloud
//! kernels under QEMU (TCG) and runs the ground-truth veth scenario and the data-path
//! scenarios (ipvlan L2/L3, macvlan bridge, IPIP, tc bpf_redirect_peer, netkit where the
//! kernel has it, VLAN; each against the guest kernel's own device counters) inside each of
//! them with every probe backend (kprobe, fentry, tracepoint, auto). This is what proves the
//! kprobe and fentry backends, which the CI host's own kernel cannot run. All the work is
//! done by `qemu/matrix.sh` (see qemu/README.md); this test only runs it and turns its
//! verdict into a test result.
//!
//! Skipped (passes, with a message) when not root or when `SIRQTOP_SKIP_QEMU=1`.
//! Takes a few minutes; downloads the kernels once into `.cache/kernels`.

use std::path::Path;
use std::process::Command;

#[test]
fn qemu_kernel_matrix() {
    if std::env::var("SIRQTOP_SKIP_QEMU").as_deref() == Ok("1") {
        eprintln!("qemu_kernel_matrix: skipped (SIRQTOP_SKIP_QEMU=1)");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "qemu_kernel_matrix: skipped (needs root: installs packages, builds the guest \
             initramfs; set SIRQTOP_SKIP_QEMU=1 to skip explicitly)"
        );
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = repo.join("qemu/matrix.sh");
    // One stream, in order: the table and every failing cell's guest output are on stdout,
    // progress on stderr.
    let out = Command::new("bash")
        .arg("-c")
        .arg("exec \"$0\" 2>&1")
        .arg(&script)
        .current_dir(repo)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        panic!(
            "qemu/matrix.sh failed ({}); its output, with the guests' consoles of the failing \
             cells:\n{text}",
            out.status
        );
    }
    eprintln!("{text}");
}
