#!/usr/bin/env bash
# Checks the unsafe perimeter that README.md's "Where unsafe lives" describes:
# - every crate root (each target of each package in the workspace and in
#   fuzz/: lib, bins, tests, benches, build script) has #![deny(unsafe_code)]
#   or #![forbid(unsafe_code)];
# - #[allow(unsafe_code)] appears only, in exactly that form, on a module
#   declared in its own file (`mod name;`), except on the items listed in
#   EXCEPTIONS below;
# - the modules those allows open are exactly the paths README.md lists: a
#   module with submodules as its directory (`kernel/src/arch/x86_64/`), any
#   other as its file (`dma/src/buffer.rs`).
# Prints what differs and exits non-zero when any of that is not so.
set -euo pipefail
cd "$(dirname "$0")/.."

# Allows on something other than a module, as "file|start of the item".
# kernel::entry_point! exports the appliance's entry symbol: the allow sits on
# the generated function, in the appliance crate, so no module can carry it.
EXCEPTIONS=(
    'kernel/src/lib.rs|extern "Rust" fn __xenecho_main('
)

failed=0
fail() { echo "check-unsafe: FAIL: $*" >&2; failed=1; }

# Crate roots: every target's source file, from Cargo's own view of both workspaces.
roots=""
for manifest in Cargo.toml fuzz/Cargo.toml; do
    metadata=$(cargo metadata --no-deps --offline --format-version 1 --manifest-path "$manifest") ||
        { echo "check-unsafe: FAIL: cargo metadata failed for $manifest" >&2; exit 1; }
    roots+=$(tr '{' '\n' <<<"$metadata" | sed -n 's/.*"kind":\[[^]]*\].*"src_path":"\([^"]*\)".*/\1/p')$'\n'
done
roots=$(sed -e "s|^$PWD/||" -e '/^$/d' <<<"$roots" | sort -u)
[ -n "$roots" ] || fail "cargo metadata listed no crate roots"
for root in $roots; do
    grep -qE '^#!\[(deny|forbid)\(unsafe_code\)\]' "$root" ||
        fail "$root: a crate root without #![deny(unsafe_code)] or #![forbid(unsafe_code)]"
done

# Every line naming unsafe_code in an allow or expect, and the item it is on
# (the first line after it that is not an attribute, a comment or blank):
#   MOD <file> <line> <name> <#[path] value or ->   for `#[allow(unsafe_code)] mod name;`
#   ITEM <file> <line> <item>                       for anything else
sources=$(find . \( -name target -o -name .git -o -name build \) -prune -o -name '*.rs' -print | sed 's|^\./||' | sort)
# shellcheck disable=SC2086 # one word per file
allows=$(awk '
    FNR == 1 { pending = 0; path = "-" }
    {
        line = $0
        sub(/^[ \t]+/, "", line)
        if (line ~ /^\/\//) next                       # comments, doc comments
        code = line
        sub(/[ \t]*\/\/.*$/, "", code)                 # a trailing comment
        if (code == "") next
        if (code ~ /(allow|expect)\(([^)]*[ ,])?unsafe_code/) {
            if (code ~ /^#\[allow\(unsafe_code\)\]/) {
                pending = 1; where = FILENAME "\t" FNR
                code = substr(code, length("#[allow(unsafe_code)]") + 1)
                sub(/^[ \t]+/, "", code)
                if (code == "") next
            } else {
                print "ITEM\t" FILENAME "\t" FNR "\t" code
                next
            }
        }
        if (code ~ /^#\[.*\]$/) {                      # another attribute
            if (code ~ /^#\[path *= *"/) { path = code; sub(/^#\[path *= *"/, "", path); sub(/".*/, "", path) }
            next
        }
        if (pending) {
            if (code ~ /^(pub(\([^)]*\))? +)?mod +[A-Za-z_][A-Za-z0-9_]* *;$/) {
                name = code
                sub(/^(pub(\([^)]*\))? +)?mod +/, "", name); sub(/ *;$/, "", name)
                print "MOD\t" where "\t" name "\t" path
            } else {
                print "ITEM\t" where "\t" code
            }
        }
        pending = 0; path = "-"
    }
' $sources)

is_root() { grep -qxF "$1" <<<"$roots"; }
modules=()
while IFS=$'\t' read -r kind file line rest; do
    [ -n "$kind" ] || continue
    if [ "$kind" = ITEM ]; then
        excepted=0
        for exception in "${EXCEPTIONS[@]}"; do
            [ "$file" = "${exception%%|*}" ] && [[ "$rest" == "${exception#*|}"* ]] && excepted=1
        done
        [ "$excepted" = 1 ] || fail "$file:$line: unsafe_code allowed other than by #[allow(unsafe_code)] on a \`mod name;\`: $rest"
        continue
    fi
    IFS=$'\t' read -r name path <<<"$rest"
    if [ "$path" != - ]; then
        module="$(dirname "$file")/$path"
        [[ "$module" == */mod.rs ]] && module="${module%mod.rs}"
    else
        # Where a file's submodules live: beside lib.rs, main.rs, mod.rs and
        # other crate roots; in the directory named after any other file.
        case "$(basename "$file")" in
            lib.rs | main.rs | mod.rs) children=$(dirname "$file") ;;
            *) if is_root "$file"; then children=$(dirname "$file"); else children="${file%.rs}"; fi ;;
        esac
        if [ -d "$children/$name" ]; then module="$children/$name/"; else module="$children/$name.rs"; fi
    fi
    [ -e "$module" ] || fail "$file:$line: module $name: $module does not exist"
    modules+=("$module")
done <<<"$allows"

# The README's list: one item per module, "- `path`: what the unsafe code does".
# shellcheck disable=SC2016 # the backquotes are Markdown's
listed=$(awk '/^## / { inside = ($0 == "## Where unsafe lives") } inside' README.md |
    sed -n 's/^- `\([^`]*\)`.*/\1/p' | sort)
allowed=$(printf '%s\n' "${modules[@]}" | sort)
[ -n "$listed" ] || fail "README.md lists no paths under \"## Where unsafe lives\""

only_allowed=$(comm -23 <(echo "$allowed") <(echo "$listed"))
only_listed=$(comm -13 <(echo "$allowed") <(echo "$listed"))
[ -z "$only_allowed" ] || fail "#[allow(unsafe_code)] opens these, README.md does not list them:
$only_allowed"
[ -z "$only_listed" ] || fail "README.md lists these, no #[allow(unsafe_code)] opens them:
$only_listed"

if [ "$failed" != 0 ]; then exit 1; fi
echo "check-unsafe: $(wc -l <<<"$roots") crate roots deny or forbid unsafe code;" \
    "unsafe code is allowed in the ${#modules[@]} modules README.md lists"
