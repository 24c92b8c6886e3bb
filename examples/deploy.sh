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
status=0
refused=$(steve deploy --to "$target" </dev/null 2>&1) || status=$?
echo "$refused"; echo "exit status $status"
id=$(grep -o 'approval request [0-9a-f]*' <<<"$refused" | awk '{print $3}')
run steve approvals                                  # pending (and granted) requests
run steve approve "${id:0:12}" --reason "tour: the certified build of the word tool"
say "steve deploy --to $target   (the granted approval matches this exact action, once)"
out=$(steve deploy --to "$target" </dev/null)
echo "$out"
receipt=$(awk '$1 == "receipt" {print $2}' <<<"$out")
run find "$target" -type f
run "$target/bin/tool"
run steve cat "$receipt"                            # the decision and the written digests
