#!/bin/bash
# Download (once) a Debian cloud kernel package and extract vmlinuz and the
# modules the guests' scenarios need.
#
# usage: qemu/fetch-kernel.sh SUITE            (bookworm | trixie | bullseye)
# prints: the directory holding vmlinuz, config, release, modules/*.ko and
#         modules.load (the modules to insmod, dependencies first)
#
# The package ships no modules.dep (depmod makes it at install time): the
# dependencies come from each module's own .modinfo "depends=" field. A wanted
# module the kernel has built in or does not have is simply not listed; the
# guest tells the two apart (/sys/module) and makes only the scenarios that
# need it n/a.
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

# veth for every scenario; the data-path scenarios (qemu/init.sh) need the rest
MODULES="veth macvlan ipvlan ipip 8021q vxlan sch_ingress cls_bpf"

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
if [ -s "$out/vmlinuz" ] && [ -s "$out/package" ] &&
   [ "$(cat "$out/modules.wanted" 2>/dev/null)" = "$MODULES" ]; then
    log "cached: $pkg $ver"
    echo "$out"; exit 0
fi

deb=$(ls -t "$cache/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
    log "apt-get download $pkg=$ver"
    ( cd "$cache/debs" && apt-get "${apt_opts[@]}" download "$pkg=$ver" >&2 )
    deb=$(ls -t "$cache/debs/${pkg}_"*.deb | head -n1)
fi
tmp=$(mktemp -d "$cache/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# the kernel, its config and the module tree (~25 MB compressed; only the wanted
# modules are kept)
dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$tmp" --wildcards \
        "./boot/vmlinuz-*" "./boot/config-*" "./boot/System.map-*" \
        "./lib/modules/*/kernel/*" "./usr/lib/modules/*/kernel/*" 2>/dev/null || true
rm -rf "$out.tmp"
mkdir -p "$out.tmp/modules"
cp "$tmp"/boot/vmlinuz-* "$out.tmp/vmlinuz"
cp "$tmp"/boot/config-* "$out.tmp/config"
cp "$tmp"/boot/System.map-* "$out.tmp/System.map" 2>/dev/null || true

ko_path() { # ko_path NAME: the module file of NAME (file names may use - for _)
    find "$tmp" -type f \( -name "$1.ko*" -o -name "$(echo "$1" | tr _ -).ko*" \) | head -n1
}
unpack() { # unpack FILE DEST
    case "$1" in
        *.xz)  xz -dc "$1"   > "$2" ;;
        *.zst) zstd -dc "$1" > "$2" ;;
        *.gz)  gzip -dc "$1" > "$2" ;;
        *)     cp "$1" "$2" ;;
    esac
}
: > "$out.tmp/modules.load"
add_module() { # add_module NAME: its dependencies first, then itself (once)
    local name=$1 ko dep
    grep -qx "$name" "$out.tmp/modules.load" && return 0
    [ -e "$out.tmp/modules/$name.ko" ] && return 0   # being added (no cycles in practice)
    ko=$(ko_path "$name")
    if [ -z "$ko" ]; then
        log "module $name: not in the package (built in or not configured)"
        return 0
    fi
    unpack "$ko" "$out.tmp/modules/$name.ko"
    # .modinfo holds NUL-terminated key=value strings
    for dep in $(tr '\0' '\n' < "$out.tmp/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '); do
        add_module "$dep"
    done
    echo "$name" >> "$out.tmp/modules.load"
}
for m in $MODULES; do add_module "$m"; done
[ -s "$out.tmp/modules/veth.ko" ] || { log "veth.ko not found in $deb"; exit 1; }
echo "$MODULES" > "$out.tmp/modules.wanted"
echo "$release" > "$out.tmp/release"
echo "$pkg $ver" > "$out.tmp/package"
rm -rf "$out"; mv "$out.tmp" "$out"
log "extracted $pkg $ver -> $out (modules: $(tr '\n' ' ' < "$out/modules.load"))"
echo "$out"
