#!/usr/bin/env bash
# RESEARCH offline, from a mirror that ships with the example: four small HTML
# pages (examples/research/pages, listed in examples/research/index.json)
# are imported into the repository's mirror (`steve research import`), read
# back offline and searched, excerpts with locators are proposed for
# the design's research questions (examples/design.yaml: RQ-001, RQ-002),
# the scripted provider summarises each question from its excerpts only
# (its first answer for RQ-002 quotes words that are not in the excerpt:
# STEVE rejects that citation and asks once more), every citation is checked
# against the mirrored bytes, and the research is frozen, shown and verified.
# No network, no API key.  Expects STEVE_DIR (an initialised repository) and a
# key in the environment, like examples/tour.sh sets them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }
export STEVE_LLM=scripted   # the offline model (docs/llm.md); --llm anthropic for a real one

say "steve run new --name research"
steve run new --name research
run steve design "$here/design.yaml"
run steve research scope --allow '*.example.org' --allow '*.example.net' --allow '*.example.com'
say "steve research import examples/research   (the shipped mirror: index.json lists url, file, media_type, fetched_at)"
steve research import "$here/research"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["url"])' "$here/research/index.json")
run steve research fetch --offline "$url"   # answered from the mirror: no request is made
run steve research search "word count"      # full-text search over the mirror (FTS5, inside the encrypted database)
run steve research extract
run steve research summarize
say "steve research freeze   (every citation re-checked against the mirrored bytes)"
research=$(steve research freeze)
echo "$research"
run steve research show
record=$(steve research show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"][0]["record"])')
say "steve cat $record   (a source record: its extracted text)"
steve cat "$record" | head -n 8
run steve verify "$research"   # the closure, and every citation re-found at its locator
