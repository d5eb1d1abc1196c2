#!/usr/bin/env bash
# Builds the sirqtop container image offline: the release binary (debug info stripped)
# and exactly the shared libraries `ldd` says it links, on FROM scratch.
#
#   deploy/build-image.sh [TAG]        default TAG: sirqtop:<version from Cargo.toml>
#
# SIRQTOP_BIN=path uses an already built binary; DOCKER_HOST selects the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tag=${1:-sirqtop:$version}
bin=${SIRQTOP_BIN:-target/release/sirqtop}
if [ -z "${SIRQTOP_BIN:-}" ]; then
  cargo build --release --locked
fi
[ -x "$bin" ] || { echo "build-image.sh: $bin is not an executable" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/host" "$ctx/rootfs/tmp"
objcopy --strip-debug "$bin" "$ctx/rootfs/usr/bin/sirqtop"
# "libelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x...)" and the loader's own line.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || { echo "build-image.sh: ldd listed no libraries for $bin" >&2; exit 1; }
for lib in $libs; do
  cp -L --parents "$lib" "$ctx/rootfs/"
done
cp deploy/Dockerfile "$ctx/"
# The classic builder needs no buildx plugin and nothing from a registry for FROM scratch.
DOCKER_BUILDKIT=0 docker build --quiet --label "org.opencontainers.image.version=$version" \
  -t "$tag" "$ctx" >/dev/null
echo "$tag"
