"""A small project built and tested in the busybox image (sed + sh, no compiler).

``gen`` turns ``src/words.txt`` into ``out/words.txt`` with sed; ``asm``
assembles an executable ``bin/tool`` that prints it; the test ``check`` runs
the tool, compares with the expected text and writes ``junit.xml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.stages.helpers import from_node, node, pinned, plan_draft

GEN = "mkdir -p out && sed 's/o/0/g' src/words.txt > out/words.txt && echo generated"
ASM = (
    "mkdir -p bin && { echo '#!/bin/sh'; echo 'cat <<EOF'; cat in/words.txt; echo EOF; }"
    " > bin/tool && chmod 755 bin/tool"
)
CHECK = """got=$(sh bin/tool)
want='{want}'
if [ "$got" = "$want" ]; then
  case='<testcase classname="tool" name="prints_words"/>'; rc=0
else
  case='<testcase classname="tool" name="prints_words"><failure message="mismatch"/></testcase>'
  rc=1
fi
printf '<?xml version="1.0"?><testsuite name="tool" tests="1">%s</testsuite>' "$case" > junit.xml
{exit}
"""
GOOD = "hell0\nw0rld"


def source_tree(repo: Repo, tmp: Path) -> ObjectId:
    src = tmp / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "words.txt").write_text("hello\nworld\n")
    return repo.write_tree(src)


def project_plan(
    image: str, src: ObjectId, *, want: str = GOOD, report_only: bool = False
) -> dict[str, Any]:
    """The plan; with ``report_only`` the check exits 0 and reports only through JUnit."""
    budget = {"time_ms": 60_000}
    exit_line = "exit 0" if report_only else "exit $rc"
    return plan_draft(
        [
            node(
                "gen",
                image=image,
                command=["/bin/sh", "-c", GEN],
                inputs=[pinned("src", src)],
                outputs=["out"],
                budgets=budget,
            ),
            node(
                "asm",
                image=image,
                command=["/bin/sh", "-c", ASM],
                inputs=[from_node("in", "gen", "out")],
                outputs=["bin"],
                budgets=budget,
            ),
            node(
                "check",
                kind="test",
                image=image,
                command=["/bin/sh", "-c", CHECK.format(want=want, exit=exit_line)],
                inputs=[from_node("bin", "asm", "bin")],
                outputs=["junit.xml"],
                budgets=budget,
            ),
        ]
    )
