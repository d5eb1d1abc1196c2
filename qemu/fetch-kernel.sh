#!/bin/bash
# Download (once) a Debian cloud kernel package and extract vmlinuz + veth.ko.
#
# usage: qemu/fetch-kernel.sh SUITE            (bookworm | trixie | bullseye)
# prints: the directory holding vmlinuz, veth.ko, config, release
#
# A private apt configuration per suite (own sources.list, lists and cache
# under $CACHE/apt/SUITE) is used for `apt-get update` / `apt-get download`:
# the machine's /etc/apt is never modified and its lists are never used, so
# the result is the same on a fresh CI machine. Release files are verified
# with /usr/share/keyrings/debian-archive-keyring.gpg (package
# debian-archive-keyring; bookworm's version already holds the trixie keys).
#
# env: SIRQTOP_KERNEL_CACHE  cache dir (default <repo>/.cache/kernels)
#      DEBIAN_MIRROR         (default: first deb.debian.org-style URI in
#                            /etc/apt/sources.list*, else http://deb.debian.org/debian)
#      DEBIAN_SECURITY_MIRROR (default: http://deb.debian.org/debian-security)
#      SIRQTOP_KERNEL_REFRESH=1  re-run apt-get update even if lists are cached
set -euo pipefail

suite=${1:?usage: fetch-kernel.sh SUITE}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${SIRQTOP_KERNEL_CACHE:-$repo/.cache/kernels}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "fetch-kernel[$suite]: $*" >&2; }

need() { # need CMD PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >&2
}
need xz xz-utils
need dpkg-deb dpkg
[ -r "$keyring" ] || need gpgv debian-archive-keyring
[ -r "$keyring" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y debian-archive-keyring >&2

if [ -z "${DEBIAN_MIRROR:-}" ]; then
    DEBIAN_MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
    DEBIAN_MIRROR=${DEBIAN_MIRROR%/}
    DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fi
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

apt_dir=$cache/apt/$suite
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/debs"
cat > "$apt_dir/sources.list.new" <<SRC
deb [signed-by=$keyring] $DEBIAN_MIRROR $suite main
deb [signed-by=$keyring] $DEBIAN_MIRROR $suite-updates main
deb [signed-by=$keyring] $DEBIAN_SECURITY_MIRROR $suite-security main
SRC
if ! cmp -s "$apt_dir/sources.list.new" "$apt_dir/sources.list" 2>/dev/null; then
    mv "$apt_dir/sources.list.new" "$apt_dir/sources.list"
    rm -f "$apt_dir/lists/"*Packages* "$apt_dir/lists/"*Release*
else
    rm -f "$apt_dir/sources.list.new"
fi

apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::State::status=/dev/null"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures::=amd64"
    -o "Acquire::Languages=none"
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false"
    -o "Debug::NoLocking=true"
    -o "APT::Sandbox::User=root"
)

stamp=$apt_dir/updated
if [ ! -e "$stamp" ] || [ "${SIRQTOP_KERNEL_REFRESH:-0}" = 1 ] ||
   [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
    log "apt-get update ($DEBIAN_MIRROR $suite, $suite-updates, $suite-security)"
    if apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 &&
       ! grep -qE '^(W|E):' "$apt_dir/update.log"; then
        touch "$stamp"
    elif ls "$apt_dir/lists/"*Packages* >/dev/null 2>&1; then
        log "apt-get update had problems, using cached lists:"; cat "$apt_dir/update.log" >&2
    else
        cat "$apt_dir/update.log" >&2; log "apt-get update failed"; exit 1
    fi
fi

# The metapackage linux-image-cloud-amd64 depends on the suite's current ABI.
pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-cloud-amd64 |
      awk '/Depends: linux-image-.*-cloud-amd64/ {print $2; exit}')
[ -n "$pkg" ] || { log "cannot resolve linux-image-cloud-amd64 in $suite"; exit 1; }
ver=$(apt-cache "${apt_opts[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
release=${pkg#linux-image-}
out=$cache/$release
if [ -s "$out/vmlinuz" ] && [ -s "$out/veth.ko" ] && [ -s "$out/package" ]; then
    log "cached: $pkg $ver"
    echo "$out"; exit 0
fi

log "apt-get download $pkg=$ver"
( cd "$cache/debs" && apt-get "${apt_opts[@]}" download "$pkg=$ver" >&2 )
deb=$(ls -t "$cache/debs/${pkg}_"*.deb | head -n1)
tmp=$(mktemp -d "$cache/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# extract only what is needed (the whole package is ~100 MB unpacked)
dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$tmp" --wildcards \
        "./boot/vmlinuz-*" "./boot/config-*" "./boot/System.map-*" \
        "./lib/modules/*/kernel/drivers/net/veth.ko*" \
        "./usr/lib/modules/*/kernel/drivers/net/veth.ko*" 2>/dev/null || true
mkdir -p "$out.tmp"
cp "$tmp"/boot/vmlinuz-* "$out.tmp/vmlinuz"
cp "$tmp"/boot/config-* "$out.tmp/config"
cp "$tmp"/boot/System.map-* "$out.tmp/System.map" 2>/dev/null || true
ko=$(find "$tmp" -name 'veth.ko*' | head -n1)
[ -n "$ko" ] || { log "veth.ko not found in $deb"; exit 1; }
case "$ko" in
    *.xz)  xz -dc "$ko"   > "$out.tmp/veth.ko" ;;
    *.zst) zstd -dc "$ko" > "$out.tmp/veth.ko" ;;
    *.gz)  gzip -dc "$ko" > "$out.tmp/veth.ko" ;;
    *)     cp "$ko" "$out.tmp/veth.ko" ;;
esac
echo "$release" > "$out.tmp/release"
echo "$pkg $ver" > "$out.tmp/package"
rm -rf "$out"; mv "$out.tmp" "$out"
log "extracted $pkg $ver -> $out"
echo "$out"
