#!/usr/bin/env bash
# Builds the emulated Xen-on-ARM test host from Debian bookworm packages, into the cache:
#   - QEMU 7.2's qemu-system-aarch64 (qemu-system-arm, the amd64 build), extracted, never installed;
#   - Xen 4.17 for arm64 (xen-hypervisor-4.17-arm64: /boot/xen-4.17-arm64, an arm64 Image);
#   - an arm64 Linux dom0 (linux-image-*-arm64) and its initramfs built only from arm64 packages:
#     busybox, the Xen tools and daemons, the vif hotplug script's tools, curl, wrk, the bridge,
#     netback and virtio-console modules, and the same /init as the x86_64 host (testbed/dom0).
# arm64 packages come through a private apt configuration in the cache (the host's Debian sources,
# arm64 lists) and are extracted with dpkg-deb -x: nothing is installed on the host.
# Idempotent, with stamps like ../setup.sh; the initramfs is rebuilt when this script, ../lib.sh,
# lib.sh or anything under ../dom0 changes.
set -euo pipefail
ARM64_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
source "$ARM64_DIR/../lib.sh"
# shellcheck source=testbed/arm64/lib.sh
source "$ARM64_DIR/lib.sh"

QEMU_VERSION_PATTERN='1:7.2+'
QEMU_PACKAGES=(qemu-system-arm qemu-system-common qemu-system-data)
XEN_PACKAGE=xen-hypervisor-4.17-arm64
KERNEL_METAPACKAGE=linux-image-arm64
DOM0_WHOLE_PACKAGES=(xen-utils-4.17 xen-utils-common xenstore-utils netbase)
DOM0_PROGRAM_PACKAGES=(busybox-static bash util-linux coreutils iproute2 curl wrk)
DOM0_PROGRAMS=(/bin/bash /usr/bin/flock /usr/bin/stat /bin/ip /sbin/bridge /usr/bin/curl /usr/bin/wrk)
# virtio_mmio + virtio_console carry the results line (/dev/hvc1); dependencies come with modinfo.
DOM0_MODULES=(xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc llc stp bridge xen-netback
    virtio_mmio virtio_console)
LIBDIR=usr/lib/aarch64-linux-gnu
PATH=$PATH:/usr/sbin:/sbin

fingerprint() { cat "$@" | sha256sum | cut -c1-16; }
stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
deb_file() { printf '%s/%s_%s_%s.deb' "$DEBS_DIR" "$1" "${2//:/%3a}" "$3"; }
inputs_fingerprint() {
    (cd "$TESTBED_DIR" && find lib.sh arm64 dom0 -type f | LC_ALL=C sort | xargs cat) | sha256sum | cut -c1-16
}

# --- apt: the host's for QEMU (an amd64 program), the private one for arm64 --------------------
arm64_apt_options
apt_arm64() { apt-get "${ARM64_APT_OPTIONS[@]}" "$@"; }
apt_cache_arm64() { apt-cache "${ARM64_APT_OPTIONS[@]}" "$@"; }
apt_cache_host() { apt-cache "$@"; }

setup_private_apt() {
    [ -f "$ARM64_APT/.updated" ] && return 0
    log "arm64: private apt configuration in $ARM64_APT"
    mkdir -p "$ARM64_APT"/etc/apt/{sources.list.d,preferences.d,apt.conf.d} \
        "$ARM64_APT"/var/lib/apt/lists/partial "$ARM64_APT"/var/cache/apt/archives/partial "$ARM64_APT"/var/lib/dpkg
    : > "$ARM64_APT/var/lib/dpkg/status"
    # The host's Debian sources (those signed with Debian's archive keys), nothing else.
    local file found=0
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] && grep -q 'debian-archive-keyring\|^deb .*/debian' "$file" || continue
        cp "$file" "$ARM64_APT/etc/apt/sources.list.d/"
        found=1
    done
    [ "$found" = 1 ] || die "no Debian apt sources on this host to take arm64 packages from"
    apt_arm64 -q update >/dev/null || die "apt-get update (arm64) failed"
    touch "$ARM64_APT/.updated"
}

# Prints "PKG name version arch" for each candidate and "DEP alternatives" for its library
# dependencies (lib*, zlib1g), with apt-cache command $1.
apt_show() {
    local cache=$1; shift
    "$cache" show --no-all-versions "$@" 2>/dev/null | awk '
        /^Package:/ { pkg = $2 } /^Version:/ { ver = $2 } /^Architecture:/ { arch = $2 }
        /^(Pre-)?Depends:/ {
            sub(/^[^:]*: */, ""); n = split($0, groups, /, */)
            for (i = 1; i <= n; i++) {
                gsub(/ *\([^)]*\)/, "", groups[i]); gsub(/:any/, "", groups[i]); gsub(/ /, "", groups[i])
                if (groups[i] ~ /^(lib|zlib1g)/) deps = deps " " groups[i]
            }
        }
        /^$/ { if (pkg != "") print "PKG", pkg, ver, arch; split(deps, d, " ")
               for (k in d) print "DEP", d[k]; pkg = ""; deps = "" }
        END { if (pkg != "") { print "PKG", pkg, ver, arch; split(deps, d, " ")
               for (k in d) print "DEP", d[k] } }' || true
}

# resolve OUT CACHE EXCLUDE ROOT...: the roots and the closure of their library dependencies.
resolve() {
    local out=$1 cache=$2 exclude=$3; shift 3
    local -A seen=()
    local queue=("$@") next kind a b c name alternatives
    : > "$out.tmp"
    for name in "$@"; do seen[${name%%=*}]=1; done
    while [ ${#queue[@]} -gt 0 ]; do
        next=()
        while read -r kind a b c; do
            case $kind in
            PKG) [[ $a =~ $exclude ]] || echo "$a $b $c" >> "$out.tmp" ;;
            DEP) IFS='|' read -r -a alternatives <<< "$a"
                 for name in "${alternatives[@]}"; do
                     [ -n "${seen[$name]:-}" ] && continue 2
                 done
                 name=${alternatives[0]}
                 seen[$name]=1; next+=("$name") ;;
            esac
        done < <(apt_show "$cache" "${queue[@]}")
        queue=("${next[@]}")
    done
    sort -u "$out.tmp" > "$out" && rm -f "$out.tmp"
}

resolve_manifests() {
    local spec
    spec=$({ declare -p QEMU_VERSION_PATTERN QEMU_PACKAGES XEN_PACKAGE KERNEL_METAPACKAGE \
        DOM0_WHOLE_PACKAGES DOM0_PROGRAM_PACKAGES; declare -f apt_show resolve; } | sha256sum | cut -c1-16)
    stamp_matches "$ARM64_MANIFESTS/spec" "$spec" && return 0
    log "arm64: resolving package versions"
    mkdir -p "$ARM64_MANIFESTS"
    local roots=() package version kernel
    for package in "${QEMU_PACKAGES[@]}"; do
        version=$(apt-cache madison "$package" | awk -v pat="$QEMU_VERSION_PATTERN" -F' *[|] *' \
            'index($2, pat) == 1 { print $2; exit }')
        [ -n "$version" ] || die "no QEMU 7.2 version of $package in the host's apt lists (apt-get update?)"
        roots+=("$package=$version")
    done
    resolve "$ARM64_MANIFESTS/qemu.list" apt_cache_host '^libc6$' "${roots[@]}"
    resolve "$ARM64_MANIFESTS/xen.list" apt_cache_arm64 '^lib' "$XEN_PACKAGE"
    kernel=$(apt_cache_arm64 show --no-all-versions "$KERNEL_METAPACKAGE" \
        | awk -F': ' '/^Depends:/ { split($2, d, /[ ,]/); print d[1]; exit }')
    [ -n "$kernel" ] || die "cannot resolve $KERNEL_METAPACKAGE (arm64)"
    resolve "$ARM64_MANIFESTS/kernel.list" apt_cache_arm64 '^lib' "$kernel"
    resolve "$ARM64_MANIFESTS/dom0.list" apt_cache_arm64 '^$' "${DOM0_WHOLE_PACKAGES[@]}" "${DOM0_PROGRAM_PACKAGES[@]}"
    local set
    for set in qemu xen kernel dom0; do
        grep -q . "$ARM64_MANIFESTS/$set.list" || die "resolving the arm64 host's $set packages found nothing"
    done
    echo "$spec" > "$ARM64_MANIFESTS/spec"
}

download_missing() {
    local list=$1 getter=$2 missing=() package version arch
    mkdir -p "$DEBS_DIR"
    while read -r package version arch; do
        [ -f "$(deb_file "$package" "$version" "$arch")" ] || missing+=("$package:$arch=$version")
    done < "$list"
    [ ${#missing[@]} -eq 0 ] && return 0
    log "arm64: downloading ${#missing[@]} packages ($(basename "$list" .list)) into $DEBS_DIR"
    (cd "$DEBS_DIR" && "$getter" -q download "${missing[@]}" >/dev/null) || die "apt-get download failed"
}
apt_get_host() { apt-get -o APT::Sandbox::User=root "$@"; }

package_deb() { # NAME LIST
    local package version arch
    read -r package version arch < <(awk -v p="$1" '$1 == p' "$2")
    [ -n "${package:-}" ] || die "package $1 is not in $2"
    deb_file "$package" "$version" "$arch"
}

extract_list() {
    local list=$1 dest=$2 package version arch
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    while read -r package version arch; do
        dpkg-deb -x "$(deb_file "$package" "$version" "$arch")" "$dest.tmp"
    done < "$list"
    rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

setup_qemu() {
    local key; key=$(fingerprint "$ARM64_MANIFESTS/qemu.list")
    stamp_matches "$ARM64_QEMU_ROOT/.stamp" "$key" && [ -x "$ARM64_QEMU_BIN" ] && return 0
    log "arm64: extracting qemu-system-aarch64 7.2 into $ARM64_QEMU_ROOT"
    extract_list "$ARM64_MANIFESTS/qemu.list" "$ARM64_QEMU_ROOT"
    arm64_qemu_command
    log "  $("${QEMU_COMMAND[@]}" --version | head -1)" || die "the extracted QEMU does not start"
    echo "$key" > "$ARM64_QEMU_ROOT/.stamp"
}

setup_xen() {
    local key; key=$(fingerprint "$ARM64_MANIFESTS/xen.list")
    stamp_matches "$ARM64_CACHE/xen/.stamp" "$key" && [ -f "$ARM64_XEN" ] && return 0
    log "arm64: extracting the Xen 4.17 hypervisor"
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$(package_deb "$XEN_PACKAGE" "$ARM64_MANIFESTS/xen.list")" "$tmp"
    mkdir -p "$ARM64_CACHE/xen"
    cp "$tmp"/boot/xen-4.17-arm64 "$ARM64_XEN"
    rm -rf "$tmp"
    echo "$key" > "$ARM64_CACHE/xen/.stamp"
}

setup_kernel() {
    local key; key=$(fingerprint "$ARM64_MANIFESTS/kernel.list" <(printf '%s\n' "${DOM0_MODULES[@]}"))
    stamp_matches "$ARM64_CACHE/dom0/kernel.stamp" "$key" && [ -f "$ARM64_DOM0_KERNEL" ] && return 0
    local deb; deb=$(awk '{print $1}' "$ARM64_MANIFESTS/kernel.list" | grep '^linux-image-')
    log "arm64: extracting the dom0 kernel and modules from $deb"
    local tmp; tmp=$(mktemp -d)
    dpkg-deb --fsys-tarfile "$(package_deb "$deb" "$ARM64_MANIFESTS/kernel.list")" | tar -x -C "$tmp" \
        --wildcards './boot/vmlinuz-*' './lib/modules/*/modules.*' './lib/modules/*/kernel/net/*' \
        './lib/modules/*/kernel/drivers/xen/*' './lib/modules/*/kernel/drivers/net/xen-netback/*' \
        './lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/drivers/char/*'
    local release; release=$(basename "$(echo "$tmp"/lib/modules/*)")
    local out=$ARM64_CACHE/dom0/modules.tmp
    rm -rf "$out"; mkdir -p "$out/$release/kernel"
    cp "$tmp/lib/modules/$release"/modules.{order,builtin,builtin.modinfo} "$out/$release/"
    local todo=("${DOM0_MODULES[@]}") module file dep relative
    local -A done_modules=()
    while [ ${#todo[@]} -gt 0 ]; do
        module=${todo[0]}; todo=("${todo[@]:1}")
        [ -n "${done_modules[$module]:-}" ] && continue
        done_modules[$module]=1
        file=$(find "$tmp/lib/modules/$release/kernel" \( -name "$module.ko" -o -name "${module//-/_}.ko" \
            -o -name "${module//_/-}.ko" \) | head -1)
        [ -n "$file" ] || die "kernel module $module not found in $deb"
        relative=${file#"$tmp/lib/modules/$release/"}
        mkdir -p "$out/$release/$(dirname "$relative")"
        cp "$file" "$out/$release/$relative"
        for dep in $(modinfo -F depends "$file" | tr ',' ' '); do todo+=("$dep"); done
    done
    mkdir -p "$ARM64_CACHE/dom0"
    rm -rf "$ARM64_CACHE/dom0/modules"; mv "$out" "$ARM64_CACHE/dom0/modules"
    cp "$tmp/boot/vmlinuz-$release" "$ARM64_DOM0_KERNEL"
    echo "$release" > "$ARM64_CACHE/dom0/kernel.release"
    rm -rf "$tmp"
    echo "$key" > "$ARM64_CACHE/dom0/kernel.stamp"
}

# Copies the shared libraries every ELF file under ROOT needs from PKGROOT into ROOT/$LIBDIR.
copy_needed_libraries() {
    local root=$1 pkgroot=$2 soname dir found
    local -A copied=()
    local todo; mapfile -t todo < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \))
    while [ ${#todo[@]} -gt 0 ]; do
        local next=()
        for soname in $(for f in "${todo[@]}"; do readelf -d "$f" 2>/dev/null; done \
                        | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u); do
            [ -n "${copied[$soname]:-}" ] && continue
            copied[$soname]=1
            found=""
            for dir in lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu usr/lib/xen-4.17/lib; do
                if [ -e "$pkgroot/$dir/$soname" ]; then found=$pkgroot/$dir/$soname; break; fi
            done
            [ -n "$found" ] || die "library $soname (needed in dom0) is in none of the extracted arm64 packages"
            cp -L "$found" "$root/$LIBDIR/$soname"
            next+=("$root/$LIBDIR/$soname")
        done
        todo=("${next[@]}")
    done
}

# Runs the amd64 busybox-static of the version the arm64 dom0 gets (downloaded if missing).
host_busybox() {
    local version deb dir=$ARM64_CACHE/host-busybox
    version=$(awk '$1 == "busybox-static" { print $2 }' "$ARM64_MANIFESTS/dom0.list")
    deb=$(deb_file busybox-static "$version" amd64)
    if [ ! -x "$dir/$version/bin/busybox" ]; then
        [ -f "$deb" ] || (cd "$DEBS_DIR" && apt_get_host -q download "busybox-static:amd64=$version" >/dev/null) \
            || die "cannot download busybox-static $version (amd64) for its applet list"
        rm -rf "$dir"; mkdir -p "$dir/$version"
        dpkg-deb -x "$deb" "$dir/$version"
    fi
    "$dir/$version/bin/busybox" "$@"
}

build_initramfs() {
    local release key inputs
    inputs=$(inputs_fingerprint)
    release=$(cat "$ARM64_CACHE/dom0/kernel.release")
    key=$(fingerprint "$ARM64_MANIFESTS/dom0.list" "$ARM64_CACHE/dom0/kernel.stamp" <(echo "$inputs"))
    stamp_matches "$ARM64_CACHE/dom0/initramfs.stamp" "$key" && [ -f "$ARM64_DOM0_INITRAMFS" ] && return 0
    log "arm64: building the dom0 initramfs"
    local started=$SECONDS pkgroot=$ARM64_CACHE/dom0/pkgroot pkgkey
    pkgkey=$(fingerprint "$ARM64_MANIFESTS/dom0.list")
    if ! stamp_matches "$pkgroot.stamp" "$pkgkey"; then
        extract_list "$ARM64_MANIFESTS/dom0.list" "$pkgroot"
        echo "$pkgkey" > "$pkgroot.stamp"
    fi
    local root=$ARM64_CACHE/dom0/root.tmp
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,etc,dev,proc,sys,run,tmp,root,mnt} "$root"/usr/{bin,sbin,lib64,local/bin} \
             "$root/$LIBDIR" "$root"/var/{lib/xen,lib/xenstored,log/xen/console,lock}
    ln -s usr/lib "$root/lib"
    ln -s ../run "$root/var/run"
    cp "$pkgroot/bin/busybox" "$root/bin/busybox"
    # The applet list comes from the amd64 build of the same busybox-static version (the arm64
    # one does not run here).
    local applet
    for applet in $(host_busybox --list-full); do
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done
    local package program
    for package in "${DOM0_WHOLE_PACKAGES[@]}"; do
        dpkg-deb -x "$(package_deb "$package" "$ARM64_MANIFESTS/dom0.list")" "$root"
    done
    rm -rf "$root"/usr/share/{doc,man,lintian,bash-completion} "$root"/usr/lib/xen-4.17/lib/python
    for program in "${DOM0_PROGRAMS[@]}"; do
        [ -f "$pkgroot/$program" ] || die "$program is not in the arm64 dom0 packages"
        rm -f "$root"/{bin,sbin,usr/bin,usr/sbin}/"$(basename "$program")"
        cp "$pkgroot/$program" "$root/$program"
    done
    local link
    while IFS= read -r link; do
        target=/usr/lib/xen-4.17/bin/$(basename "$link")
        if [ -e "$root$target" ]; then ln -sfn "$target" "$link"; else rm -f "$link"; fi
    done < <(find "$root" -type l -lname '*xen-utils-wrapper')
    cp -L "$pkgroot/lib/ld-linux-aarch64.so.1" "$root/$LIBDIR/"
    ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$root/usr/lib/ld-linux-aarch64.so.1"
    copy_needed_libraries "$root" "$pkgroot"
    echo "/$LIBDIR" > "$root/etc/ld.so.conf"
    mkdir -p "$root/usr/lib/modules"
    cp -a "$ARM64_CACHE/dom0/modules/$release" "$root/usr/lib/modules/"
    depmod -b "$root" "$release"
    cp "$TESTBED_DIR/dom0/init" "$root/init"
    cp "$TESTBED_DIR"/dom0/bin/* "$root/usr/local/bin/"
    chmod 0755 "$root/init" "$root"/usr/local/bin/*
    cp -r "$TESTBED_DIR"/dom0/etc/. "$root/etc/"
    cp "$ARM64_DIR/testbed-arch.conf" "$root/etc/testbed-arch.conf"
    (cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --quiet -o -0 -H newc -R 0:0 \
        | gzip -6 > "$ARM64_DOM0_INITRAMFS.tmp")
    mv "$ARM64_DOM0_INITRAMFS.tmp" "$ARM64_DOM0_INITRAMFS"
    rm -rf "$root"
    echo "$key" > "$ARM64_CACHE/dom0/initramfs.stamp"
    log "  $(du -h "$ARM64_DOM0_INITRAMFS" | cut -f1) in $((SECONDS - started)) s"
}

main() {
    local ready; ready=$(inputs_fingerprint)
    if stamp_matches "$ARM64_CACHE/ready" "$ready" && [ -x "$ARM64_QEMU_BIN" ] && [ -f "$ARM64_XEN" ] \
            && [ -f "$ARM64_DOM0_KERNEL" ] && [ -f "$ARM64_DOM0_INITRAMFS" ]; then
        log "arm64 test host is up to date (cache: $ARM64_CACHE)"
        return 0
    fi
    mkdir -p "$ARM64_CACHE"
    exec 9> "$ARM64_CACHE/.lock"
    flock 9
    for tool in cpio readelf depmod modinfo dpkg-deb gzip; do
        command -v "$tool" >/dev/null || die "$tool is missing (run testbed/setup.sh first, it installs the host tools)"
    done
    rm -f "$ARM64_CACHE/ready"
    setup_private_apt
    resolve_manifests
    download_missing "$ARM64_MANIFESTS/qemu.list" apt_get_host
    local list
    for list in xen kernel dom0; do download_missing "$ARM64_MANIFESTS/$list.list" apt_arm64; done
    setup_qemu
    setup_xen
    setup_kernel
    build_initramfs
    echo "$ready" > "$ARM64_CACHE/ready"
    log "arm64 test host ready"
}

main "$@"
