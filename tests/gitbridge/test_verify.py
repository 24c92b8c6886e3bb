"""verify-git: an exported repository checks out; every kind of tampering is caught.

The tampering is done with the real git (hash-object, mktree, commit-tree,
update-ref), the way someone editing a mirror would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from steve.errors import GitRevisionNotFound, NotAGitRepository
from steve.gitbridge import export_git, verify_git
from steve.repo import Repo

from .conftest import Git
from .helpers import build_receipt, make_history

SHAPE = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]}


@pytest.fixture
def exported(steve_repo: Repo, tmp_path: Path, git: Git) -> Path:
    ids = make_history(steve_repo, SHAPE, tz=120)
    receipt = build_receipt(steve_repo, ids["e"], time=1_800_000_000)
    steve_repo.update_ref("refs/heads/main", receipt)
    steve_repo.create_tag("v1", ids["d"], message="one", now=1_750_000_000, tz=0)
    out = tmp_path / "out.git"
    export_git(steve_repo, out, ["main", "v1"], bare=True)
    return out


def tampered(exported: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "tampered.git"
    shutil.copytree(exported, copy)
    return copy


def commit_env(git: Git, where: Path, rev: str) -> dict[str, str]:
    """GIT_* variables reproducing ``rev``'s author and committer lines."""
    fmt = "%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd"
    an, ae, ad, cn, ce, cd = (
        git(where, "log", "-1", f"--format={fmt}", "--date=raw", rev).stdout.decode().split("\0")
    )
    return {
        "GIT_AUTHOR_NAME": an,
        "GIT_AUTHOR_EMAIL": ae,
        "GIT_AUTHOR_DATE": ad,
        "GIT_COMMITTER_NAME": cn,
        "GIT_COMMITTER_EMAIL": ce,
        "GIT_COMMITTER_DATE": cd.strip(),
    }


def recommit(
    git_env: dict[str, str],
    where: Path,
    git: Git,
    rev: str,
    *,
    tree: str | None = None,
    parents: list[str] | None = None,
) -> str:
    """A copy of commit ``rev`` (same identity, dates, message) with another tree or
    parents, made by git commit-tree; the branch is moved to it if ``rev`` is its tip."""
    message = git(where, "log", "-1", "--format=%B", rev).stdout
    # %B adds a newline after the message; the original ends with exactly one
    message = message[:-1] if message.endswith(b"\n\n") else message
    tree = tree or git(where, "rev-parse", f"{rev}^{{tree}}").stdout.decode().strip()
    if parents is None:
        parents = git(where, "log", "-1", "--format=%P", rev).stdout.decode().split()
    env = {**git_env, **commit_env(git, where, rev)}
    args = ["git", "-C", str(where), "commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    proc = subprocess.run(args, env=env, input=message, capture_output=True, check=True)
    return proc.stdout.decode().strip()


def replace_file(git: Git, where: Path, rev: str, name: str, data: bytes) -> str:
    """The id of ``rev``'s tree with top-level file ``name`` replaced by ``data``."""
    blob = git(where, "hash-object", "-w", "--stdin", input=data).stdout.decode().strip()
    listing = git(where, "ls-tree", f"{rev}^{{tree}}").stdout.decode().splitlines()
    lines = []
    for line in listing:
        meta, path = line.split("\t", 1)
        mode, kind, oid = meta.split()
        if path == name:
            mode, kind, oid = "100644", "blob", blob
        lines.append(f"{mode} {kind} {oid}\t{path}")
    if name not in {line.split("\t", 1)[1] for line in listing}:
        lines.append(f"100644 blob {blob}\t{name}")
    return git(where, "mktree", input=("\n".join(lines) + "\n").encode()).stdout.decode().strip()


def problems(path: Path) -> list[str]:
    return [p.what for p in verify_git(path).problems]


def test_an_export_verifies(exported: Path, git: Git) -> None:
    report = verify_git(exported)
    assert report.ok, report.problems
    assert (report.commits, report.tags) == (6, 1)
    assert verify_git(exported, "main~2").commits == 4
    assert verify_git(exported, "v1").tags == 1


def test_a_faithful_rebuild_by_git_itself_still_verifies(
    exported: Path, tmp_path: Path, git: Git, git_env: dict[str, str]
) -> None:
    copy = tampered(exported, tmp_path)
    same = recommit(git_env, copy, git, "main")
    assert same == git(copy, "rev-parse", "main").stdout.decode().strip()


def test_edited_manifest_json_is_caught(
    exported: Path, tmp_path: Path, git: Git, git_env: dict[str, str]
) -> None:
    copy = tampered(exported, tmp_path)
    text = git(copy, "cat-file", "blob", "main~1:manifest.json").stdout
    tree = replace_file(
        git, copy, "main~1", "manifest.json", text.replace(b'"tz": 120', b'"tz": 60')
    )
    new = recommit(git_env, copy, git, "main~1", tree=tree)
    tip = recommit(git_env, copy, git, "main", parents=[new])
    git(copy, "update-ref", "refs/heads/main", tip)
    found = problems(copy)
    assert found == ["manifest.json differs from what manifest.cbor shows"]


def test_edited_manifest_cbor_is_caught(
    exported: Path, tmp_path: Path, git: Git, git_env: dict[str, str]
) -> None:
    copy = tampered(exported, tmp_path)
    data = bytearray(git(copy, "cat-file", "blob", "main:manifest.cbor").stdout)
    data[-3] ^= 0x01
    tree = replace_file(git, copy, "main", "manifest.cbor", bytes(data))
    git(copy, "update-ref", "refs/heads/main", recommit(git_env, copy, git, "main", tree=tree))
    assert problems(copy) == ["manifest.cbor does not hash (BLAKE3) to the Steve-Object id"]


def test_rewritten_parent_is_caught(
    exported: Path, tmp_path: Path, git: Git, git_env: dict[str, str]
) -> None:
    copy = tampered(exported, tmp_path)
    # main~2 is the merge d (parents b, c): drop its second parent
    first = git(copy, "rev-parse", "main~2^1").stdout.decode().strip()
    merge = recommit(git_env, copy, git, "main~2", parents=[first])
    e = recommit(git_env, copy, git, "main~1", parents=[merge])
    tip = recommit(git_env, copy, git, "main", parents=[e])
    git(copy, "update-ref", "refs/heads/main", tip)
    git(copy, "update-ref", "-d", "refs/tags/v1")
    assert problems(copy) == ["the git parents are not the manifest's parents"]


def test_extra_files_attachments_and_headers_are_caught(
    exported: Path, tmp_path: Path, git: Git, git_env: dict[str, str]
) -> None:
    copy = tampered(exported, tmp_path)
    tree = replace_file(git, copy, "main", "extra.txt", b"smuggled\n")
    git(copy, "update-ref", "refs/heads/main", recommit(git_env, copy, git, "main", tree=tree))
    assert problems(copy) == ["the tree holds entries the manifest does not explain"]

    copy2 = tmp_path / "t2.git"
    shutil.copytree(exported, copy2)
    tree = replace_file(git, copy2, "main", "logs", b"x")  # a blob where a tree was
    git(copy2, "update-ref", "refs/heads/main", recommit(git_env, copy2, git, "main", tree=tree))
    assert problems(copy2) == ["attachment logs/0 is missing"]

    copy3 = tmp_path / "t3.git"
    shutil.copytree(exported, copy3)
    env = {**git_env, "GIT_AUTHOR_NAME": "Mallory"}
    message = git(copy3, "log", "-1", "--format=%B", "main").stdout[:-1]
    tree = git(copy3, "rev-parse", "main^{tree}").stdout.decode().strip()
    parent = git(copy3, "rev-parse", "main^").stdout.decode().strip()
    forged = (
        subprocess.run(
            ["git", "-C", str(copy3), "commit-tree", tree, "-p", parent],
            env={
                **env,
                **{k: v for k, v in commit_env(git, copy3, "main").items() if "NAME" not in k},
            },
            input=message,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    git(copy3, "update-ref", "refs/heads/main", forged)
    assert problems(copy3) == ["the commit differs from what the export writes"]


def test_a_commit_without_trailers_and_a_retargeted_tag_are_caught(
    exported: Path, tmp_path: Path, git: Git
) -> None:
    copy = tampered(exported, tmp_path)
    tree = git(copy, "rev-parse", "main^{tree}").stdout.decode().strip()
    extra = git(copy, "commit-tree", tree, "-p", "main", "-m", "by hand").stdout.decode().strip()
    git(copy, "update-ref", "refs/heads/main", extra)
    tag = git(copy, "cat-file", "tag", "v1").stdout
    moved = tag.replace(
        git(copy, "rev-parse", "v1^{}").stdout.strip(),
        git(copy, "rev-parse", "main~1").stdout.strip(),
    )
    new_tag = git(copy, "hash-object", "-t", "tag", "-w", "--stdin", input=moved).stdout
    git(copy, "update-ref", "refs/tags/v1", new_tag.decode().strip())
    found = sorted(problems(copy))
    assert len(found) == 2
    assert found[0] == "no Steve-Object/Steve-Kind trailers: not a STEVE export"
    assert found[1].startswith("the tag's fields hash to ")
    assert found[1].endswith(", not its trailer id")


def test_verify_errors(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(GitRevisionNotFound):
        verify_git(exported, "nope")
    with pytest.raises(NotAGitRepository):
        verify_git(tmp_path / "missing")
    empty = tmp_path / "empty"
    os.mkdir(empty)
    with pytest.raises(NotAGitRepository):
        verify_git(empty)
