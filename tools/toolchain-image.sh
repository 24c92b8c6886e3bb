#!/usr/bin/env bash
# Make a container image holding a toolchain (Python, a C compiler, ...) from
# this host's installed Debian packages, offline: no registry, no network.
#
#   tools/toolchain-image.sh --tag NAME[:TAG] PACKAGE...
#
# The files of each PACKAGE (`dpkg -L`, without documentation) and, for every
# ELF file among them, the shared libraries and loader `ldd` names are copied
# into an empty root (FROM scratch), with dash as /bin/sh (steps run through
# /bin/sh), a minimal /etc/passwd and a /tmp;
# the root is packed as a tarball and imported with `steve image import`.
# The image id (sha256:...) is printed on standard output: pin it in a plan.
# Progress goes to standard error.  Examples (Debian 12):
#
#   tools/toolchain-image.sh --tag steve-python:3.11 python3.11-minimal libpython3.11-minimal
#   tools/toolchain-image.sh --tag steve-gcc:12 gcc-12 cpp-12 binutils \
#       binutils-x86-64-linux-gnu libgcc-12-dev libc6-dev linux-libc-dev
#
# A program that loads files the packages do not list (data from another
# package, a plugin found at run time) needs that package named too.
set -euo pipefail

tag=""
packages=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag="${2:?--tag needs NAME[:TAG]}"; shift 2 ;;
        --tag=*) tag="${1#--tag=}"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "toolchain-image: unknown option $1" >&2; exit 2 ;;
        *) packages+=("$1"); shift ;;
    esac
done
if [ -z "$tag" ] || [ ${#packages[@]} -eq 0 ]; then
    echo "usage: tools/toolchain-image.sh --tag NAME[:TAG] PACKAGE..." >&2
    exit 2
fi
# a step runs as `/bin/sh /steve/cmd` (steve.exec.launch): every image needs a POSIX
# shell, so Debian's dash (an essential package, about 130 kB) always comes along
case " ${packages[*]} " in *" dash "*) ;; *) packages+=(dash) ;; esac
for tool in dpkg dpkg-query ldd tar steve; do
    command -v "$tool" >/dev/null || { echo "toolchain-image: $tool is required" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"

# put SRC [deref]: copy a host path into the root at the same path.  Nothing is ever
# written through a path already in the root (a symlink there may point at the
# host), directories are always real directories (a host directory link such as
# /lib64 -> usr/lib64 becomes a directory), file symlinks are kept unless deref.
put() {
    local src="$1" dst="$root$1"
    [ -e "$dst" ] || [ -L "$dst" ] && return 0
    mkdir -p "$(dirname "$dst")"
    if [ -d "$src" ]; then
        mkdir -p "$dst"
    elif [ "${2:-}" = deref ]; then
        cp -L "$src" "$dst"
    elif [ -e "$src" ] || [ -L "$src" ]; then
        cp -a "$src" "$dst"
    fi
}

files="$work/files"
: > "$files"
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        echo "toolchain-image: package $pkg is not installed (apt-get install $pkg)" >&2
        exit 2
    fi
    echo "toolchain-image: $pkg" >&2
    dpkg -L "$pkg" | grep -Ev '^/usr/share/(doc|man|info|locale|lintian|bug|bash-completion)(/|$)' \
        >> "$files" || true
done

while IFS= read -r path; do
    put "$path"
done < "$files"

# the shared libraries and the loader of every ELF file copied (dlopen'd extension
# modules are files of the packages, so their own libraries come along too)
libs="$work/libs"
: > "$libs"
while IFS= read -r path; do
    [ -f "$path" ] && [ ! -L "$path" ] || continue
    case "$path" in *.so|*.so.*) ;; *) [ -x "$path" ] || continue ;; esac
    [ "$(head -c 4 "$path" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    ldd "$path" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}' >> "$libs" || true
done < "$files"
sort -u "$libs" | while IFS= read -r lib; do
    put "$lib" deref                        # the library at the path the loader asks for
    put "$(readlink -f "$lib")" deref       # and at its real path
done

# /bin/sh is dash here, whatever the host's /bin/sh points at
rm -f "$root/bin/sh"
ln -s dash "$root/bin/sh"

# who the steps run as (uid 65534) and root, for programs that look users up
rm -f "$root/etc/passwd" "$root/etc/group"
printf 'root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n' \
    > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
size=$(du -sh "$work/rootfs.tar" | cut -f1)
echo "toolchain-image: steve image import ($size rootfs) as $tag" >&2
steve image import "$work/rootfs.tar" --name "$tag"
