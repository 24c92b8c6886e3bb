"""Patches applied to tree objects (steve.porcelain.patch), in a real encrypted store."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steve.errors import PatchConflict, PatchDoesNotApply
from steve.objects.model import Mode
from steve.objects.oid import ObjectId
from steve.objects.patch import FileEntry, format_patch, parse_patch, reverse_patch
from steve.porcelain.patch import apply_to_tree, diff_trees, tree_files, write_index
from steve.repo import Repo


def store(repo: Repo, files: dict[str, FileEntry]) -> ObjectId:
    return write_index(repo, {p: (e.mode, repo.write_blob(e.data)) for p, e in files.items()})


def test_a_patch_turns_a_written_tree_into_the_expected_tree(repo: Repo, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "words.txt").write_bytes(b"hello\nworld\n")
    (src / "lib" / "keep.txt").write_bytes(b"unchanged\n")
    tree = repo.write_tree(src)
    diff = (
        b"--- a/words.txt\n+++ b/words.txt\n@@ -1,2 +1,2 @@\n-hello\n+hell0\n world\n"
        b"diff --git a/lib/new.sh b/lib/new.sh\nnew file mode 100755\n--- /dev/null\n"
        b"+++ b/lib/new.sh\n@@ -0,0 +1 @@\n+echo\n"
    )
    result = apply_to_tree(repo, tree, parse_patch(diff))
    assert result.changed == ["lib/new.sh", "words.txt"]
    (src / "words.txt").write_bytes(b"hell0\nworld\n")
    (src / "lib" / "new.sh").write_bytes(b"echo\n")
    (src / "lib" / "new.sh").chmod(0o755)
    assert result.tree == repo.write_tree(src)  # the same id as the directory it describes
    back = apply_to_tree(repo, result.tree, reverse_patch(parse_patch(diff)))
    assert back.tree == tree


def test_a_failing_patch_changes_nothing_and_names_the_hunk(repo: Repo) -> None:
    tree = store(repo, {"f": FileEntry(Mode.FILE, b"a\nb\n")})
    before = sum(1 for _ in repo.iter_objects())
    diff = b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+A\n@@ -2 +2 @@\n-x\n+X\n"
    with pytest.raises(PatchDoesNotApply) as err:
        apply_to_tree(repo, tree, parse_patch(diff))
    assert (err.value.path, err.value.hunk) == ("f", 2)
    assert sum(1 for _ in repo.iter_objects()) == before


def test_deleting_the_last_file_of_a_directory_drops_the_directory(mem_repo: Repo) -> None:
    tree = store(mem_repo, {"d/x": FileEntry(Mode.FILE, b"x\n"), "y": FileEntry(Mode.FILE, b"")})
    out = apply_to_tree(
        mem_repo, tree, parse_patch(b"--- a/d/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n")
    )
    assert [e.path for e in mem_repo.ls_tree(out.tree, recursive=True)] == ["y"]


def test_a_file_cannot_become_a_directory(mem_repo: Repo) -> None:
    tree = store(mem_repo, {"d": FileEntry(Mode.FILE, b"x\n")})
    with pytest.raises(PatchConflict):
        apply_to_tree(mem_repo, tree, parse_patch(b"--- /dev/null\n+++ b/d/e\n@@ -0,0 +1 @@\n+e\n"))


_files = st.dictionaries(
    st.sampled_from(["a", "b/c", "b/d/e", "f g", "h"]),
    st.builds(
        FileEntry,
        st.sampled_from([Mode.FILE, Mode.EXECUTABLE, Mode.SYMLINK]),
        st.lists(st.sampled_from([b"x\n", b"y\n", b"z", b"\n"]), max_size=6).map(b"".join),
    ),
    max_size=5,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(_files, _files)
def test_tree_diff_then_apply_yields_the_second_tree(
    mem_repo: Repo, old: dict[str, FileEntry], new: dict[str, FileEntry]
) -> None:
    a, b = store(mem_repo, old), store(mem_repo, new)
    patch = diff_trees(mem_repo, a, b)
    if a == b:
        assert patch.files == ()
        return
    parsed = parse_patch(format_patch(patch))
    assert apply_to_tree(mem_repo, a, parsed).tree == b
    assert apply_to_tree(mem_repo, b, reverse_patch(parsed)).tree == a
    assert tree_files(mem_repo, b) == new
