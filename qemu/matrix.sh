#!/bin/bash
# Run sirqtop's ground-truth scenario inside real Debian kernels under QEMU,
# once per probe backend, and check the JSON it produces.
#
#   qemu/matrix.sh                           # 5.10, 6.1, 6.12 x all backends
#   SIRQTOP_QEMU_SUITES=trixie SIRQTOP_QEMU_BACKENDS=kprobe qemu/matrix.sh
#
# Steps: cargo build --release (unless SIRQTOP_BIN is given), download and
# cache the kernels (qemu/fetch-kernel.sh, under .cache/kernels), build the
# initramfs (qemu/build-initramfs.sh), boot each kernel once with TCG
# (qemu/boot.sh) running all backends in sequence (qemu/init.sh), then check
# the console logs (qemu/check.py) and print a kernel x backend table.
# Exit status: 0 when every cell passes.
#
# env:
#   SIRQTOP_BIN             sirqtop binary to test (default: build target/release/sirqtop)
#   SIRQTOP_QEMU_SUITES     Debian suites whose cloud kernel is tested
#                           (default "bullseye bookworm trixie": 5.10, 6.1, 6.12)
#   SIRQTOP_QEMU_BACKENDS   comma-separated (default kprobe,fentry,tracepoint,auto)
#   SIRQTOP_QEMU_N          datagrams per run (default 500)
#   SIRQTOP_QEMU_M          datagrams from the data-path scenarios' wire side (default 3/5 of N)
#   SIRQTOP_QEMU_DATAPATH_CHECKS  data-path scenarios whose sirqtop-side checks are on:
#                           all (default), none, or a comma list (ipvl2,ipvl3,macvlan,ipip,
#                           redirpeer,netkit,vlan,vxlan); their kernel side is always checked
#   SIRQTOP_QEMU_DURATION   sirqtop --duration (default 8s: all scenarios' traffic fits, even on a busy host)
#   SIRQTOP_QEMU_READY_TIMEOUT  seconds a guest waits for "sirqtop: ready", and for
#                           sirqtop to exit after the traffic (default 60)
#   SIRQTOP_QEMU_TIMEOUT    hard limit per boot in seconds (default 480)
#   SIRQTOP_QEMU_JOBS       guests booted at a time (default 2 on 2+ cores, else 1)
#   SIRQTOP_QEMU_GUEST_ENV  space-separated VAR=value given to sirqtop in the guests
#                           (e.g. SIRQTOP_LIBBPF_LOG=1: verifier logs in the cell's stderr)
#   SIRQTOP_QEMU_RESULTS    where logs go (default .cache/qemu-matrix)
#   SIRQTOP_QEMU_MARKDOWN   markdown table to write (default qemu/TESTED_KERNELS.md
#                           when the default suites and backends run, else none)
#   SIRQTOP_KERNEL_CACHE, DEBIAN_MIRROR: see qemu/fetch-kernel.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

default_suites="bullseye bookworm trixie"
default_backends="kprobe,fentry,tracepoint,auto"
suites=${SIRQTOP_QEMU_SUITES:-$default_suites}
backends=${SIRQTOP_QEMU_BACKENDS:-$default_backends}
n=${SIRQTOP_QEMU_N:-500}
m=${SIRQTOP_QEMU_M:-$((n * 3 / 5))}
duration=${SIRQTOP_QEMU_DURATION:-8s}
export SIRQTOP_QEMU_TIMEOUT=${SIRQTOP_QEMU_TIMEOUT:-480}
results=${SIRQTOP_QEMU_RESULTS:-$repo/.cache/qemu-matrix}
cache=${SIRQTOP_KERNEL_CACHE:-$repo/.cache/kernels}
export SIRQTOP_KERNEL_CACHE=$cache
if [ -z "${SIRQTOP_QEMU_MARKDOWN+x}" ]; then
    if [ "$suites" = "$default_suites" ] && [ "$backends" = "$default_backends" ]; then
        SIRQTOP_QEMU_MARKDOWN=$here/TESTED_KERNELS.md
    else
        SIRQTOP_QEMU_MARKDOWN=
    fi
fi

log() { echo "matrix: $*" >&2; }
start=$(date +%s)

# --- tools (CI starts from a fresh machine) ---------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v tc >/dev/null 2>&1 || missing+=(iproute2)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
bb=$(command -v busybox || true)
if [ -z "$bb" ] || ldd "$bb" >/dev/null 2>&1; then missing+=(busybox-static); fi
[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi

# --- sirqtop -----------------------------------------------------------------
if [ -n "${SIRQTOP_BIN:-}" ]; then
    bin=$SIRQTOP_BIN
else
    log "cargo build --release"
    ${CARGO:-cargo} build --release --bin sirqtop >&2
    bin=$repo/target/release/sirqtop
fi
[ -x "$bin" ] || { log "no sirqtop binary at $bin"; exit 1; }
version=$("$bin" --version 2>/dev/null | head -n1 || true)
log "testing $bin ($version)"

# --- kernels and initramfs ---------------------------------------------------
mkdir -p "$results"
rm -f "$results"/*.log "$results"/*.cpio.gz "$results"/*.initrd
"$here/build-initramfs.sh" base "$results/base.cpio.gz" "$bin"

# Guests boot SIRQTOP_QEMU_JOBS at a time: TCG runs each guest on one host thread
# (thread=single), so two guests keep a 2-core machine busy and take about the time of one.
boot_one() { # boot_one KDIR RELEASE DEBVER: one guest, its QEMU status in RELEASE.rc
    local l=$results/$2.log t0
    t0=$(date +%s)
    log "booting $2 (backends $backends)"
    set +e
    "$here/boot.sh" "$1" "$results/$2.initrd" "$l" \
        "sirqtop.backends=$backends" "sirqtop.n=$n" "sirqtop.m=$m" "sirqtop.size=64" "sirqtop.duration=$duration" \
        "sirqtop.debian=$3" "sirqtop.ready_timeout=${SIRQTOP_QEMU_READY_TIMEOUT:-60}" \
        ${SIRQTOP_QEMU_GUEST_ENV:+"sirqtop.env=$(echo $SIRQTOP_QEMU_GUEST_ENV | tr ' ' ',')"}
    echo $? > "$results/$2.rc"
    log "$2: QEMU exit $(cat "$results/$2.rc") after $(( $(date +%s) - t0 ))s, console log $l"
    rm -f "$results/$2.initrd"
}
jobs_max=${SIRQTOP_QEMU_JOBS:-$(( $(nproc) >= 2 ? 2 : 1 ))}
releases=()
for suite in $suites; do
    kdir=$("$here/fetch-kernel.sh" "$suite")
    release=$(cat "$kdir/release")
    debver=$(cut -d' ' -f2 "$kdir/package")
    "$here/build-initramfs.sh" kernel "$results/$release.cpio.gz" "$kdir"
    cat "$results/base.cpio.gz" "$results/$release.cpio.gz" > "$results/$release.initrd"
    rm -f "$results/$release.rc"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    boot_one "$kdir" "$release" "$debver" &
    releases+=("$release")
done
wait
logs=()
status_args=()
for release in "${releases[@]}"; do
    l=$results/$release.log
    logs+=("$l")
    status_args+=(--boot-status "$l=$(cat "$results/$release.rc" 2>/dev/null || echo 255)")
done

# --- check -------------------------------------------------------------------
set +e
python3 "$here/check.py" -n "$n" -m "$m" --backends "$backends" --sirqtop-version "$version" \
    --datapath-checks "${SIRQTOP_QEMU_DATAPATH_CHECKS:-all}" \
    ${SIRQTOP_QEMU_MARKDOWN:+--markdown "$SIRQTOP_QEMU_MARKDOWN"} \
    "${status_args[@]}" "${logs[@]}"
rc=$?
set -e
[ -n "$SIRQTOP_QEMU_MARKDOWN" ] && log "wrote $SIRQTOP_QEMU_MARKDOWN"
log "total $(( $(date +%s) - start ))s"
exit $rc
