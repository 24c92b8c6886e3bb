#!/usr/bin/env bash
# Build and test the example project in containers, then show the certificate
# and replay every step by hash.  Needs the Docker Engine (DOCKER_HOST or the
# local socket) and a static /bin/busybox (Debian's busybox-static); nothing is
# pulled.  Expects STEVE_DIR (an initialised repository) and a key in the
# environment, like examples/tour.sh sets them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ctx="$(mktemp -d)"
tag="steve-example-busybox:tour-$$"   # this run's tag, removed on exit with its image
untag() {
    python3 -c 'import sys, docker.errors
from steve.exec import connect
engine = connect()
try:
    engine.api.remove_image(sys.argv[1], force=True)
except docker.errors.NotFound:
    pass
finally:
    engine.close()' "$tag" || echo "could not remove the image tag $tag" >&2
}
trap 'rm -rf "$ctx"; untag' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

if [ ! -x /bin/busybox ]; then   # Debian's static busybox: the image's only file
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    say "${SUDO:+$SUDO }apt-get install busybox-static   (installing a system package: /bin/busybox is missing and the offline FROM scratch image is built from it)"
    $SUDO apt-get install -y -q busybox-static >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q busybox-static >/dev/null; }
fi
cp /bin/busybox "$here/image/Dockerfile" "$ctx/"
say "steve image build --tag $tag   (FROM scratch + static busybox, offline; removed at the end)"
image=$(steve image build "$ctx" --tag "$tag")
echo "$image"
src=$(steve write-tree "$here/src")
sed -e "s|@IMAGE@|$image|g" -e "s|@SRC@|$src|g" "$here/plan.yaml.in" > "$ctx/plan.yaml"
say "steve run new --name containers"
run_id=$(steve run new --name containers)
echo "$run_id"
run steve run goto RESEARCH --reason "example project"
run steve run goto PLAN --reason "plan written by hand"
run steve plan "$ctx/plan.yaml"
run steve build -j 2
run steve build                     # nothing changed: every node comes from the cache
run steve test
run steve cat "refs/runs/$run_id/test_certificate"
run steve replay --all "$run_id"    # re-run every step from its pinned inputs; compare hashes
run steve log --oneline "refs/runs/$run_id/test_certificate"
