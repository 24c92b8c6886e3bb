#!/usr/bin/env bash
# The stages with a model, offline: intake -> design -> plan -> build -> test.
# The scripted provider answers from the fixture shipped with STEVE
# (steve/llm/fixtures/default.yaml): no API key, no network.  The design is
# drafted from one sentence, the plan decomposed from the design (using only
# the image and the input offered), and its generate node gets a unified diff
# from the model that STEVE applies in Python to the input tree before the
# container steps build and test the result.  Then the same work again in a
# new run, answered only from the record (--llm replay:scripted): the same
# design and plan ids, and the generate node's request finds its receipt by
# its generate key, so nothing is asked or built again (`steve build
# --no-cache` would ask the replay provider and rebuild the same trees; the
# tests do that, tests/llmstages).
# Needs the Docker Engine (the image is built offline from a static busybox
# and removed at the end).  Expects STEVE_DIR (an initialised repository) and
# a key in the environment, like examples/tour.sh sets them.
#
# With a real model instead: --llm anthropic with ANTHROPIC_API_KEY set, or a
# local Ollama: --llm openai with OPENAI_BASE_URL=http://localhost:11434/v1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ctx="$(mktemp -d)"
tag="steve-example-busybox:llm-$$"
# shellcheck source=examples/project/image.sh
source "$here/project/image.sh"   # example_image_build, example_image_remove
trap 'rm -rf "$ctx"; example_image_remove "$tag"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }
ask="A command-line tool that prints the words hello, world and steve, every o written as 0."

say "steve image build --tag $tag   (the example image again, for this run)"
image=$(example_image_build "$ctx" "$tag")
echo "$image"
src=$(steve write-tree "$here/project/src")

export STEVE_LLM=scripted   # the offline model; see the comment at the top for a real one
say "steve run new --name word-tool"
run_id=$(steve run new --name word-tool)
echo "$run_id"
say "steve design --intake \"$ask\" --yes"
design=$(steve design --intake "$ask" --yes)
echo "$design"
run steve cat "$design"
run steve run goto RESEARCH --reason "nothing to research"
say "steve plan --decompose --image busybox=$image --input src=$src --yes"
plan=$(steve plan --decompose --image "busybox=$image" --input "src=$src" --yes)
echo "$plan"
run steve build        # the generate node asks for a diff; STEVE applies it, then builds
run steve build        # nothing changed: no question asked, every node from the cache
run steve test
run steve cat-manifest "refs/receipts/$run_id/words" --format yaml
run steve verify "refs/receipts/$run_id/words"   # the closure: exchange, diff, trees

say "the same work again, answered only from the record (--llm replay:scripted): the same ids"
export STEVE_LLM=replay:scripted
run_id2=$(steve run new --name word-tool)
design2=$(steve design --intake "$ask" --yes 2>/dev/null)
steve run goto RESEARCH --reason "nothing to research" >/dev/null
plan2=$(steve plan --decompose --image "busybox=$image" --input "src=$src" --yes 2>/dev/null)
run steve build   # the same request on the same input: the generate key finds the receipt
generated() {   # the diff and the patched tree a generate node's receipt names
    steve cat-manifest "refs/receipts/$1/words" --format json \
        | python3 -c 'import json, sys; g = json.load(sys.stdin)["body"]["generated"]; print(g["diff"], g["result"])'
}
echo "design  $design"; echo "replay  $design2"
echo "plan    $plan"; echo "replay  $plan2"
echo "patch, tree  $(generated "$run_id")"; echo "replay       $(generated "$run_id2")"
if [ "$design2" != "$design" ] || [ "$plan2" != "$plan" ] \
    || [ "$(generated "$run_id")" != "$(generated "$run_id2")" ]; then
    echo "replay gave other ids" >&2
    exit 1
fi
echo "replayed: the same design, plan, patch and tree ids"
