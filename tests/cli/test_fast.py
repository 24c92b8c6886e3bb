"""The start-up fast path (steve.cli.fast) answers exactly what click would.

The command lines it takes are read as click reads them (a property test
over argv made of the tokens that matter), and for each command it answers,
its output, error and exit code equal the full path's, run in a subprocess
with the key in the kernel keyring: blobs, trees, manifests, missing and
ambiguous ids, ``-e``, ``log --oneline``, ``-C``/``--repo=``/``STEVE_DIR``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steve.cli.app import cli
from steve.cli.fast import CAT_MODES, parse
from steve.objects.model import Manifest, Mode, ObjectType, Tree, TreeEntry
from steve.repo import Repo
from steve.store import keycache
from steve.store.kdf import KdfParams

PASSPHRASE = "pw"
BODY = {
    "project_id": "p",
    "name": "a",
    "created_at": 1,
    "intent": {"summary": "s\u00e9", "detailed": "d"},
}
TOKENS = [
    "-C", "--repo", "--repo=", "--repo=d", "d", "-q", "--quiet", "-Cd", "cat-file", "log",
    "--oneline", *CAT_MODES, "--raw", "--batch", "REV", "-n", "3", "--json", "--", "",
    "--help", "-h", "--version", "-", "-tp",
]  # fmt: skip


def click_reads(argv: list[str]) -> tuple[Path | None, bool, tuple[str, ...]] | None:
    """(repo dir, quiet, the command as the fast path names it) as click parses argv,
    or None when click refuses it or reads something else."""
    try:
        ctx = cli.make_context("steve", list(argv), resilient_parsing=False)
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None
    rest = [*ctx.protected_args, *ctx.args]
    if not rest:
        return None
    sub = cli.get_command(ctx, rest[0])
    if sub is None:
        return None
    try:
        sub_ctx = sub.make_context(rest[0], rest[1:], parent=ctx)
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None
    p = sub_ctx.params
    if rest[0] == "cat-file":
        keys = ("show_type", "show_size", "show_pretty", "exists")
        modes = [m for m, key in zip(CAT_MODES, keys, strict=True) if p[key]]
        others = p["raw"] or p["batch"] or p["batch_check"] or p["batch_all_objects"]
        if len(modes) != 1 or others or p["rev"] is None:
            return None
        command: tuple[str, ...] = ("cat-file", modes[0], p["rev"])
    elif rest[0] == "log":
        if not p["oneline"] or p["revs"] or p["fmt"] or p["kinds"] or p["graph"]:
            return None
        if p["as_json"] or p["runs"] or p["all_refs"] or p["limit"] is not None:
            return None
        command = ("log", "--oneline")
    else:
        return None
    return ctx.params["repo_dir"], ctx.params["quiet"], command


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=7))
def test_the_fast_path_reads_a_command_line_as_click_does(argv: list[str]) -> None:
    line = parse(argv, {})
    if line is None:
        return  # click reads it: always allowed
    assert click_reads(argv) == (line.repo_dir, line.quiet, line.command), argv


def test_the_environment_is_read_as_click_reads_it(tmp_path: Path) -> None:
    argv = ["cat-file", "-t", "x"]
    assert parse(argv, {"STEVE_DIR": ""}).repo_dir is None  # type: ignore[union-attr]
    assert parse(argv, {"STEVE_DIR": str(tmp_path)}).repo_dir == tmp_path  # type: ignore[union-attr]
    assert parse(["-C", "a", *argv], {"STEVE_DIR": "b"}).repo_dir == Path("a")  # type: ignore[union-attr]
    assert parse(argv, {"STEVE_QUIET": "1"}).quiet  # type: ignore[union-attr]
    assert not parse(argv, {"STEVE_QUIET": "0"}).quiet  # type: ignore[union-attr]
    assert parse(argv, {"STEVE_QUIET": "yes"}) is None  # click's own reading
    assert parse(argv, {"_STEVE_COMPLETE": "bash_complete"}) is None
    (tmp_path / "file").write_text("")
    assert parse(argv, {"STEVE_DIR": str(tmp_path / "file")}) is None  # click's usage error


@pytest.fixture
def cached(repo_path: Path, fast_kdf: KdfParams) -> Iterator[dict[str, str]]:
    """A repository with a blob, a tree and two manifests, its key in the kernel
    keyring; yields the ids by name."""
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        blob = repo.write_blob(b"hello\n")
        tree = repo.write(Tree((TreeEntry("a.txt", Mode.FILE, blob),)))
        first = repo.write(Manifest(ObjectType.DESIGN, 1, (), (), 1_600_000_000, 60, BODY))
        second = repo.write(
            Manifest(ObjectType.DESIGN, 1, (first,), (), 1_600_000_060, 60, {**BODY, "name": "b"})
        )
        repo.update_ref("refs/heads/main", second)
        rid = repo.repository_id
        key = repo.key
    assert key is not None
    try:
        keycache.cache_key(rid, key, 600)
    except Exception as exc:  # no kernel keyring here
        pytest.skip(f"no kernel keyring: {exc}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    # the first command delivers the events the library left in the outbox (full path)
    subprocess.run(
        [sys.executable, "-m", "steve", "-C", str(repo_path), "cat-file", "-e", blob.hex],
        env=env,
        check=True,
    )
    try:
        yield {"blob": blob.hex, "tree": tree.hex, "manifest": second.hex, "prefix": blob.hex[:8]}
    finally:
        keycache.forget_key(rid)


def run_both(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    """argv through ``python -m steve`` (the fast path when it applies) and through
    click alone: the same stdout, stderr and exit code."""
    full = (
        "import sys; from steve.cli.app import cli; sys.argv[0] = 'steve'; "
        "cli.main(prog_name='steve')"
    )
    fast = subprocess.run(
        [sys.executable, "-m", "steve", *argv], env=env, cwd=cwd, capture_output=True, check=False
    )
    slow = subprocess.run(
        [sys.executable, "-c", full, *argv], env=env, cwd=cwd, capture_output=True, check=False
    )
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    ), argv


def test_the_fast_path_answers_as_click_does(
    cached: dict[str, str], repo_path: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env["STEVE_AUTHOR_NAME"] = "Tess Ter"
    revs = [*cached.values(), "HEAD", "main", "HEAD~1", "0" * 64, "deadbeef", "nope", "HEAD^{tree}"]
    for rev in revs:
        for mode in CAT_MODES:
            run_both(["-C", str(repo_path), "cat-file", mode, rev], env, tmp_path)
    run_both(["cat-file", cached["blob"], "-t"], {**env, "STEVE_DIR": str(repo_path)}, tmp_path)
    run_both(["-q", "log", "--oneline"], env, repo_path)
    run_both([f"--repo={repo_path}", "log", "--oneline"], env, tmp_path)
    run_both(["log", "--oneline"], env, tmp_path)  # not a repository
    run_both(["-C", str(tmp_path), "cat-file", "-t", "HEAD"], env, tmp_path)


def test_a_short_command_on_the_fast_path_imports_neither_click_nor_the_commands(
    cached: dict[str, str], repo_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    code = (
        "import sys, json\n"
        "from steve.cli.main import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    for argv in (["cat-file", "-t", cached["blob"]], ["log", "--oneline"]):
        out = subprocess.run(
            [sys.executable, "-c", code, "-C", str(repo_path), *argv],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        loaded = set(__import__("json").loads(out.splitlines()[-1]))
        assert "click" not in loaded, argv
        assert not loaded & {"steve.cli.app", "steve.cli.plumbing", "steve.cli.porcelain"}, argv
        # what start-up no longer pays for (steve.record, steve.config's plain reader)
        assert not loaded & {"dataclasses", "inspect", "tomllib", "platform"}, argv
