"""import-git: a tree made by the real git becomes a STEVE tree and exports back
to the very same git tree id."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steve.errors import GitRevisionNotFound, InvalidInput, NotAGitRepository, NotRepresentable
from steve.gitbridge import export_git, import_git
from steve.objects.model import Mode, ObjectType, Tree
from steve.repo import Repo

from .conftest import Git


@pytest.fixture
def source(tmp_path: Path, git: Git) -> Path:
    """A git repository whose commit holds every mode STEVE knows."""
    work = tmp_path / "src"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("hello\n")
    (work / "empty").write_bytes(b"")
    (work / "run.sh").write_text("#!/bin/sh\necho run\n")
    (work / "run.sh").chmod(0o755)
    os.symlink("README.md", work / "link")
    os.symlink("../nowhere", work / "dangling")
    (work / "a").mkdir()
    (work / "a" / "b").mkdir()
    (work / "a" / "b" / "deep.txt").write_bytes(bytes(range(256)))
    (work / "a.txt").write_text("sorts before a/ in STEVE, after it in git\n")
    (work / "\u00fcber").write_text("unicode name\n")
    big = os.urandom(1 << 16) * 20  # 1.25 MiB: chunked in STEVE
    (work / "big.bin").write_bytes(big)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "source")
    git(work, "tag", "-a", "-m", "annotated", "v1")
    return work


def test_import_round_trips_byte_identically(
    source: Path, steve_repo: Repo, git: Git, tmp_path: Path
) -> None:
    tree_id = git(source, "rev-parse", "HEAD^{tree}").stdout.decode().strip()
    result = import_git(steve_repo, source, "main", ref="src")
    assert result.git_tree == tree_id
    assert result.commit == git(source, "rev-parse", "HEAD").stdout.decode().strip()
    assert result.ref == "refs/imports/src"
    assert steve_repo.rev_parse("refs/imports/src") == result.tree
    listing = {e.path: e for e in steve_repo.ls_tree(result.tree, recursive=True)}
    assert listing["run.sh"].mode is Mode.EXECUTABLE
    assert listing["link"].mode is Mode.SYMLINK
    assert steve_repo.read_blob(listing["link"].oid) == b"README.md"
    assert steve_repo.read_blob(listing["dangling"].oid) == b"../nowhere"
    assert listing["README.md"].mode is Mode.FILE
    assert steve_repo.read_blob(listing["a/b/deep.txt"].oid) == bytes(range(256))
    assert steve_repo.read_blob(listing["big.bin"].oid) == (source / "big.bin").read_bytes()
    assert "\u00fcber" in listing
    top_tree = steve_repo.read_typed(result.tree, ObjectType.TREE)
    assert isinstance(top_tree, Tree)
    top = [e.name for e in top_tree.entries]
    assert top.index("a") < top.index("a.txt")  # STEVE order: by UTF-8 bytes

    # the same tree through a tag and through a tree id, and back into git
    assert import_git(steve_repo, source, "v1").tree == result.tree
    assert import_git(steve_repo, source, tree_id).tree == result.tree
    steve_repo.update_ref("refs/tags/src", result.tree)
    out = tmp_path / "back.git"
    report = export_git(steve_repo, out, ["refs/tags/src"], bare=True)
    assert report.refs[0].new == tree_id
    assert git(out, "fsck", "--strict", "--full").returncode == 0
    # and exported into the source repository itself it is the object already there
    again = export_git(steve_repo, source, ["refs/tags/src"])
    assert (again.refs[0].new, again.objects) == (tree_id, 0)


def test_import_refuses_what_steve_cannot_hold(
    source: Path, steve_repo: Repo, git: Git, tmp_path: Path
) -> None:
    blob = git(source, "rev-parse", "HEAD:README.md").stdout.decode().strip()
    commit = git(source, "rev-parse", "HEAD").stdout.decode().strip()
    # a submodule (gitlink) entry
    git(source, "update-index", "--add", "--cacheinfo", f"160000,{commit},sub")
    sub_tree = git(source, "write-tree").stdout.decode().strip()
    with pytest.raises(NotRepresentable, match="submodule"):
        import_git(steve_repo, source, sub_tree)
    # a .steve entry
    steve_tree = git(
        source, "mktree", input=f"100644 blob {blob}\t.steve\n".encode()
    ).stdout.decode()
    with pytest.raises(NotRepresentable, match=r"\.steve"):
        import_git(steve_repo, source, steve_tree.strip())
    with pytest.raises(NotRepresentable, match="blob"):
        import_git(steve_repo, source, blob)
    with pytest.raises(InvalidInput):
        import_git(steve_repo, source, "main", ref="refs/heads/main")
    with pytest.raises(GitRevisionNotFound):
        import_git(steve_repo, source, "no-such-branch")
    with pytest.raises(NotAGitRepository):
        import_git(steve_repo, tmp_path / "absent", "main")
    assert steve_repo.list_refs("refs/imports/") == []
