#!/usr/bin/env bash
# Builds the emulated Xen test host from Debian bookworm packages, into the cache (see lib.sh):
#   - QEMU 7.2 (qemu-system-x86 and its libraries, BIOS and data), extracted, never installed;
#   - Xen 4.17 (the gunzipped multiboot1 hypervisor ELF);
#   - the Debian kernel that runs as PV dom0, and the dom0 initramfs: busybox, the Xen tools and
#     daemons, the vif hotplug script's real tools, curl, wrk and the bridge/netback modules.
# Idempotent: a second run with everything in place checks a few stamps and returns at once.
# Only what changed is redone; the initramfs is rebuilt whenever testbed/setup.sh, lib.sh or
# anything under testbed/dom0/ changes (stamp by hash). Nothing is downloaded twice.
#
# usage: testbed/setup.sh [--peer]
#   --peer  also build the benchmark peer (`make bench`): a Linux PVH domU from the same Debian
#           kernel with an initramfs holding busybox and nginx, into <cache>/peer/ (vmlinuz,
#           initramfs.cpio.gz). Only when asked, so that `make test` never pays for it.
set -euo pipefail
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- What the test host is made of -----------------------------------------------------------
# QEMU must be 7.2 (bookworm's): QEMU 10 breaks Linux PVH guests under Xen (see docs/testbed.md).
QEMU_VERSION_PATTERN='1:7.2+*'
QEMU_PACKAGES=(qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu)
XEN_PACKAGES=(xen-hypervisor-4.17-amd64)
KERNEL_METAPACKAGE=linux-image-amd64
# Packages copied whole into the initramfs (minus docs and python).
DOM0_WHOLE_PACKAGES=(xen-utils-4.17 xen-utils-common xenstore-utils netbase)
# Single programs taken from their Debian packages. Debian's /etc/xen/scripts/vif-bridge is bash
# and calls flock, `stat -L -c` and iproute2's ip, which busybox's versions do not cover.
DOM0_PROGRAM_PACKAGES=(busybox-static bash util-linux coreutils iproute2 curl wrk)
DOM0_PROGRAMS=(/bin/bash /usr/bin/flock /usr/bin/stat /bin/ip /sbin/bridge /usr/bin/curl /usr/bin/wrk)
# Module dependencies are added automatically (modinfo).
DOM0_MODULES=(xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc llc stp bridge xen-netback)
# The benchmark peer (--peer): busybox and nginx with their libraries (its own glibc: the guest
# runs nothing of dom0's); the kernel is dom0's, plus the one module a domU needs for its vif.
PEER_PACKAGES=(busybox-static nginx)
PEER_PROGRAMS=(/usr/sbin/nginx)
PEER_MODULE=drivers/net/xen-netfront.ko
PEER_DIR=$CACHE/peer

MANIFESTS=$CACHE/manifests
# depmod and ldconfig live in /sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

# --- Small helpers -----------------------------------------------------------------------------
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_update_once() {
    [ -n "${APT_UPDATED:-}" ] && return 0
    log "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
}

# Host programs the build needs; installed with apt-get only when missing.
ensure_host_tools() {
    local missing=() tool package
    for tool in cpio:cpio readelf:binutils depmod:kmod modinfo:kmod gzip:gzip ldconfig:libc-bin \
                dpkg-deb:dpkg apt-get:apt sha256sum:coreutils; do
        package=${tool#*:}
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing host tools: ${missing[*]}"
    # apt's chatter goes to a file, shown only if the install fails (after one apt-get update).
    local output; output=$(mktemp)
    if ! apt_install "${missing[@]}" > "$output" 2>&1; then
        apt_update_once
        apt_install "${missing[@]}" > "$output" 2>&1 || { cat "$output" >&2; die "cannot install ${missing[*]}"; }
    fi
    rm -f "$output"
}
apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Prints "package version architecture" for the candidate of each argument (name or name=version)
# and, on a second kind of line, "DEP alternative|alternative|..." for each library dependency.
apt_show() {
    apt-cache show --no-all-versions "$@" 2>/dev/null | awk '
        /^Package:/ { pkg = $2 }
        /^Version:/ { ver = $2 }
        /^Architecture:/ { arch = $2 }
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

# resolve OUT EXCLUDE ROOT... : the roots plus the closure of their library dependencies (Depends
# and Pre-Depends on lib* packages, and zlib1g, the one library package not named lib*), with
# candidate versions, into OUT ("package version arch").
# Of alternatives "a | b" the first that exists is taken. EXCLUDE is a regex of package names to
# leave out (their libraries come from elsewhere).
resolve() {
    local out=$1 exclude=$2; shift 2
    local -A seen=() fallback=()
    local queue=("$@") next=() kind a b c name alternatives alt
    : > "$out.tmp"
    for name in "$@"; do seen[${name%%=*}]=1; done
    while [ ${#queue[@]} -gt 0 ]; do
        next=()
        local -A found=()
        while read -r kind a b c; do
            case $kind in
            PKG) found[$a]=1; [[ $a =~ $exclude ]] || echo "$a $b $c" >> "$out.tmp" ;;
            DEP) IFS='|' read -r -a alternatives <<< "$a"
                 name=${alternatives[0]}
                 [ -n "${seen[$name]:-}" ] && continue
                 seen[$name]=1; next+=("$name")
                 fallback[$name]="${alternatives[*]:1}" ;;
            esac
        done < <(apt_show "${queue[@]}")
        # An alternative that does not exist (virtual or gone): try the next one.
        for name in "${queue[@]}"; do
            name=${name%%=*}
            [ -n "${found[$name]:-}" ] && continue
            for alt in ${fallback[$name]:-}; do
                if [ -z "${seen[$alt]:-}" ]; then seen[$alt]=1; next+=("$alt"); fallback[$alt]=""; break; fi
            done
        done
        unset found
        queue=("${next[@]}")
    done
    sort -u "$out.tmp" > "$out" && rm -f "$out.tmp"
}

deb_file() { # package version arch -> the file name apt-get download gives it
    printf '%s/%s_%s_%s.deb' "$DEBS_DIR" "$1" "${2//:/%3a}" "$3"
}

# Fingerprint of what a build step depends on, for its stamp.
fingerprint() { cat "$@" | sha256sum | cut -c1-16; }

# What the initramfs build reads: this script, lib.sh and everything under dom0/.
inputs_fingerprint() {
    (cd "$TESTBED_DIR" && find setup.sh lib.sh dom0 -type f | LC_ALL=C sort | xargs cat) \
        | sha256sum | cut -c1-16
}

stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# --- Step 1: which packages, at which versions (resolved once, then read from the cache) -------
# The package lists and the resolver: when either changes, versions are resolved again.
package_spec() {
    { declare -p QEMU_VERSION_PATTERN QEMU_PACKAGES XEN_PACKAGES KERNEL_METAPACKAGE \
        DOM0_WHOLE_PACKAGES DOM0_PROGRAM_PACKAGES; declare -f apt_show resolve; } | sha256sum | cut -c1-16
}

resolve_manifests() {
    local spec; spec=$(package_spec)
    stamp_matches "$MANIFESTS/spec" "$spec" && return 0
    log "resolving package versions (apt-cache)"
    mkdir -p "$MANIFESTS"
    apt-cache show --no-all-versions xen-utils-4.17 >/dev/null 2>&1 || apt_update_once

    local qemu_roots=() package version
    for package in "${QEMU_PACKAGES[@]}"; do
        case $package in
        qemu-*)
            # The newest 7.2 build, whatever else (e.g. backports) offers.
            version=$(apt-cache madison "$package" | awk -v pat="$QEMU_VERSION_PATTERN" -F' *[|] *' '
                { v = $2; p = pat; sub(/\*$/, "", p) } index(v, p) == 1 { print v; exit }')
            [ -n "$version" ] || die "no QEMU 7.2 version of $package in apt's lists"
            qemu_roots+=("$package=$version") ;;
        *) qemu_roots+=("$package") ;;
        esac
    done
    # The host's glibc (bookworm's) runs QEMU; every other library comes from the cache.
    resolve "$MANIFESTS/qemu.list" '^libc6$' "${qemu_roots[@]}"
    resolve "$MANIFESTS/xen.list" '^$' "${XEN_PACKAGES[@]}"
    local kernel
    kernel=$(apt-cache show --no-all-versions "$KERNEL_METAPACKAGE" \
        | awk -F': ' '/^Depends:/ { split($2, d, /[ ,]/); print d[1]; exit }')
    [ -n "$kernel" ] || die "cannot resolve $KERNEL_METAPACKAGE"
    resolve "$MANIFESTS/kernel.list" '^$' "$kernel"
    resolve "$MANIFESTS/dom0.list" '^$' "${DOM0_WHOLE_PACKAGES[@]}" "${DOM0_PROGRAM_PACKAGES[@]}"
    local set
    for set in qemu xen kernel dom0; do
        grep -q . "$MANIFESTS/$set.list" || die "resolving the $set packages found nothing"
    done
    echo "$spec" > "$MANIFESTS/spec"
}

# --- Step 2: download what is not in the cache yet ----------------------------------------------
download_missing() {
    local missing=() package version arch
    mkdir -p "$DEBS_DIR"
    while read -r package version arch; do
        [ -f "$(deb_file "$package" "$version" "$arch")" ] || missing+=("$package=$version")
    done < <(sort -u "$MANIFESTS"/*.list)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "downloading ${#missing[@]} Debian packages into $DEBS_DIR"
    # Root's apt drops to the _apt user to download; the cache may not be writable for it.
    if ! (cd "$DEBS_DIR" && apt-get -q -o APT::Sandbox::User=root download "${missing[@]}" >/dev/null); then
        # Stale lists name versions the mirror no longer has: refresh, re-resolve, retry once.
        [ -z "${APT_UPDATED:-}" ] || die "apt-get download failed"
        apt_update_once
        rm -f "$MANIFESTS/spec" "$MANIFESTS/peer.spec"
        resolve_manifests
        # The peer's list (when it was ever built) is downloaded with the rest: refresh it too.
        [ ! -f "$MANIFESTS/peer.list" ] || resolve_peer_manifest
        download_missing
    fi
}

# Extracts every package of a manifest into DEST (replaced atomically).
extract_list() {
    local list=$1 dest=$2 package version arch
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    while read -r package version arch; do
        dpkg-deb -x "$(deb_file "$package" "$version" "$arch")" "$dest.tmp"
    done < "$list"
    rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

package_deb() { # NAME LIST -> the cached .deb of package NAME in manifest LIST
    local package version arch
    read -r package version arch < <(awk -v p="$1" '$1 == p' "$2")
    [ -n "${package:-}" ] || die "package $1 is not in $2"
    deb_file "$package" "$version" "$arch"
}

# --- Step 3: QEMU ---------------------------------------------------------------------------------
setup_qemu() {
    local key; key=$(fingerprint "$MANIFESTS/qemu.list")
    stamp_matches "$QEMU_ROOT/.stamp" "$key" && [ -x "$QEMU_BIN" ] && return 0
    log "extracting QEMU 7.2 and its libraries into $QEMU_ROOT"
    extract_list "$MANIFESTS/qemu.list" "$QEMU_ROOT"
    local version
    qemu_command
    version=$("${QEMU_COMMAND[@]}" --version | head -1) || die "the extracted QEMU does not start (missing library?)"
    log "  $version"
    echo "$key" > "$QEMU_ROOT/.stamp"
}

# --- Step 4: Xen ----------------------------------------------------------------------------------
setup_xen() {
    local key; key=$(fingerprint "$MANIFESTS/xen.list")
    stamp_matches "$CACHE/xen/.stamp" "$key" && [ -f "$XEN_ELF" ] && return 0
    log "extracting the Xen 4.17 hypervisor"
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$(package_deb xen-hypervisor-4.17-amd64 "$MANIFESTS/xen.list")" "$tmp"
    mkdir -p "$CACHE/xen"
    # QEMU's multiboot loader wants the plain ELF, Debian ships it gzipped.
    gzip -dc "$tmp"/boot/xen-4.17-amd64.gz > "$XEN_ELF.tmp" && mv "$XEN_ELF.tmp" "$XEN_ELF"
    rm -rf "$tmp"
    echo "$key" > "$CACHE/xen/.stamp"
}

# --- Step 5: the dom0 kernel and the modules dom0 loads -----------------------------------------
setup_kernel() {
    local key; key=$(fingerprint "$MANIFESTS/kernel.list" <(printf '%s\n' "${DOM0_MODULES[@]}"))
    stamp_matches "$CACHE/dom0/kernel.stamp" "$key" && [ -f "$DOM0_KERNEL" ] && return 0
    local deb; deb=$(awk '{print $1}' "$MANIFESTS/kernel.list" | grep '^linux-image-')
    log "extracting the dom0 kernel and modules from $deb"
    local tmp; tmp=$(mktemp -d)
    # Only the kernel and the module folders we may need: the whole tree is 400 MB.
    dpkg-deb --fsys-tarfile "$(package_deb "$deb" "$MANIFESTS/kernel.list")" | tar -x -C "$tmp" \
        --wildcards './boot/vmlinuz-*' './lib/modules/*/modules.*' './lib/modules/*/kernel/net/*' \
        './lib/modules/*/kernel/drivers/xen/*' './lib/modules/*/kernel/drivers/net/xen-netback/*'
    local release; release=$(basename "$(echo "$tmp"/lib/modules/*)")
    local out=$CACHE/dom0/modules.tmp
    rm -rf "$out"; mkdir -p "$out/$release/kernel"
    cp "$tmp/lib/modules/$release"/modules.{order,builtin,builtin.modinfo} "$out/$release/"
    # Copy each module and, recursively, the modules it depends on.
    local todo=("${DOM0_MODULES[@]}") module file dep
    local -A done_modules=()
    while [ ${#todo[@]} -gt 0 ]; do
        module=${todo[0]}; todo=("${todo[@]:1}")
        [ -n "${done_modules[$module]:-}" ] && continue
        done_modules[$module]=1
        file=$(find "$tmp/lib/modules/$release/kernel" \( -name "$module.ko" -o -name "${module//-/_}.ko" \) | head -1)
        [ -n "$file" ] || die "kernel module $module not found in $deb"
        mkdir -p "$out/$release/$(dirname "${file#"$tmp/lib/modules/$release/"}")"
        cp "$file" "$out/$release/${file#"$tmp/lib/modules/$release/"}"
        for dep in $(modinfo -F depends "$file" | tr ',' ' '); do todo+=("$dep"); done
    done
    mkdir -p "$CACHE/dom0"
    rm -rf "$CACHE/dom0/modules"; mv "$out" "$CACHE/dom0/modules"
    cp "$tmp/boot/vmlinuz-$release" "$DOM0_KERNEL"
    echo "$release" > "$CACHE/dom0/kernel.release"
    rm -rf "$tmp"
    echo "$key" > "$CACHE/dom0/kernel.stamp"
}

# --- Step 6: the dom0 initramfs -------------------------------------------------------------------
# Directories where the extracted packages keep shared libraries.
LIBRARY_DIRS=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 usr/lib64 usr/lib/xen-4.17/lib)

# Copies the shared libraries every ELF file under ROOT needs (walking DT_NEEDED recursively) from
# PKGROOT into ROOT/usr/lib/x86_64-linux-gnu.
copy_needed_libraries() {
    local root=$1 pkgroot=$2 soname dir found
    local -A copied=()
    # Start from every executable and shared object; readelf ignores the scripts among them.
    local todo; mapfile -t todo < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \))
    while [ ${#todo[@]} -gt 0 ]; do
        local next=()
        for soname in $(for f in "${todo[@]}"; do readelf -d "$f" 2>/dev/null; done \
                        | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u); do
            [ -n "${copied[$soname]:-}" ] && continue
            copied[$soname]=1
            found=""
            for dir in "${LIBRARY_DIRS[@]}"; do
                if [ -e "$pkgroot/$dir/$soname" ]; then found=$pkgroot/$dir/$soname; break; fi
            done
            [ -n "$found" ] || die "library $soname (needed in dom0) is in none of the extracted packages"
            cp -L "$found" "$root/usr/lib/x86_64-linux-gnu/$soname"
            next+=("$root/usr/lib/x86_64-linux-gnu/$soname")
        done
        todo=("${next[@]}")
    done
}

build_initramfs() {
    local inputs release key
    inputs=$(inputs_fingerprint)
    release=$(cat "$CACHE/dom0/kernel.release")
    key=$(fingerprint "$MANIFESTS/dom0.list" "$CACHE/dom0/kernel.stamp" <(echo "$inputs"))
    stamp_matches "$CACHE/dom0/initramfs.stamp" "$key" && [ -f "$DOM0_INITRAMFS" ] && return 0
    log "building the dom0 initramfs"
    local started=$SECONDS
    # All dom0 packages extracted once, as a library and program source (kept: rebuilds are quick).
    local pkgroot=$CACHE/dom0/pkgroot pkgkey
    pkgkey=$(fingerprint "$MANIFESTS/dom0.list")
    if ! stamp_matches "$pkgroot.stamp" "$pkgkey"; then
        log "  extracting $(wc -l < "$MANIFESTS/dom0.list") packages"
        extract_list "$MANIFESTS/dom0.list" "$pkgroot"
        echo "$pkgkey" > "$pkgroot.stamp"
    fi

    local root=$CACHE/dom0/root.tmp
    rm -rf "$root"
    # Merged /usr, as Debian's layout is heading: one library directory to search.
    mkdir -p "$root"/{bin,sbin,etc,dev,proc,sys,run,tmp,root,mnt} \
             "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64,local/bin} \
             "$root"/var/{lib/xen,lib/xenstored,log/xen/console,lock}
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    ln -s ../run "$root/var/run"

    # busybox first: its applet links are replaced below by the real programs where we ship them.
    cp "$pkgroot/bin/busybox" "$root/bin/busybox"
    local applet
    for applet in $("$root/bin/busybox" --list-full); do
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done

    local package program
    for package in "${DOM0_WHOLE_PACKAGES[@]}"; do
        dpkg-deb -x "$(package_deb "$package" "$MANIFESTS/dom0.list")" "$root"
    done
    rm -rf "$root"/usr/share/{doc,man,lintian,bash-completion} "$root"/usr/lib/xen-4.17/lib/python \
        "$root"/usr/lib/xen-4.17/boot   # hvmloader and the PV shim: HVM and PV-in-PVH only
    for program in "${DOM0_PROGRAMS[@]}"; do
        [ -f "$pkgroot/$program" ] || die "$program is not in the dom0 packages"
        # Drop busybox's applet of the same name wherever it sits in PATH.
        rm -f "$root"/{bin,sbin,usr/bin,usr/sbin}/"$(basename "$program")"
        cp "$pkgroot/$program" "$root/$program"
    done
    # Debian's /usr/sbin/xl etc. are links to a wrapper that picks the Xen version at run time;
    # point them straight at the 4.17 programs.
    local link target
    while IFS= read -r link; do
        target=/usr/lib/xen-4.17/bin/$(basename "$link")
        if [ -e "$root$target" ]; then ln -sfn "$target" "$link"; else rm -f "$link"; fi
    done < <(find "$root" -type l -lname '*xen-utils-wrapper')

    # Libraries: the dynamic loader, then whatever the programs need.
    cp -L "$pkgroot/lib64/ld-linux-x86-64.so.2" "$root/usr/lib/x86_64-linux-gnu/"
    ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/usr/lib64/ld-linux-x86-64.so.2"
    copy_needed_libraries "$root" "$pkgroot"
    echo /usr/lib/x86_64-linux-gnu > "$root/etc/ld.so.conf"
    ldconfig -r "$root"

    # Kernel modules, with their dependency index.
    mkdir -p "$root/usr/lib/modules"
    cp -a "$CACHE/dom0/modules/$release" "$root/usr/lib/modules/"
    depmod -b "$root" "$release"

    # Our own files: /init and the helpers.
    cp "$TESTBED_DIR/dom0/init" "$root/init"
    cp "$TESTBED_DIR"/dom0/bin/* "$root/usr/local/bin/"
    chmod 0755 "$root/init" "$root"/usr/local/bin/*
    cp -r "$TESTBED_DIR"/dom0/etc/. "$root/etc/"

    (cd "$root" && find . -print0 | LC_ALL=C sort -z \
        | cpio --quiet -o -0 -H newc -R 0:0 | gzip -6 > "$DOM0_INITRAMFS.tmp")
    mv "$DOM0_INITRAMFS.tmp" "$DOM0_INITRAMFS"
    rm -rf "$root"
    echo "$key" > "$CACHE/dom0/initramfs.stamp"
    log "  $(du -h "$DOM0_INITRAMFS" | cut -f1) in $((SECONDS - started)) s"
}

# --- The benchmark peer (--peer) -------------------------------------------------------------------
# Resolved apart from the test host's lists (its own spec stamp), so that asking for the peer
# never re-resolves, re-downloads or rebuilds what `make test` uses.
peer_spec() {
    { declare -p PEER_PACKAGES; declare -f apt_show resolve; } | sha256sum | cut -c1-16
}

resolve_peer_manifest() {
    local spec; spec=$(peer_spec)
    stamp_matches "$MANIFESTS/peer.spec" "$spec" && [ -s "$MANIFESTS/peer.list" ] && return 0
    log "resolving the peer's package versions (apt-cache)"
    apt-cache show --no-all-versions nginx >/dev/null 2>&1 || apt_update_once
    resolve "$MANIFESTS/peer.list" '^$' "${PEER_PACKAGES[@]}"
    grep -q '^nginx ' "$MANIFESTS/peer.list" || die "resolving the peer packages found no nginx"
    echo "$spec" > "$MANIFESTS/peer.spec"
}

# What the peer image is made from: its package list, the kernel, this script and testbed/peer/.
peer_fingerprint() {
    { cat "$MANIFESTS/peer.list" "$CACHE/dom0/kernel.stamp"
      (cd "$TESTBED_DIR" && find setup.sh peer -type f | LC_ALL=C sort | xargs cat); } \
        | sha256sum | cut -c1-16
}

build_peer() {
    local key; key=$(peer_fingerprint)
    stamp_matches "$PEER_DIR/stamp" "$key" && [ -f "$PEER_DIR/vmlinuz" ] \
        && [ -f "$PEER_DIR/initramfs.cpio.gz" ] && return 0
    log "building the benchmark peer (Linux + nginx) in $PEER_DIR"
    local started=$SECONDS pkgroot=$PEER_DIR/pkgroot pkgkey
    mkdir -p "$PEER_DIR"
    pkgkey=$(fingerprint "$MANIFESTS/peer.list")
    if ! stamp_matches "$pkgroot.stamp" "$pkgkey"; then
        extract_list "$MANIFESTS/peer.list" "$pkgroot"
        echo "$pkgkey" > "$pkgroot.stamp"
    fi

    local root=$PEER_DIR/root.tmp
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,etc/nginx,dev,proc,sys,run,tmp,root} \
             "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64,lib/modules} "$root"/var/{log,lib}
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    cp "$pkgroot/bin/busybox" "$root/bin/busybox"
    local applet program
    for applet in $("$root/bin/busybox" --list-full); do
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done
    for program in "${PEER_PROGRAMS[@]}"; do
        [ -f "$pkgroot/$program" ] || die "$program is not in the peer packages"
        cp "$pkgroot/$program" "$root/$program"
    done
    cp -L "$pkgroot/lib64/ld-linux-x86-64.so.2" "$root/usr/lib/x86_64-linux-gnu/"
    ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/usr/lib64/ld-linux-x86-64.so.2"
    copy_needed_libraries "$root" "$pkgroot"
    echo /usr/lib/x86_64-linux-gnu > "$root/etc/ld.so.conf"
    ldconfig -r "$root"

    # The vif driver, from the same kernel package as dom0's modules (no dependencies of its own:
    # the /init loads it by path, no depmod needed).
    local deb; deb=$(awk '{print $1}' "$MANIFESTS/kernel.list" | grep '^linux-image-')
    dpkg-deb --fsys-tarfile "$(package_deb "$deb" "$MANIFESTS/kernel.list")" \
        | tar -x -O --wildcards "./lib/modules/*/kernel/$PEER_MODULE" > "$root/usr/lib/modules/xen-netfront.ko"
    [ -s "$root/usr/lib/modules/xen-netfront.ko" ] || die "$PEER_MODULE is not in $deb"
    [ -z "$(modinfo -F depends "$root/usr/lib/modules/xen-netfront.ko")" ] \
        || die "xen-netfront now has module dependencies: load them in testbed/peer/init"

    install -m 0755 "$TESTBED_DIR/peer/init" "$root/init"
    install -m 0755 "$TESTBED_DIR/peer/udhcpc.script" "$root/etc/udhcpc.script"
    install -m 0644 "$TESTBED_DIR/peer/nginx.conf" "$root/etc/nginx/nginx.conf"
    # nginx looks its user up (glibc's built-in files NSS).
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\n' > "$root/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files\n' > "$root/etc/nsswitch.conf"

    (cd "$root" && find . -print0 | LC_ALL=C sort -z \
        | cpio --quiet -o -0 -H newc -R 0:0 | gzip -9 > "$PEER_DIR/initramfs.cpio.gz.tmp")
    mv "$PEER_DIR/initramfs.cpio.gz.tmp" "$PEER_DIR/initramfs.cpio.gz"
    # Debian's kernel runs as a PVH domU as it is (CONFIG_XEN_PVH): the same file dom0 boots.
    cp "$DOM0_KERNEL" "$PEER_DIR/vmlinuz"
    rm -rf "$root"
    echo "$key" > "$PEER_DIR/stamp"
    log "  peer: kernel $(du -h "$PEER_DIR/vmlinuz" | cut -f1), initramfs $(du -h "$PEER_DIR/initramfs.cpio.gz" | cut -f1) in $((SECONDS - started)) s"
}

setup_peer() {
    # Fast path, without the lock: built from these very inputs already.
    if [ -s "$MANIFESTS/peer.list" ] && stamp_matches "$MANIFESTS/peer.spec" "$(peer_spec)" \
            && stamp_matches "$PEER_DIR/stamp" "$(peer_fingerprint)" && [ -f "$PEER_DIR/initramfs.cpio.gz" ]; then
        log "benchmark peer is up to date ($PEER_DIR)"
        return 0
    fi
    exec 9> "$CACHE/.lock"
    flock 9
    resolve_peer_manifest
    download_missing
    build_peer
}

# --- Main -----------------------------------------------------------------------------------------
setup_test_host() {
    # Fast path: nothing changed since the last complete run.
    local ready; ready="$(inputs_fingerprint) $(package_spec)"
    if stamp_matches "$CACHE/ready" "$ready" && [ -x "$QEMU_BIN" ] && [ -f "$XEN_ELF" ] \
            && [ -f "$DOM0_KERNEL" ] && [ -f "$DOM0_INITRAMFS" ]; then
        log "test host is up to date (cache: $CACHE)"
        return 0
    fi
    mkdir -p "$CACHE"
    # Two runs at once (make run beside make test) must not build the same files together.
    exec 9> "$CACHE/.lock"
    if ! flock -n 9; then
        log "waiting for another setup.sh to finish"
        flock 9
    fi
    if stamp_matches "$CACHE/ready" "$ready"; then
        log "test host is up to date (cache: $CACHE)"
        return 0
    fi
    log "setting up the test host in $CACHE"
    rm -f "$CACHE/ready"
    ensure_host_tools
    resolve_manifests
    download_missing
    setup_qemu
    setup_xen
    setup_kernel
    build_initramfs
    echo "$ready" > "$CACHE/ready"
    log "test host ready"
}

main() {
    local peer=0
    while [ $# -gt 0 ]; do
        case $1 in
        --peer) peer=1; shift ;;
        -h|--help) sed -n '/^# usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (usage: testbed/setup.sh [--peer])" ;;
        esac
    done
    setup_test_host
    if [ "$peer" = 1 ]; then setup_peer; fi
}

main "$@"
