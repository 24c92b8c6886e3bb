"""``write-tree``: .git and .steve skipped, .steveignore (gitignore semantics,
nested files), non-UTF-8 names and very deep directories as typed errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steve.errors import FileNameNotUtf8, TreeTooDeep
from steve.objects.oid import ObjectId
from steve.repo import MAX_TREE_DEPTH, Repo
from tests.cli.conftest import Invoke


def _paths(repo: Repo, tree: ObjectId) -> set[str]:
    return {e.path for e in repo.ls_tree(tree, recursive=True)}


def test_git_and_steve_directories_are_always_skipped(tmp_path: Path, mem_repo: Repo) -> None:
    src = tmp_path / "src"
    (src / ".git" / "objects").mkdir(parents=True)
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (src / ".steve").mkdir()
    (src / "sub").mkdir()
    (src / "sub" / ".git").write_text("gitdir: ../elsewhere\n")  # a worktree's .git file
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    assert _paths(mem_repo, mem_repo.write_tree(src)) == {"a.txt", "sub/b.txt"}


def test_steveignore_has_gitignore_semantics(tmp_path: Path, mem_repo: Repo) -> None:
    src = tmp_path / "src"
    for rel in [
        "keep.py",
        "debug.log",
        "important.log",
        "build/out.o",
        "src/build/x.o",
        "src/main.py",
        "top.tmp",
        "src/top.tmp",
        "docs/a/b/gen.html",
        "docs/a/b/index.md",
    ]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    (src / ".steveignore").write_text(
        "# comment\n*.log\n!important.log\nbuild/\n/top.tmp\ndocs/**/*.html\n"
    )
    got = _paths(mem_repo, mem_repo.write_tree(src))
    assert got == {
        ".steveignore",
        "keep.py",
        "important.log",
        "src/main.py",
        "src/top.tmp",  # /top.tmp is anchored at the ignore file's directory
        "docs/a/b/index.md",
    }


def test_nested_steveignore_files_apply_below_their_directory(
    tmp_path: Path, mem_repo: Repo
) -> None:
    src = tmp_path / "src"
    for rel in ["a.dat", "pkg/a.dat", "pkg/b.dat", "pkg/sub/c.dat", "other/b.dat"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    (src / ".steveignore").write_text("*.dat\n")
    # a deeper file re-includes what the outer one excluded, for its directory only
    (src / "pkg" / ".steveignore").write_text("!b.dat\n/sub/\n")
    got = _paths(mem_repo, mem_repo.write_tree(src))
    assert got == {".steveignore", "pkg/.steveignore", "pkg/b.dat"}


def test_non_utf8_file_name_is_a_typed_error(
    tmp_path: Path, mem_repo: Repo, invoke: Invoke
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    try:
        with open(os.path.join(os.fsencode(src), b"caf\xe9.txt"), "wb") as fh:
            fh.write(b"x")
    except (OSError, UnicodeError):
        pytest.fail("the file system must allow a non-UTF-8 name for this test")
    with pytest.raises(FileNameNotUtf8):
        mem_repo.write_tree(src)
    invoke("write-tree", str(src)).assert_error(6, "STEVE-TREE-001")
    # excluded by a pattern, it is no problem
    (src / ".steveignore").write_text("caf*\n")
    assert _paths(mem_repo, mem_repo.write_tree(src)) == {".steveignore"}


def _deep(root: Path, depth: int) -> Path:
    """``root/d/d/.../d`` with ``depth`` directories below root (built with chdir:
    the full path is longer than PATH_MAX)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"deep")
        os.close(leaf)
    finally:
        os.close(fd)
    return root


def _remove_deep(root: Path) -> None:
    """Remove what :func:`_deep` made, bottom up through directory fds (pytest's own
    clean-up, shutil.rmtree, recurses and would hit Python's recursion limit)."""
    fds = [os.open(root, os.O_RDONLY)]
    try:
        while True:
            try:
                fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
            except FileNotFoundError:
                break
        while fds:
            fd = fds.pop()
            for name in os.listdir(fd):
                if name != "d":
                    os.unlink(name, dir_fd=fd)
            os.close(fd)
            if fds:
                os.rmdir("d", dir_fd=fds[-1])
    finally:
        for fd in fds:
            os.close(fd)
    root.rmdir()


def test_a_1500_deep_directory_is_a_typed_error(
    tmp_path: Path, mem_repo: Repo, invoke: Invoke
) -> None:
    src = _deep(tmp_path / "deep", 1500)
    try:
        with pytest.raises(TreeTooDeep):
            mem_repo.write_tree(src)
        invoke("write-tree", str(src)).assert_error(6, "STEVE-TREE-002")
    finally:
        _remove_deep(src)


def test_a_directory_at_the_depth_limit_is_written(tmp_path: Path, mem_repo: Repo) -> None:
    src = _deep(tmp_path / "deep", MAX_TREE_DEPTH)
    tree = mem_repo.write_tree(src)
    (path,) = _paths(mem_repo, tree)
    assert path == "/".join(["d"] * MAX_TREE_DEPTH + ["f"])
