#!/usr/bin/env bash
# RESEARCH offline, from a mirror that ships with the example: four small HTML
# pages (examples/research/pages, listed in examples/research/index.json)
# are mirrored into the repository, excerpts with locators are proposed for
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
say "mirror the example pages (examples/research/index.json: url, file, media_type, fetched_at)"
python3 - "$here/research" <<'PY'
import io, json, os, sys
from pathlib import Path
from steve.objects.model import hash_object
from steve.repo import Repo, write_blob_stream
from steve.research.records import SourceRecord, put_source

base = Path(sys.argv[1])
repo = Repo.open(Path(os.environ["STEVE_DIR"]), passphrase=os.environ["STEVE_PASSPHRASE"])
with repo, repo.transaction() as tx:
    for page in json.loads((base / "index.json").read_text()):
        data = (base / page["file"]).read_bytes()
        cid = write_blob_stream(io.BytesIO(data), lambda o: hash_object(o)[0])
        rec = SourceRecord(page["url"], page["url"], 200, page["media_type"], cid, len(data),
                           page["fetched_at"], charset="utf-8")
        print(put_source(repo, tx, rec, data, now=page["fetched_at"]).hex, page["url"])
PY
run steve research-extract
run steve research-summarize
say "steve research-freeze   (every citation re-checked against the mirrored bytes)"
research=$(steve research-freeze)
echo "$research"
run steve research-show
record=$(steve research-show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"][0]["record"])')
say "steve cat $record   (a source record: its extracted text)"
steve cat "$record" | head -n 8
run steve verify "$research"   # the closure, and every citation re-found at its locator
