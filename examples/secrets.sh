#!/usr/bin/env bash
# A secret from the vault used by a build step, and absent from everything
# that lasts: the step prints it, its log keeps [REDACTED:DEPLOY_TOKEN], and
# a byte scan of every object of a git export finds no trace of it.  Needs
# the Docker Engine and a static /bin/busybox like examples/project; expects
# STEVE_DIR (an initialised repository) and a key in the environment, like
# examples/tour.sh sets them.  See docs/secrets.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ctx="$(mktemp -d)"
tag="steve-example-secrets:tour-$$"
# shellcheck source=project/image.sh
. "$here/project/image.sh"   # example_image_build, example_image_remove
trap 'rm -rf "$ctx"; example_image_remove "$tag"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

image=$(example_image_build "$ctx" "$tag")
token="tour-token-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"   # a fresh value
say "steve secret set DEPLOY_TOKEN   (the value from standard input, never an argument)"
printf '%s\n' "$token" | steve secret set DEPLOY_TOKEN
cat > "$ctx/plan.yaml" <<YAML
title: Use a secret
nodes:
  - id: publish
    kind: run
    image: "$image"
    command: [/bin/sh, -c, 'echo "publishing with \$DEPLOY_TOKEN"; mkdir -p out; echo done > out/log']
    outputs: [out]
    secrets: [DEPLOY_TOKEN]
grants:
  - {node: publish, capability: secrets, reason: "the step uploads the release"}
YAML
run_id=$(steve run new --name secrets)
steve run goto RESEARCH --reason "secrets example" >/dev/null
steve run goto PLAN --reason "plan written by hand" >/dev/null
run steve plan "$ctx/plan.yaml"
run steve build
run steve logs --node publish       # what the step printed, as it was stored
say "steve cat-manifest --format yaml refs/runs/$run_id/build_receipt | grep -A1 secrets:   (the receipt names the secret and its version, never the value)"
steve cat-manifest --format yaml "refs/runs/$run_id/build_receipt" | grep -A1 ' secrets:'
run steve export-git "$ctx/export.git" --all --bare
say "git cat-file --batch-all-objects --batch | grep -c THE-VALUE   (every object, decompressed)"
found=$(git -C "$ctx/export.git" cat-file --batch-all-objects --batch | grep -c -a -F "$token" || true)
echo "$found"
if [ "$found" != 0 ]; then echo "the secret leaked into the export" >&2; exit 1; fi
