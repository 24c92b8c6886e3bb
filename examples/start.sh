#!/usr/bin/env bash
# The guided first run, unattended: `steve start --yes` in a new, empty folder
# walks from nothing to a tested example (init, a design from the example's
# words, a run, the example project's files, its offline busybox image, plan,
# build, test), printing each `steve` command before it runs it.  On a terminal,
# `steve` alone in an empty folder asks the questions instead
# (docs/getting-started.md).  Needs the Docker Engine and a static /bin/busybox
# like examples/project; uses the passphrase in STEVE_PASSPHRASE (tour.sh sets
# it) and its own folder, not STEVE_DIR's repository.  The image tag it made is
# removed at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
folder="$(mktemp -d)/hello"
mkdir -p "$folder"
# shellcheck source=project/image.sh
. "$here/project/image.sh"   # example_image_remove
tag=$(python3 -c 'import sys; from pathlib import Path; from steve.porcelain.guide import image_tag; print(image_tag(Path(sys.argv[1]).resolve()))' "$folder")
trap 'example_image_remove "$tag"; rm -rf "$(dirname "$folder")"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "cd $folder && steve start --yes   (the guided first run, with the example's answers)"
(cd "$folder" && env -u STEVE_DIR steve start --yes </dev/null)
say "steve status   (in $folder)"
(cd "$folder" && env -u STEVE_DIR steve status)
