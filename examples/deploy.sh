#!/usr/bin/env bash
# DEPLOY under the host prompt rule, without a terminal: the first attempt is denied and
# records an approval request, `steve approve` grants it (for exactly that action, once),
# the second attempt writes the certified artifacts atomically to TARGET and freezes the
# deploy receipt.  Expects STEVE_DIR and a key in the environment, and a current run
# whose build passed `steve test` (examples/project/build-and-test.sh leaves one).
set -euo pipefail
target="${1:?usage: deploy.sh TARGET   (a folder that does not exist yet)}"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

run steve deploy --to "$target" --dry-run            # the preview: files, sizes, ids
say "steve deploy --to $target   (no terminal and no approval: denied, a request recorded)"
steve deploy --to "$target" </dev/null || echo "exit status $?"
run steve approvals
id=$(steve approvals --json | python3 -c '
import json, sys
pending = [json.loads(line) for line in sys.stdin if line.strip()]
print(next(a["id"] for a in reversed(pending) if a["state"] == "pending"))')
run steve approve "${id:0:12}" --reason "tour: the certified build of the word tool"
say "steve deploy --to $target   (the granted approval matches this exact action)"
out=$(steve deploy --to "$target" </dev/null)
echo "$out"
receipt=$(awk '$1 == "receipt" {print $2}' <<<"$out")
run find "$target" -type f
run "$target/bin/tool"
run steve cat "$receipt"                            # the decision and the written digests
run steve approvals --all                           # the approval is used up
run steve run transitions                           # TEST -> DEPLOY through the state machine
