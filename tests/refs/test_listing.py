"""Ref listing (steve.refs.listing): for-each-ref's pattern matching checked against the
real `git for-each-ref`, the --format engine, and show-ref's selection."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from steve.errors import InvalidInput
from steve.objects.oid import ObjectId
from steve.refs.listing import (
    RefFormat,
    RefRow,
    for_each_ref,
    for_each_ref_matches,
    short_name,
    show_ref,
)
from steve.refs.refs import Ref
from tests.gitenv import git_exe, scrubbed_git_env

NAMES = [
    "refs/heads/main",
    "refs/heads/ma",
    "refs/heads/maint/x",
    "refs/heads/feature/a-b",
    "refs/tags/v1",
    "refs/tags/v1.0",
    "refs/runs/01AB/plan",
]
OID = ObjectId.from_hex("ab" * 32)


@pytest.fixture(scope="module")
def git_repo() -> Iterator[tuple[Path, dict[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = scrubbed_git_env(root)
        repo = root / "g"
        run = lambda *a: subprocess.run(  # noqa: E731
            [git_exe(), *a], cwd=repo, env=env, check=True, capture_output=True
        )
        repo.mkdir()
        run("init", "-q")
        run("commit", "-q", "--allow-empty", "-m", "c")
        head = run("rev-parse", "HEAD").stdout.decode().strip()
        for name in NAMES:
            run("update-ref", name, head)
        run("update-ref", "-d", "refs/heads/master")
        yield repo, env


def git_selects(git: tuple[Path, dict[str, str]], pattern: str) -> list[str]:
    repo, env = git
    proc = subprocess.run(
        [git_exe(), "for-each-ref", "--format=%(refname)", pattern],
        cwd=repo,
        env=env,
        capture_output=True,
        check=True,
    )
    return sorted(proc.stdout.decode().split())


components = st.sampled_from(
    ["refs", "heads", "tags", "ma", "main", "maint", "v1", "*", "m*", "v?"]
)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(components, min_size=1, max_size=4), slash=st.booleans())
@example(parts=["refs", "heads", "ma"], slash=False)  # issue 11: matched refs/heads/main
@example(parts=["refs", "heads"], slash=True)
@example(parts=["refs", "tags", "v1"], slash=False)
@example(parts=["refs", "*", "ma*"], slash=False)
def test_for_each_ref_patterns_match_like_git(
    git_repo: tuple[Path, dict[str, str]], parts: list[str], slash: bool
) -> None:
    pattern = "/".join(parts) + ("/" if slash else "")
    ours = sorted(n for n in NAMES if for_each_ref_matches(n, [pattern]))
    assert ours == git_selects(git_repo, pattern), pattern


def test_partial_component_does_not_match() -> None:
    assert not for_each_ref_matches("refs/heads/main", ["refs/heads/ma"])
    assert for_each_ref_matches("refs/heads/ma", ["refs/heads/ma"])
    assert for_each_ref_matches("refs/heads/main", ["refs/heads"])


def test_format_engine_fields_and_errors() -> None:
    row = RefRow("refs/heads/main", OID, "tree", None)
    fmt = RefFormat("%(refname:short)|%(objectname:short)|%(objecttype)|%(symref)|%%|%09")
    assert fmt.format(row) == f"main|{OID.short()}|tree||%|\t"
    assert RefFormat().format(row) == f"{OID.hex} tree\trefs/heads/main"
    for bad in ("%(bogus)", "%(objecttype:short)", "%(refname:long)"):
        with pytest.raises(InvalidInput):
            RefFormat(bad)  # checked up front, even when no ref matches


def test_selection_with_count_and_show_ref() -> None:
    refs = [Ref(n, OID) for n in NAMES]
    rows = list(for_each_ref(refs, lambda _: "tree", ["refs/heads/"], count=2))
    assert [r.name for r in rows] == NAMES[:2]
    assert len(list(for_each_ref(refs, lambda _: "tree", (), count=0))) == len(NAMES)
    with pytest.raises(InvalidInput):
        list(for_each_ref(refs, lambda _: "tree", (), count=-1))
    assert [n for n, _ in show_ref(refs, ["main"])] == ["refs/heads/main"]
    assert [n for n, _ in show_ref(refs, tags=True)] == ["refs/tags/v1", "refs/tags/v1.0"]
    assert short_name("refs/runs/01AB/plan") == "runs/01AB/plan"
