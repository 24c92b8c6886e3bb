# Shell functions for the examples (source it): build the example image offline
# from a static busybox, and remove it again.  Needs the Docker Engine; nothing
# is pulled.  If /bin/busybox is missing, Debian's busybox-static (a system
# package) is installed first.

example_image_build() {  # CONTEXT_DIR TAG -> prints the image id
    local ctx="$1" tag="$2" here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    if [ ! -x /bin/busybox ]; then   # Debian's static busybox: the image's only file
        local SUDO=""
        if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
        printf '\n\033[1m$ %s\033[0m\n' "${SUDO:+$SUDO }apt-get install busybox-static   (installing a system package: /bin/busybox is missing and the offline FROM scratch image is built from it)" >&2
        $SUDO apt-get install -y -q busybox-static >/dev/null 2>&1 \
            || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q busybox-static >/dev/null; }
    fi
    cp /bin/busybox "$here/image/Dockerfile" "$ctx/"
    steve image build "$ctx" --tag "$tag"
}

example_image_remove() {  # TAG
    python3 -c 'import sys, docker.errors
from steve.exec import connect
engine = connect()
try:
    engine.api.remove_image(sys.argv[1], force=True)
except docker.errors.NotFound:
    pass
finally:
    engine.close()' "$1" || echo "could not remove the image tag $1" >&2
}
