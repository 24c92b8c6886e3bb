"""The git bridge commands through the installed `steve` entry point: two repositories
built independently from the same drafts export to the same git ids; errors exit
with their codes and no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from steve.repo import Repo
from steve.store.kdf import KdfParams

from .conftest import PASSPHRASE, Git

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SDE = "1700000000"


def steve_exe() -> str:
    exe = shutil.which("steve")
    if exe is None:
        pytest.fail("the `steve` console script is not installed")
    return exe


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [steve_exe(), *args], env=env, capture_output=True, check=False, timeout=120
    )


def ok(env: dict[str, str], *args: str) -> str:
    proc = run(env, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def build(root: Path, kdf: KdfParams, seed: str) -> dict[str, str]:
    """A repository with design -> research -> plan on main, made through the CLI."""
    Repo.init(root, passphrase=PASSPHRASE, kdf=kdf).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env.update(
        STEVE_DIR=str(root),
        STEVE_PASSPHRASE=PASSPHRASE,
        SOURCE_DATE_EPOCH=SDE,
        STEVE_AUTHOR_NAME="Tess",
        STEVE_AUTHOR_EMAIL="tess@example.org",
        PYTHONHASHSEED=seed,  # dict and set order must not matter
        LC_ALL="C",
    )
    source = b"Content-addressed storage: objects are named by the hash of their bytes.\n"
    proc = subprocess.run(
        [steve_exe(), "hash-object", "-w", "--stdin"], env=env, input=source, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr.decode()
    design = ok(env, "freeze", "design", str(EXAMPLES / "design.yaml")).strip()
    research = ok(
        env, "freeze", "research", str(EXAMPLES / "research.yaml"), "--parent", design
    ).strip()
    ok(
        env,
        "freeze",
        "plan",
        str(EXAMPLES / "plan.yaml"),
        "--parent",
        research,
        "--ref",
        "refs/heads/main",
    )
    # `steve tag` stamps the wall clock; an annotated tag at a fixed time through the library
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        repo.create_tag("v1", repo.rev_parse("main"), message="first plan", now=1_700_000_100, tz=0)
    return env


def show_ref(git: Git, where: Path) -> str:
    return git(where, "show-ref", "--head", "--dereference").stdout.decode()


def test_two_independent_repositories_export_to_the_same_ids(
    tmp_path: Path, fast_kdf: KdfParams, git: Git
) -> None:
    other_kdf = KdfParams(salt=os.urandom(16), memory_kib=512, iterations=2, parallelism=1)
    env_a = build(tmp_path / "a", fast_kdf, "1")
    env_b = build(tmp_path / "b", other_kdf, "2")
    out_a = ok(env_a, "export-git", str(tmp_path / "a.git"), "--all", "--bare")
    out_b = ok(env_b, "export-git", str(tmp_path / "b-work"), "main", "v1")
    assert out_a == out_b
    lines = [line.split() for line in out_a.splitlines()]
    assert [(ref, status) for _, ref, status in lines] == [
        ("refs/heads/main", "created"),
        ("refs/tags/v1", "created"),
    ]
    assert show_ref(git, tmp_path / "a.git") == show_ref(git, tmp_path / "b-work")
    log = git(tmp_path / "b-work", "log", "--format=%H%x09%s").stdout.decode().splitlines()
    summaries = ok(env_a, "log", "--format=%s", "main").splitlines()
    assert [line.split("\t", 1)[1] for line in log] == summaries
    assert ok(env_a, "verify-git", str(tmp_path / "b-work")) == ""
    # nothing new: nothing written, the same lines with status unchanged
    again = ok(env_a, "export-git", str(tmp_path / "a.git"), "--all")
    assert [line.split()[2] for line in again.splitlines()] == ["unchanged", "unchanged"]


def error_of(proc: subprocess.CompletedProcess[bytes]) -> tuple[int, str]:
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert any(line.startswith("steve: error: ") for line in err.splitlines())
    return proc.returncode, err.splitlines()[-1].strip()


def test_cli_errors_and_import(tmp_path: Path, fast_kdf: KdfParams, git: Git) -> None:
    env = build(tmp_path / "s", fast_kdf, "0")
    not_git = tmp_path / "not-git"
    not_git.mkdir()
    (not_git / "f").write_text("x")
    assert error_of(run(env, "export-git", str(not_git))) == (3, "[STEVE-GIT-001]")
    assert error_of(run(env, "verify-git", str(not_git))) == (3, "[STEVE-GIT-001]")
    out = tmp_path / "out.git"
    ok(env, "export-git", str(out), "--bare")
    assert error_of(run(env, "verify-git", str(out), "nope")) == (5, "[STEVE-GIT-006]")
    # the target moves on by hand: a plain export is refused, --force says what it replaced
    tree = git(out, "rev-parse", "main^{tree}").stdout.decode().strip()
    extra = git(out, "commit-tree", tree, "-p", "main", "-m", "by hand").stdout.decode().strip()
    git(out, "update-ref", "refs/heads/main", extra)
    assert error_of(run(env, "export-git", str(out))) == (7, "[STEVE-GIT-002]")
    assert git(out, "rev-parse", "main").stdout.decode().strip() == extra
    proc = run(env, "verify-git", str(out))
    assert error_of(proc) == (9, "[STEVE-GIT-004]")
    assert proc.stdout.decode().split(" ", 2)[0] == extra
    forced = run(env, "export-git", str(out), "--force")
    assert forced.returncode == 0
    assert f"forced refs/heads/main: was {extra}" in forced.stderr.decode().splitlines()
    assert ok(env, "verify-git", str(out)) == ""
    # import-git prints the tree id and moves refs/imports/NAME
    tree_id = ok(env, "import-git", str(out), "main", "--ref", "exported").strip()
    assert ok(env, "rev-parse", "refs/imports/exported").strip() == tree_id
    assert "manifest.cbor" in ok(env, "ls-tree", "--name-only", tree_id).split()
    assert error_of(run(env, "import-git", str(out), "main", "--ref", "refs/heads/x")) == (
        6,
        "[STEVE-INPUT-001]",
    )


def test_many_skipped_refs_of_one_namespace_are_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from steve.cli.git import _note_skipped
    from steve.gitbridge.export import SkippedRef

    why = "points at a tree; git branches hold commits"
    many = [SkippedRef(f"refs/llm/{i:064x}", why) for i in range(7)]
    few = [SkippedRef("refs/approvals/a/request", "points at a blob")]
    _note_skipped([*many, *few])
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"skipped 7 refs under refs/llm/ (the first: refs/llm/{0:064x}: {why})",
        "skipped refs/approvals/a/request: points at a blob",
    ]
