#!/bin/bash
# Build the test guests' initramfs.
#
# usage: qemu/build-initramfs.sh base OUT.cpio.gz [SIRQTOP_BINARY]
#        qemu/build-initramfs.sh kernel OUT.cpio.gz KERNEL_DIR
#
# "base" holds everything that does not depend on the kernel: busybox (static),
# the host's iproute2 `ip` (busybox ip has no `netns`) and sirqtop with their
# shared libraries (from ldd), the static UDP sender built from udpsend.c, and
# /init (init.sh). Without SIRQTOP_BINARY the guest only runs the scenario
# self-test. For the data-path scenarios (datapaths.sh): the host's `tc` with its
# libraries, the tc BPF object built from redirect_peer.bpf.c with clang, and the
# static netkit helper built from nkadd.c. "kernel" holds one kernel's modules
# (/lib/modules/*.ko, modules.load: the insmod order) and its config. QEMU gets
# the two archives concatenated (the kernel unpacks concatenated cpio archives).
set -euo pipefail

mode=${1:?usage}; out=${2:?usage}; arg=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "build-initramfs: $*" >&2; }

need() { # need CMD PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >&2
}
need cpio cpio
need gzip gzip

root=$(mktemp -d "${TMPDIR:-/tmp}/sirqtop-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

copy_with_libs() { # copy_with_libs BINARY DEST_IN_ROOT
    install -D -m 0755 "$1" "$root$2"
    local lib
    # "libx.so => /path (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    for lib in $(ldd "$1" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\// {print $1}'); do
        [ -e "$root$lib" ] && continue
        install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    done
}

case "$mode" in
base)
    bb=$(command -v busybox || true)
    if [ -z "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
        # missing, or dynamically linked (package busybox): use busybox-static
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >&2
        bb=$(command -v busybox)
    fi
    if ldd "$bb" >/dev/null 2>&1; then log "$bb is not static"; exit 1; fi
    need ip iproute2
    need gcc gcc
    need tc iproute2
    need clang clang
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,root,etc,lib/modules}
    install -m 0755 "$bb" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    copy_with_libs "$(command -v ip)" /sbin/ip
    # libc's static archive is in libc6-dev (always there with gcc)
    gcc -static -O2 -Wall -o "$root/bin/udpsend" "$here/udpsend.c"
    gcc -static -O2 -Wall -o "$root/bin/nkadd" "$here/nkadd.c"
    copy_with_libs "$(command -v tc)" /sbin/tc
    # <asm/types.h> is under the multiarch include directory
    clang -O2 -target bpf -I"/usr/include/$(gcc -dumpmachine)" \
        -c "$here/redirect_peer.bpf.c" -o "$root/lib/redirect_peer.o"
    install -m 0644 "$here/datapaths.sh" "$root/bin/datapaths.sh"
    if [ -n "$arg" ]; then
        copy_with_libs "$arg" /bin/sirqtop
    fi
    install -m 0755 "$here/init.sh" "$root/init"
    echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
    echo "root:x:0:" > "$root/etc/group"
    : > "$root/etc/fstab"
    ;;
kernel)
    [ -s "$arg/modules/veth.ko" ] || { log "no modules/veth.ko in $arg"; exit 1; }
    mkdir -p "$root/lib/modules"
    install -m 0644 "$arg"/modules/*.ko "$root/lib/modules/"
    install -m 0644 "$arg/modules.load" "$arg/config" "$root/lib/modules/"
    ;;
*)
    log "unknown mode $mode"; exit 2 ;;
esac

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
    gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
log "$mode -> $out ($(du -h "$out" | cut -f1))"
