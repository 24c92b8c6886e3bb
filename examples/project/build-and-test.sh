#!/usr/bin/env bash
# Build and test the example project in containers, then show the certificate
# and replay every step by hash.  Needs the Docker Engine (DOCKER_HOST or the
# local socket) and a static /bin/busybox (Debian's busybox-static); nothing is
# pulled.  Expects STEVE_DIR (an initialised repository) and a key in the
# environment, like examples/tour.sh sets them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

if [ ! -x /bin/busybox ]; then   # Debian's static busybox: the image's only file
    say "apt-get install busybox-static   (for the offline FROM scratch image)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y -q busybox-static >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q busybox-static >/dev/null; }
fi
cp /bin/busybox "$here/image/Dockerfile" "$ctx/"
say "steve image build (FROM scratch + static busybox, offline)"
image=$(steve image build "$ctx" --tag steve-example-busybox:latest)
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
