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
# shellcheck source=examples/project/image.sh
source "$here/image.sh"   # example_image_build, example_image_remove
trap 'rm -rf "$ctx"; example_image_remove "$tag"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

say "steve image build --tag $tag   (FROM scratch + static busybox, offline; removed at the end)"
image=$(example_image_build "$ctx" "$tag")
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
