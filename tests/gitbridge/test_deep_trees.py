"""Trees nested deeper than STEVE's limit (``MAX_TREE_DEPTH``, as for write-tree)
are refused with a typed error across the bridge, never a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest

from steve.errors import NotRepresentable
from steve.gitbridge import export_git, import_git
from steve.gitbridge.convert import build_tree
from steve.objects.model import Blob, Mode, Tree, TreeEntry
from steve.repo import MAX_TREE_DEPTH, Repo

from .conftest import Git
from .helpers import make_history
from .hostile import write_loose


def test_import_of_a_1100_deep_git_tree_is_refused(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    where = tmp_path / "deep.git"
    git(tmp_path, "init", "-q", "--bare", str(where))
    objects = where / "objects"
    leaf = write_loose(objects, b"blob", iter([b"x"]), 1)
    raw = build_tree([(b"f", 0o100644, leaf)])
    sha = write_loose(objects, b"tree", iter([raw]), len(raw))
    shallow = sha
    for i in range(1100):
        raw = build_tree([(b"d", 0o040000, sha)])
        sha = write_loose(objects, b"tree", iter([raw]), len(raw))
        if i == MAX_TREE_DEPTH - 1:
            shallow = sha  # exactly at the limit
    with pytest.raises(NotRepresentable, match="nested deeper"):
        import_git(steve_repo, where, sha.hex())
    imported = import_git(steve_repo, where, shallow.hex())
    paths = [e.path for e in steve_repo.ls_tree(imported.tree, recursive=True)]
    assert paths == ["/".join(["d"] * MAX_TREE_DEPTH + ["f"])]


def test_export_of_a_too_deep_steve_tree_is_refused(steve_repo: Repo, tmp_path: Path) -> None:
    oid = steve_repo.write(Blob(b"x"))
    tree = steve_repo.write(Tree.from_entries([TreeEntry("f", Mode.FILE, oid)]))
    for _ in range(1100):
        tree = steve_repo.write(Tree.from_entries([TreeEntry("d", Mode.TREE, tree)]))
    steve_repo.update_ref("refs/tags/deep", tree)
    with pytest.raises(NotRepresentable, match="nested deeper"):
        export_git(steve_repo, tmp_path / "out", ["refs/tags/deep"])


def test_export_all_skips_a_ref_whose_tree_is_too_deep_and_writes_the_rest(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    """A build output may nest 2,048 levels (exec's limit), git's side 256: one such
    ref made every `export-git --all` (and the default export) fail as a whole."""
    ids = make_history(steve_repo, {"a": [], "b": ["a"]})
    steve_repo.update_ref("refs/heads/main", ids["b"])
    oid = steve_repo.write(Blob(b"x"))
    tree = steve_repo.write(Tree.from_entries([TreeEntry("f", Mode.FILE, oid)]))
    for _ in range(1200):
        tree = steve_repo.write(Tree.from_entries([TreeEntry("d", Mode.TREE, tree)]))
    steve_repo.update_ref("refs/tags/deep", tree)
    out = tmp_path / "all"
    report = export_git(steve_repo, out, all_refs=True)
    assert [(s.steve_ref, "nested deeper" in s.reason) for s in report.skipped] == [
        ("refs/tags/deep", True)
    ]
    listed = git(out, "for-each-ref", "--format=%(refname)").stdout.decode().split()
    assert listed == ["refs/heads/main"]
    assert git(out, "fsck", "--strict").returncode == 0
    with pytest.raises(NotRepresentable, match="nested deeper"):  # named: refused
        export_git(steve_repo, tmp_path / "named", ["main", "refs/tags/deep"])
