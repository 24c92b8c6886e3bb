#!/usr/bin/env bash
# A run through the stage machine with hand-written drafts: freeze a design,
# research it, plan it, walk the run through BUILD and TEST, and read the
# history back.  Needs no network and no API key.  Run from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export STEVE_DIR="$work/project"
export STEVE_PASSPHRASE="${STEVE_PASSPHRASE:-lifecycle-passphrase}"
export STEVE_AUTHOR_NAME="Lifecycle" STEVE_AUTHOR_EMAIL="lifecycle@example.invalid"
export SOURCE_DATE_EPOCH=1700000000   # reproducible: the same drafts give the same ids anywhere
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

run steve init "$STEVE_DIR"
run steve schema design | head -n 12
run steve run new --name word-counter
run steve design "$here/design.yaml"
run steve status

say "steve plan examples/plan.yaml   (DESIGN -> PLAN skips RESEARCH: rejected, nothing stored)"
steve plan "$here/plan.yaml" || echo "exit status $?"

# the research cites a cached source: store its content first
say "printf '...' | steve hash-object -w --stdin"
printf 'Content-addressed storage: objects are named by the hash of their bytes.\n' \
  | steve hash-object -w --stdin
run steve research "$here/research.yaml"
run steve plan "$here/plan.yaml"
run steve run goto BUILD --reason "plan reviewed"
run steve run goto TEST
run steve run goto BUILD --reason "a test failed; fix and rebuild"
run steve run transitions
run steve log --oneline --graph
run steve log -n 1
design=$(steve log --format=%H --kind design -n 1)
run steve cat-manifest "$design" --format yaml

say "amend the design: constraint C-002 becomes hard"
sed 's/hard: false/hard: true/' "$here/design.yaml" > "$work/design-v2.yaml"
amended=$(steve freeze design "$work/design-v2.yaml" --amends "$design")
echo "$amended"
run steve diff "$design" "$amended"
run steve cat "$amended"

say "steve freeze design (a broken draft: axiom pointing at a soft constraint)"
sed 's/axioms: \[C-001, C-003\]/axioms: [C-002]/' "$here/design.yaml" \
  | steve freeze design - || echo "exit status $?"
run steve status
run steve fsck
