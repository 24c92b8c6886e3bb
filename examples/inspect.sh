#!/usr/bin/env bash
# Inspect mode: where the run stands and what blocks it, its manifests, the plan
# DAG (terminal drawing, Graphviz, Mermaid), the decision history, resources and
# logs, and the errors that keep coming back.  Needs no network and no API key
# (containers are asked about if an engine runs; without one it says so).
# Run from anywhere.  See docs/inspect.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export STEVE_DIR="$work/project"
export STEVE_PASSPHRASE="${STEVE_PASSPHRASE:-inspect-passphrase}"
export STEVE_AUTHOR_NAME="Inspector" STEVE_AUTHOR_EMAIL="inspect@example.invalid"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

mkdir -p "$STEVE_DIR"
run steve init "$STEVE_DIR"
run steve run new --name word-counter
run steve inspect state                      # DESIGN: RESEARCH is blocked until a design exists
run steve design "$here/design.yaml"
printf 'Content-addressed storage: objects are named by the hash of their bytes.\n' \
  | steve hash-object -w --stdin >/dev/null       # the source the research cites
run steve research "$here/research.yaml"
run steve plan "$here/plan.yaml"
run steve inspect state                      # PLAN: BUILD is ready (a frozen plan exists)
run steve inspect manifests
run steve inspect dag                        # every node "not run" yet
run steve inspect dag --ascii
run steve inspect dag --format dot
run steve inspect dag --format mermaid
run steve run goto BUILD --reason "plan reviewed"
run steve inspect decisions
run steve inspect resources
run steve inspect logs -n 5
run steve inspect logs --type run.transition --json
say "steve cat-file -p deadbeef   (fails twice: each failure is counted by its code)"
steve cat-file -p deadbeef || true
steve cat-file -p deadbeef || true
run steve inspect errors
run steve inspect errors --json
