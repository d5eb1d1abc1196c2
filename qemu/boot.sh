#!/bin/bash
# Boot one kernel under QEMU (TCG only: KVM is never used) with the test
# initramfs and write the serial console to LOG.
#
# usage: qemu/boot.sh KERNEL_DIR INITRD LOG [EXTRA_KERNEL_ARGS...]
# env:   SIRQTOP_QEMU_TIMEOUT  hard limit for the whole boot, seconds (default 420)
#        SIRQTOP_QEMU_SMP / SIRQTOP_QEMU_MEM  (default 2 / 1024)
# exit:  QEMU's status; 124 when the hard timeout killed it.
set -uo pipefail

kdir=${1:?usage}; initrd=${2:?usage}; log=${3:?usage}; shift 3
limit=${SIRQTOP_QEMU_TIMEOUT:-420}

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 >&2

# -nic none: the guest has no network device at all, so no traffic can leave it.
# thread=single: multi-threaded TCG can let a vCPU run text that another vCPU is patching
# (int3 left by text_poke when a tracepoint is switched off), seen as an Oops on 6.12.
# -no-reboot + panic=-1: a guest panic ends QEMU instead of looping.
timeout --kill-after=15 "$limit" \
    qemu-system-x86_64 -accel tcg,thread=single -cpu max -m "${SIRQTOP_QEMU_MEM:-1024}" \
        -smp "${SIRQTOP_QEMU_SMP:-2}" -nographic -no-reboot -nic none \
        -kernel "$kdir/vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 oops=panic loglevel=4 $*" \
        </dev/null >"$log" 2>&1
rc=$?
# the serial console is CRLF
sed -i 's/\r$//' "$log"
exit $rc
