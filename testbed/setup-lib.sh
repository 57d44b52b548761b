# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# The steps that build an emulated Xen test host into the cache, shared by setup.sh (x86_64) and
# arm64/setup.sh (ARM64), which source this after lib.sh (and arm64/lib.sh). Sourced, never run.
# Each step has a stamp and is redone only when what it is made from changes; nothing is
# downloaded twice.
#
# After sourcing this, the host's script sets what differs between the hosts:
#   QEMU_PACKAGES              QEMU 7.2 and its data, from the host's apt (amd64 programs on both)
#   MACHINE_APT_CACHE          the apt-cache command for the emulated machine's packages
#   XEN_PACKAGE, XEN_FILE      the hypervisor's package and its file in it (a .gz is unpacked)
#   KERNEL_METAPACKAGE         the dom0 kernel (its first dependency is the kernel package)
#   LIBDIR, LIBRARY_DIRS       dom0's one library directory; where the packages keep libraries
#   LOADER, LOADER_LINK        the ELF loader's path and the link there to its copy in LIBDIR
#   USR_LINKS                  top-level directories that are links into /usr (merged /usr)
#   LD_SO_CACHE                yes: run ldconfig on the initramfs
#   DOM0_ARCH_CONF             a file installed as dom0's /etc/testbed-arch.conf, or ""
#   INITRAMFS_INPUTS           what under testbed/ the initramfs is built from (its stamp)
#   LOG_PREFIX                 put before the progress messages
#   PEER_DIR, PEER_KERNEL      the benchmark peer's directory (--peer) and its kernel's file name
#   PEER_INPUTS                what under testbed/ the peer is built from (its stamp)
# (and may add to DOM0_MODULES and KERNEL_MODULE_DIRS), and defines the hooks:
#   prepare_host               host tools and apt configuration, before the first step
#   ensure_apt_lists           before resolving: makes sure apt's lists know the packages
#   download_missing           downloads what the manifests list and DEBS_DIR lacks
#   busybox_applets ROOT       prints the applets of the busybox in ROOT/bin, one path a line
# The host's script runs setup_test_host, and setup_peer for the benchmark peer.

# --- What every test host's dom0 is made of ---------------------------------------------------
# QEMU must be 7.2 (bookworm's): QEMU 10 breaks Linux PVH guests under Xen (see docs/testbed.md).
QEMU_VERSION_PATTERN='1:7.2+*'
# Packages copied whole into the initramfs (minus docs and python).
DOM0_WHOLE_PACKAGES=(xen-utils-4.17 xen-utils-common xenstore-utils netbase)
# Single programs taken from their Debian packages. Debian's /etc/xen/scripts/vif-bridge is bash
# and calls flock, `stat -L -c` and iproute2's ip, which busybox's versions do not cover. jq is the
# JSON parser the e2e checks read the appliance's JSON answers with (its libraries, libjq1 and
# libonig5, come with it: the resolver follows lib* dependencies, the initramfs build DT_NEEDED).
# socat passes the forwarded loopback ports on to the guest (testbed/dom0/init).
# radvd: router advertisements for the IPv6 check (tests/e2e/check-21-ipv6.sh; its configuration
# is testbed/dom0/etc/radvd.conf). nginx: the balancer in front of several appliances
# (examples/balancer.sh, which the e2e suite runs, and `make bench-fleet`'s scale-out curve).
DOM0_PROGRAM_PACKAGES=(busybox-static bash util-linux coreutils iproute2 curl wrk jq socat radvd nginx)
DOM0_PROGRAMS=(/bin/bash /usr/bin/flock /usr/bin/stat /bin/ip /sbin/bridge /usr/bin/curl /usr/bin/wrk /usr/bin/jq
               /usr/bin/socat /usr/sbin/radvd /usr/sbin/nginx)
# Module dependencies are added automatically (modinfo).
DOM0_MODULES=(xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc llc stp bridge xen-netback)
# Where under the kernel package's lib/modules/*/kernel/ those modules are looked for.
KERNEL_MODULE_DIRS=(net drivers/xen drivers/net/xen-netback)

# What every benchmark peer is made of (`make bench`, the host's script's --peer): busybox and nginx
# with their libraries (its own glibc: the guest runs nothing of dom0's); the kernel is dom0's,
# plus the one module a domU needs for its vif.
PEER_PACKAGES=(busybox-static nginx)
PEER_PROGRAMS=(/usr/sbin/nginx)
PEER_MODULE=drivers/net/xen-netfront.ko

# depmod and ldconfig live in /sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

# --- Small helpers -----------------------------------------------------------------------------
# apt-get for the host's own packages. Root's apt drops to the _apt user to download; the cache
# may not be writable for it.
apt_get_host() { apt-get -o APT::Sandbox::User=root "$@"; }

deb_file() { # package version arch -> the file name apt-get download gives it
    printf '%s/%s_%s_%s.deb' "$DEBS_DIR" "$1" "${2//:/%3a}" "$3"
}

# Fingerprint of what a build step depends on, for its stamp.
fingerprint() { cat "$@" | sha256sum | cut -c1-16; }

# What the initramfs build reads: the INITRAMFS_INPUTS files and folders under testbed/.
inputs_fingerprint() {
    (cd "$TESTBED_DIR" && find "${INITRAMFS_INPUTS[@]}" -type f | LC_ALL=C sort | xargs cat) \
        | sha256sum | cut -c1-16
}

# stamp_matches FILE KEY: FILE exists and holds KEY.
stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# --- Step 1: which packages, at which versions (resolved once, then read from the cache) -------
# apt_show APT-CACHE NAME...: prints "PKG package version architecture" for the candidate of each
# NAME (name or name=version) and, on a second kind of line, "DEP alternative|alternative|..." for
# each library dependency, as APT-CACHE (an apt-cache command) sees them.
apt_show() {
    local cache=$1; shift
    "$cache" show --no-all-versions "$@" 2>/dev/null | awk '
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

# resolve OUT APT-CACHE EXCLUDE ROOT... : the roots plus the closure of their library dependencies
# (Depends and Pre-Depends on lib* packages, and zlib1g, the one library package not named lib*),
# with APT-CACHE's candidate versions, into OUT ("package version arch").
# Of alternatives "a | b" the first that exists is taken. EXCLUDE is a regex of package names to
# leave out (their libraries come from elsewhere).
resolve() {
    local out=$1 cache=$2 exclude=$3; shift 3
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
        done < <(apt_show "$cache" "${queue[@]}")
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

# The package lists and the resolver: when either changes, versions are resolved again.
package_spec() {
    { declare -p QEMU_VERSION_PATTERN QEMU_PACKAGES MACHINE_APT_CACHE XEN_PACKAGE KERNEL_METAPACKAGE \
        DOM0_WHOLE_PACKAGES DOM0_PROGRAM_PACKAGES; declare -f apt_show resolve; } | sha256sum | cut -c1-16
}

# The manifests qemu.list (from the host's apt), xen.list, kernel.list and dom0.list (from
# MACHINE_APT_CACHE), unless they were resolved from this very package_spec.
resolve_manifests() {
    local spec; spec=$(package_spec)
    stamp_matches "$MANIFESTS/spec" "$spec" && return 0
    log "${LOG_PREFIX}resolving package versions (apt-cache)"
    mkdir -p "$MANIFESTS"
    ensure_apt_lists

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
    resolve "$MANIFESTS/qemu.list" apt-cache '^libc6$' "${qemu_roots[@]}"
    resolve "$MANIFESTS/xen.list" "$MACHINE_APT_CACHE" '^$' "$XEN_PACKAGE"
    local kernel
    kernel=$("$MACHINE_APT_CACHE" show --no-all-versions "$KERNEL_METAPACKAGE" \
        | awk -F': ' '/^Depends:/ { split($2, d, /[ ,]/); print d[1]; exit }')
    [ -n "$kernel" ] || die "cannot resolve $KERNEL_METAPACKAGE"
    resolve "$MANIFESTS/kernel.list" "$MACHINE_APT_CACHE" '^$' "$kernel"
    resolve "$MANIFESTS/dom0.list" "$MACHINE_APT_CACHE" '^$' "${DOM0_WHOLE_PACKAGES[@]}" "${DOM0_PROGRAM_PACKAGES[@]}"
    local set
    for set in qemu xen kernel dom0; do
        grep -q . "$MANIFESTS/$set.list" || die "${LOG_PREFIX}resolving the $set packages found nothing"
    done
    echo "$spec" > "$MANIFESTS/spec"
}

# --- Step 2: download what is not in the cache yet ----------------------------------------------
# download_debs APT-GET LIST...: downloads with APT-GET (an apt-get command) the packages of the
# manifests LIST... that DEBS_DIR lacks; the status is apt-get's.
download_debs() {
    local getter=$1 missing=() package version arch; shift
    mkdir -p "$DEBS_DIR"
    while read -r package version arch; do
        [ -f "$(deb_file "$package" "$version" "$arch")" ] || missing+=("$package:$arch=$version")
    done < <(sort -u "$@")
    [ ${#missing[@]} -eq 0 ] && return 0
    # Each file's size, from apt's lists (--print-uris downloads nothing): 'URI' FILE SIZE HASH.
    local sizes=$DEBS_DIR/.sizes total
    (cd "$DEBS_DIR" && "$getter" -q --print-uris download "${missing[@]}" 2>/dev/null) \
        | awk '{ split($2, part, "_"); sub(/[.]deb$/, "", part[3]); print part[1] ":" part[3], $3 }' > "$sizes"
    total=$(awk '{ total += $2 } END { print total + 0 }' "$sizes")
    log "${LOG_PREFIX}fetching ${#missing[@]} Debian packages, $(megabytes "$total"), into $DEBS_DIR"
    (cd "$DEBS_DIR" && "$getter" -q download "${missing[@]}") | show_fetches "${#missing[@]}" "$total" "$sizes"
    local status=${PIPESTATUS[0]}
    rm -f "$sizes"
    return "$status"
}

# show_fetches COUNT BYTES SIZES: reads apt-get download's "Get:N URI SUITE ARCH PACKAGE ARCH VERSION
# [SIZE]" lines and shows how far the download is: on a terminal, one line rewritten for each
# package; otherwise a line at every tenth of the bytes. SIZES has "package:arch bytes" lines.
show_fetches() {
    local terminal=0
    [ -t 2 ] && terminal=1
    awk -v count="$1" -v total="$2" -v terminal="$terminal" -v prefix="testbed: ${LOG_PREFIX}  " '
        FILENAME == ARGV[1] { size[$1] = $2; next }
        /^Get:/ {
            fetched++; bytes += size[$5 ":" $6]
            percent = total ? int(100 * bytes / total) : int(100 * fetched / count)
            line = sprintf("%s%d of %d packages, %s of %s (%d%%): %s %s", prefix, fetched, count,
                           megabytes(bytes), megabytes(total), percent, $5, $7)
            if (terminal) { printf "\r\033[K%s", line > "/dev/stderr" }
            else if (percent >= next_step || fetched == count) {
                print line > "/dev/stderr"; next_step = (int(percent / 10) + 1) * 10
            }
            next
        }
        { print > "/dev/stderr" }
        END { if (terminal && fetched) printf "\n" > "/dev/stderr" }
        '"$MEGABYTES_AWK" "$3" -
}

# BYTES in megabytes, for a person: "0.4 MB", "118 MB".
MEGABYTES_AWK='function megabytes(b) { return sprintf(b < 1e7 ? "%.1f MB" : "%.0f MB", b / 1e6) }'
megabytes() { awk -v b="$1" "$MEGABYTES_AWK"' BEGIN { print megabytes(b) }'; }

# Extracts every package of a manifest into DEST (replaced atomically).
extract_list() {
    local list=$1 dest=$2 package version arch
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    while read -r package version arch; do
        dpkg-deb -x "$(deb_file "$package" "$version" "$arch")" "$dest.tmp"
    done < "$list"
    rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

# extract_once LIST DEST: extract_list, unless DEST holds LIST's packages already (its stamp).
extract_once() {
    local list=$1 dest=$2 key
    key=$(fingerprint "$list")
    stamp_matches "$dest.stamp" "$key" && return 0
    log "  extracting $(wc -l < "$list") packages"
    extract_list "$list" "$dest"
    echo "$key" > "$dest.stamp"
}

package_deb() { # NAME LIST -> the cached .deb of package NAME in manifest LIST
    local package version arch
    read -r package version arch < <(awk -v p="$1" '$1 == p' "$2")
    [ -n "${package:-}" ] || die "package $1 is not in $2"
    deb_file "$package" "$version" "$arch"
}

# --- Step 3: QEMU ---------------------------------------------------------------------------------
# QEMU 7.2 and its libraries extracted into QEMU_ROOT, checked to start.
setup_qemu() {
    local key; key=$(fingerprint "$MANIFESTS/qemu.list")
    stamp_matches "$QEMU_ROOT/.stamp" "$key" && [ -x "$QEMU_BIN" ] && return 0
    log "${LOG_PREFIX}extracting QEMU 7.2 ($(basename "$QEMU_BIN")) and its libraries into $QEMU_ROOT"
    extract_list "$MANIFESTS/qemu.list" "$QEMU_ROOT"
    local version
    qemu_command
    version=$("${QEMU_COMMAND[@]}" --version | head -1) || die "the extracted QEMU does not start (missing library?)"
    log "  $version"
    echo "$key" > "$QEMU_ROOT/.stamp"
}

# --- Step 4: Xen ----------------------------------------------------------------------------------
# The hypervisor's XEN_FILE, taken from its package, as XEN_IMAGE.
setup_xen() {
    local key; key=$(fingerprint "$MANIFESTS/xen.list")
    stamp_matches "$HOST_CACHE/xen/.stamp" "$key" && [ -f "$XEN_IMAGE" ] && return 0
    log "${LOG_PREFIX}extracting the Xen 4.17 hypervisor"
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$(package_deb "$XEN_PACKAGE" "$MANIFESTS/xen.list")" "$tmp"
    mkdir -p "$HOST_CACHE/xen"
    # QEMU's multiboot loader wants the plain ELF, Debian ships x86's gzipped.
    case $XEN_FILE in
    *.gz) gzip -dc "$tmp/$XEN_FILE" > "$XEN_IMAGE.tmp" ;;
    *) cp "$tmp/$XEN_FILE" "$XEN_IMAGE.tmp" ;;
    esac
    mv "$XEN_IMAGE.tmp" "$XEN_IMAGE"
    rm -rf "$tmp"
    echo "$key" > "$HOST_CACHE/xen/.stamp"
}

# --- Step 5: the dom0 kernel and the modules dom0 loads -----------------------------------------
# DOM0_KERNEL, and DOM0_MODULES with the modules they depend on, from the kernel package.
setup_kernel() {
    local key; key=$(fingerprint "$MANIFESTS/kernel.list" <(printf '%s\n' "${DOM0_MODULES[@]}"))
    stamp_matches "$HOST_CACHE/dom0/kernel.stamp" "$key" && [ -f "$DOM0_KERNEL" ] && return 0
    local deb; deb=$(awk '{print $1}' "$MANIFESTS/kernel.list" | grep '^linux-image-')
    log "${LOG_PREFIX}extracting the dom0 kernel and modules from $deb"
    local tmp; tmp=$(mktemp -d)
    # Only the kernel and the module folders we may need: the whole tree is 400 MB.
    local wanted=('./boot/vmlinuz-*' './lib/modules/*/modules.*') dir
    for dir in "${KERNEL_MODULE_DIRS[@]}"; do wanted+=("./lib/modules/*/kernel/$dir/*"); done
    dpkg-deb --fsys-tarfile "$(package_deb "$deb" "$MANIFESTS/kernel.list")" \
        | tar -x -C "$tmp" --wildcards "${wanted[@]}"
    local release; release=$(basename "$(echo "$tmp"/lib/modules/*)")
    local out=$HOST_CACHE/dom0/modules.tmp
    rm -rf "$out"; mkdir -p "$out/$release/kernel"
    cp "$tmp/lib/modules/$release"/modules.{order,builtin,builtin.modinfo} "$out/$release/"
    # Copy each module and, recursively, the modules it depends on.
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
    mkdir -p "$HOST_CACHE/dom0"
    rm -rf "$HOST_CACHE/dom0/modules"; mv "$out" "$HOST_CACHE/dom0/modules"
    cp "$tmp/boot/vmlinuz-$release" "$DOM0_KERNEL"
    echo "$release" > "$HOST_CACHE/dom0/kernel.release"
    rm -rf "$tmp"
    echo "$key" > "$HOST_CACHE/dom0/kernel.stamp"
}

# --- Step 6: the dom0 initramfs -------------------------------------------------------------------
# The top-level directories of ROOT that are links into its /usr (USR_LINKS).
link_merged_usr() {
    local dir
    for dir in "${USR_LINKS[@]}"; do ln -s "usr/$dir" "$1/$dir"; done
}

# install_busybox ROOT PKGROOT: busybox from PKGROOT, with a link for each of its applets
# (busybox_applets) that ROOT does not have yet.
install_busybox() {
    local root=$1 applet applets
    cp "$2/bin/busybox" "$root/bin/busybox"
    if ! applets=$(busybox_applets "$root") || [ -z "$applets" ]; then
        die "${LOG_PREFIX}no applet list for $root/bin/busybox"
    fi
    for applet in $applets; do
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done
}

# Copies the shared libraries every ELF file under ROOT needs (walking DT_NEEDED recursively) from
# PKGROOT's LIBRARY_DIRS into ROOT/LIBDIR.
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
            [ -n "$found" ] || die "library $soname (needed in $root) is in none of the extracted packages"
            cp -L "$found" "$root/$LIBDIR/$soname"
            next+=("$root/$LIBDIR/$soname")
        done
        todo=("${next[@]}")
    done
}

# install_libraries ROOT PKGROOT: the dynamic loader, then whatever the programs in ROOT need.
install_libraries() {
    local root=$1 pkgroot=$2
    cp -L "$pkgroot/$LOADER" "$root/$LIBDIR/"
    ln -s "$LOADER_LINK" "$root/usr/$LOADER"
    copy_needed_libraries "$root" "$pkgroot"
    echo "/$LIBDIR" > "$root/etc/ld.so.conf"
    if [ "$LD_SO_CACHE" = yes ]; then ldconfig -r "$root"; fi
}

# pack_initramfs ROOT LEVEL OUT: ROOT as a gzipped (LEVEL) newc cpio in OUT (replaced atomically);
# ROOT is removed.
pack_initramfs() {
    local root=$1 level=$2 out=$3
    (cd "$root" && find . -print0 | LC_ALL=C sort -z \
        | cpio --quiet -o -0 -H newc -R 0:0 | gzip "-$level" > "$out.tmp")
    mv "$out.tmp" "$out"
    rm -rf "$root"
}

# DOM0_INITRAMFS: busybox, the dom0 packages and programs with their libraries, the modules, and
# testbed/dom0's /init, helpers and configuration.
build_initramfs() {
    local dom0=$HOST_CACHE/dom0 inputs release key
    inputs=$(inputs_fingerprint)
    release=$(cat "$dom0/kernel.release")
    key=$(fingerprint "$MANIFESTS/dom0.list" "$dom0/kernel.stamp" <(echo "$inputs"))
    stamp_matches "$dom0/initramfs.stamp" "$key" && [ -f "$DOM0_INITRAMFS" ] && return 0
    log "${LOG_PREFIX}building the dom0 initramfs"
    local started=$SECONDS
    # All dom0 packages extracted once, as a library and program source (kept: rebuilds are quick).
    local pkgroot=$dom0/pkgroot
    extract_once "$MANIFESTS/dom0.list" "$pkgroot"

    local root=$dom0/root.tmp
    rm -rf "$root"
    # Merged /usr, as Debian's layout is heading: one library directory to search.
    mkdir -p "$root"/{bin,sbin,etc,dev,proc,sys,run,tmp,root,mnt} \
             "$root"/usr/{bin,sbin,lib64,local/bin,local/lib/testbed} "$root/$LIBDIR" \
             "$root"/var/{lib/xen,lib/xenstored,log/xen/console,lock}
    link_merged_usr "$root"
    ln -s ../run "$root/var/run"

    # busybox first: its applet links are replaced below by the real programs where we ship them.
    install_busybox "$root" "$pkgroot"
    local package program
    for package in "${DOM0_WHOLE_PACKAGES[@]}"; do
        dpkg-deb -x "$(package_deb "$package" "$MANIFESTS/dom0.list")" "$root"
    done
    rm -rf "$root"/usr/share/{doc,man,lintian,bash-completion,augeas} "$root"/usr/lib/xen-4.17/lib/python \
        "$root"/usr/lib/xen-4.17/boot   # x86's hvmloader and PV shim: HVM and PV-in-PVH only
    for program in "${DOM0_PROGRAMS[@]}"; do
        [ -f "$pkgroot/$program" ] || die "${LOG_PREFIX}$program is not in the dom0 packages"
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

    install_libraries "$root" "$pkgroot"

    # Kernel modules, with their dependency index.
    mkdir -p "$root/usr/lib/modules"
    cp -a "$dom0/modules/$release" "$root/usr/lib/modules/"
    depmod -b "$root" "$release"

    # Our own files: /init, the helpers and the library dom0's scripts source.
    cp "$TESTBED_DIR/dom0/init" "$root/init"
    cp "$TESTBED_DIR"/dom0/bin/* "$root/usr/local/bin/"
    chmod 0755 "$root/init" "$root"/usr/local/bin/*
    cp "$TESTBED_DIR"/dom0/lib/* "$root/usr/local/lib/testbed/"
    cp -r "$TESTBED_DIR"/dom0/etc/. "$root/etc/"
    if [ -n "$DOM0_ARCH_CONF" ]; then cp "$DOM0_ARCH_CONF" "$root/etc/testbed-arch.conf"; fi

    pack_initramfs "$root" 6 "$DOM0_INITRAMFS"
    echo "$key" > "$dom0/initramfs.stamp"
    log "  $(du -h "$DOM0_INITRAMFS" | cut -f1) in $((SECONDS - started)) s"
}

# --- All steps --------------------------------------------------------------------------------------
# Every step, under the host's lock, unless the cache is ready for these very inputs.
setup_test_host() {
    # Fast path: nothing changed since the last complete run.
    local ready; ready="$(inputs_fingerprint) $(package_spec)"
    if stamp_matches "$HOST_CACHE/ready" "$ready" && [ -x "$QEMU_BIN" ] && [ -f "$XEN_IMAGE" ] \
            && [ -f "$DOM0_KERNEL" ] && [ -f "$DOM0_INITRAMFS" ]; then
        log "${LOG_PREFIX}test host is up to date (cache: $HOST_CACHE)"
        return 0
    fi
    mkdir -p "$HOST_CACHE"
    # Two runs at once (make run beside make test) must not build the same files together.
    exec 9> "$HOST_CACHE/.lock"
    if ! flock -n 9; then
        log "${LOG_PREFIX}waiting for another setup to finish"
        flock 9
    fi
    if stamp_matches "$HOST_CACHE/ready" "$ready"; then
        log "${LOG_PREFIX}test host is up to date (cache: $HOST_CACHE)"
        return 0
    fi
    log "${LOG_PREFIX}setting up the test host in $HOST_CACHE"
    rm -f "$HOST_CACHE/ready"
    prepare_host
    resolve_manifests
    download_missing
    setup_qemu
    setup_xen
    setup_kernel
    build_initramfs
    echo "$ready" > "$HOST_CACHE/ready"
    log "${LOG_PREFIX}test host ready"
}

# --- The benchmark peer (--peer) -------------------------------------------------------------------
# Linux (dom0's kernel) + nginx as a domU, into PEER_DIR: PEER_KERNEL and initramfs.cpio.gz. Its
# packages are resolved apart from the test host's lists (their own spec stamp), so that asking for
# the peer never re-resolves, re-downloads or rebuilds what `make test` uses.
peer_spec() {
    { declare -p PEER_PACKAGES; declare -f apt_show resolve; } | sha256sum | cut -c1-16
}

# The peer's manifest, peer.list (from MACHINE_APT_CACHE), unless it was resolved from this very
# peer_spec.
resolve_peer_manifest() {
    local spec; spec=$(peer_spec)
    stamp_matches "$MANIFESTS/peer.spec" "$spec" && [ -s "$MANIFESTS/peer.list" ] && return 0
    log "${LOG_PREFIX}resolving the peer's package versions (apt-cache)"
    mkdir -p "$MANIFESTS"
    ensure_apt_lists
    resolve "$MANIFESTS/peer.list" "$MACHINE_APT_CACHE" '^$' "${PEER_PACKAGES[@]}"
    grep -q '^nginx ' "$MANIFESTS/peer.list" || die "${LOG_PREFIX}resolving the peer packages found no nginx"
    echo "$spec" > "$MANIFESTS/peer.spec"
}

# What the peer image is made from: its package list, the kernel, and PEER_INPUTS (the host's
# script, setup-lib.sh and testbed/peer/).
peer_fingerprint() {
    { cat "$MANIFESTS/peer.list" "$HOST_CACHE/dom0/kernel.stamp"
      (cd "$TESTBED_DIR" && find "${PEER_INPUTS[@]}" -type f | LC_ALL=C sort | xargs cat); } \
        | sha256sum | cut -c1-16
}

# The peer's initramfs and kernel in PEER_DIR, unless they were built from these very inputs.
build_peer() {
    local key; key=$(peer_fingerprint)
    stamp_matches "$PEER_DIR/stamp" "$key" && [ -f "$PEER_DIR/$PEER_KERNEL" ] \
        && [ -f "$PEER_DIR/initramfs.cpio.gz" ] && return 0
    log "${LOG_PREFIX}building the benchmark peer (Linux + nginx) in $PEER_DIR"
    local started=$SECONDS pkgroot=$PEER_DIR/pkgroot
    mkdir -p "$PEER_DIR"
    extract_once "$MANIFESTS/peer.list" "$pkgroot"

    local root=$PEER_DIR/root.tmp dir
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,etc/nginx,dev,proc,sys,run,tmp,root} \
             "$root"/usr/{bin,sbin,lib/modules} "$root/$LIBDIR" "$root"/var/{log,lib}
    for dir in "${USR_LINKS[@]}"; do mkdir -p "$root/usr/$dir"; done
    link_merged_usr "$root"
    install_busybox "$root" "$pkgroot"
    local program
    for program in "${PEER_PROGRAMS[@]}"; do
        [ -f "$pkgroot/$program" ] || die "${LOG_PREFIX}$program is not in the peer packages"
        cp "$pkgroot/$program" "$root/$program"
    done
    install_libraries "$root" "$pkgroot"

    # The vif driver, from the same kernel package as dom0's modules (no dependencies of its own:
    # the /init loads it by path, no depmod needed).
    local deb; deb=$(awk '{print $1}' "$MANIFESTS/kernel.list" | grep '^linux-image-')
    dpkg-deb --fsys-tarfile "$(package_deb "$deb" "$MANIFESTS/kernel.list")" \
        | tar -x -O --wildcards "./lib/modules/*/kernel/$PEER_MODULE" > "$root/usr/lib/modules/xen-netfront.ko"
    [ -s "$root/usr/lib/modules/xen-netfront.ko" ] || die "${LOG_PREFIX}$PEER_MODULE is not in $deb"
    [ -z "$(modinfo -F depends "$root/usr/lib/modules/xen-netfront.ko")" ] \
        || die "${LOG_PREFIX}xen-netfront now has module dependencies: load them in testbed/peer/init"

    install -m 0755 "$TESTBED_DIR/peer/init" "$root/init"
    install -m 0755 "$TESTBED_DIR/peer/udhcpc.script" "$root/etc/udhcpc.script"
    install -m 0644 "$TESTBED_DIR/peer/nginx.conf" "$root/etc/nginx/nginx.conf"
    # nginx looks its user up (glibc's built-in files NSS).
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\n' > "$root/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files\n' > "$root/etc/nsswitch.conf"

    pack_initramfs "$root" 9 "$PEER_DIR/initramfs.cpio.gz"
    # Debian's kernel runs as a domU as it is, the same file dom0 boots: on x86_64 as a PVH guest
    # (CONFIG_XEN_PVH) and as a PV one, on ARM64 as Xen on ARM's one kind of guest.
    cp "$DOM0_KERNEL" "$PEER_DIR/$PEER_KERNEL"
    echo "$key" > "$PEER_DIR/stamp"
    log "  peer: kernel $(du -h "$PEER_DIR/$PEER_KERNEL" | cut -f1), initramfs $(du -h "$PEER_DIR/initramfs.cpio.gz" | cut -f1) in $((SECONDS - started)) s"
}

# The peer's steps, under the cache's lock (after setup_test_host).
setup_peer() {
    # Fast path, without the lock: built from these very inputs already.
    if [ -s "$MANIFESTS/peer.list" ] && stamp_matches "$MANIFESTS/peer.spec" "$(peer_spec)" \
            && stamp_matches "$PEER_DIR/stamp" "$(peer_fingerprint)" && [ -f "$PEER_DIR/initramfs.cpio.gz" ] \
            && [ -f "$PEER_DIR/$PEER_KERNEL" ]; then
        log "${LOG_PREFIX}benchmark peer is up to date ($PEER_DIR)"
        return 0
    fi
    exec 9> "$HOST_CACHE/.lock"
    flock 9
    resolve_peer_manifest
    download_missing
    build_peer
}
