#!/usr/bin/env bash
# Inspect mode: where the run stands and what blocks it, its manifests, the plan
# DAG (terminal drawing, Graphviz, Mermaid), the decision history, resources and
# logs, and the errors that keep coming back.  Needs no network and no API key
# (containers are asked about if an engine runs; without one it says so).
# With STEVE_DIR naming an initialised repository (as tour.sh leaves it) it
# inspects that one; otherwise it makes a repository with a run walked to BUILD.
# Run from anywhere.  See docs/inspect.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

if [ -z "${STEVE_DIR:-}" ] || [ ! -d "$STEVE_DIR/.steve" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  export STEVE_DIR="$work/project"
  export STEVE_PASSPHRASE="${STEVE_PASSPHRASE:-inspect-passphrase}"
  export STEVE_AUTHOR_NAME="Inspector" STEVE_AUTHOR_EMAIL="inspect@example.invalid"
  mkdir -p "$STEVE_DIR"
  run steve init "$STEVE_DIR"
  run steve run new --name word-counter
  run steve inspect state                    # DESIGN: RESEARCH blocked until a design exists
  run steve design "$here/design.yaml"
  printf 'Content-addressed storage: objects are named by the hash of their bytes.\n' \
    | steve hash-object -w --stdin >/dev/null   # the source the research cites
  run steve research "$here/research.yaml"
  run steve plan "$here/plan.yaml"
  run steve run goto BUILD --reason "plan reviewed"
fi

run steve inspect state                      # the stage, where it may go, what blocks it
run steve inspect manifests
run steve inspect dag                        # each node's last status
run steve inspect dag --ascii
run steve inspect dag --format dot
run steve inspect dag --format mermaid
run steve inspect decisions
run steve inspect resources
run steve inspect logs -n 5
run steve inspect logs --type run.transition --json
say "steve cat-file -p deadbeef   (fails twice: each failure is counted by its code)"
steve cat-file -p deadbeef || true
steve cat-file -p deadbeef || true
run steve inspect errors
run steve inspect errors --json
