"""`steve build` and `steve replay` at a terminal (a pty as standard error): the display
names the step that is running and counts the nodes; the per-node lines on standard
output are those of a run without a terminal; with pipes no progress is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from steve.exec import Engine, ImageRecord
from steve.repo import Repo
from tests.ptyrun import run_in_pty, run_plain
from tests.stages.helpers import node, pinned, plan_draft, run_with_plan

BAR = "\u2501"


@pytest.mark.slow
def test_build_at_a_terminal_names_the_running_node(
    repo: Repo,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    src = repo.write_blob(b"x")
    draft = plan_draft(
        [
            node(
                "slow-compile",
                image=busybox_image.id,
                command=["sh", "-c", "sleep 1.5; echo built"],
                inputs=[pinned("s", src)],
            ),
            node("quick-link", image=busybox_image.id, inputs=[pinned("s", src)]),
        ]
    )
    run_with_plan(repo, draft)
    repo.close()
    env = {k: v for k, v in steve_env.items() if k != "STEVE_QUIET"}

    shown = run_in_pty(["build"], env, tmp_path)
    assert shown.code == 0, shown.text
    assert "running slow-compile" in shown.text, shown.text
    assert re.search(r"build .*2/2 nodes", shown.text), shown.text
    assert BAR in shown.text
    lines = shown.stdout.decode().splitlines()
    assert [ln.split()[0] for ln in lines[:2]] == ["built", "built"], lines

    # the second build reuses both receipts: the same nodes, cached, and no progress
    # byte without a terminal
    plain = run_plain(["build"], env)
    assert plain.returncode == 0, plain.stderr
    assert [ln.split()[0] for ln in plain.stdout.decode().splitlines()[:2]] == [
        "cached",
        "cached",
    ]
    assert b"\x1b" not in plain.stderr and BAR.encode() not in plain.stderr
    assert b"started" not in plain.stderr

    # replay of every receipt: counted steps, the verdict lines on stdout unchanged
    shown = run_in_pty(["replay", "--all", "r"], env, tmp_path)
    assert shown.code == 0, shown.text
    assert "replay" in shown.text and "2/2 steps" in shown.text, shown.text
    plain = run_plain(["replay", "--all", "r"], env)
    assert plain.returncode == 0, plain.stderr

    def verdicts(out: bytes) -> list[list[str]]:  # (verdict, receipt, node) per line
        return [ln.split()[:3] for ln in out.decode().splitlines()]

    assert verdicts(shown.stdout) == verdicts(plain.stdout)
    assert len(verdicts(plain.stdout)) == 2
    assert b"\x1b" not in plain.stderr
