"""Patches applied to tree objects: a unified diff turns an input tree into a new tree.

    >>> result = apply_to_tree(repo, tree, parse_patch(diff))
    >>> result.tree, result.changed
    (ObjectId(...), ['src/words.txt'])

The diff is parsed and applied in Python (:mod:`steve.objects.patch`):
nothing in it is ever executed.  Only the blobs of the files a patch touches
are read; the new tree reuses every other blob by id, so applying a patch to
a large tree reads little.  :func:`diff_trees` gives the patch between two
trees (the inverse operation, used to show a change and in the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from steve.objects.model import Mode, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.objects.patch import FileEntry, Patch, apply_changes, check_layout, diff_files
from steve.repo import Repo

__all__ = ["PatchedTree", "apply_to_tree", "diff_trees", "tree_files", "tree_index", "write_index"]

Index = dict[str, tuple[Mode, ObjectId]]


@dataclass(frozen=True, slots=True)
class PatchedTree:
    """The tree a patch produced, the paths it changed (sorted) and the hunks that
    matched away from their stated line: (path, hunk number, offset in lines)."""

    tree: ObjectId
    changed: list[str]
    offsets: list[tuple[str, int, int]] = field(default_factory=list)


def tree_index(repo: Repo, tree: ObjectId) -> Index:
    """Every file of ``tree`` (recursively): path -> (mode, blob id)."""
    return {e.path: (e.mode, e.oid) for e in repo.ls_tree(tree, recursive=True)}


def tree_files(repo: Repo, tree: ObjectId) -> dict[str, FileEntry]:
    """Every file of ``tree`` with its bytes (for small trees: it reads them all)."""
    return {p: FileEntry(m, repo.read_blob(o)) for p, (m, o) in tree_index(repo, tree).items()}


def write_index(repo: Repo, index: Mapping[str, tuple[Mode, ObjectId]]) -> ObjectId:
    """Store the trees that hold ``index``'s files; the root tree's id."""
    check_layout(list(index))
    dirs: dict[str, list[TreeEntry]] = {"": []}
    for path in index:
        parts = path.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]), [])
    for path, (mode, oid) in index.items():
        parent, _, name = path.rpartition("/")
        dirs[parent].append(TreeEntry(name, mode, oid))
    ids: dict[str, ObjectId] = {}
    with repo.writer() as w:
        for d in sorted(dirs, key=lambda p: (-p.count("/"), p)):  # deepest first
            if d:
                parent, _, name = d.rpartition("/")
                ids[d] = w.add(Tree.from_entries(dirs[d]))
                dirs[parent].append(TreeEntry(name, Mode.TREE, ids[d]))
        return w.add(Tree.from_entries(dirs[""]))


def apply_to_tree(repo: Repo, tree: ObjectId, patch: Patch) -> PatchedTree:
    """Apply ``patch`` to ``tree`` (strictly, see :mod:`steve.objects.patch`) and store
    the result: new blobs and trees.  Raises a ``STEVE-PATCH-*`` error, storing
    nothing, when the patch does not apply."""
    index = tree_index(repo, tree)

    def lookup(path: str) -> FileEntry | None:
        found = index.get(path)
        return None if found is None else FileEntry(found[0], repo.read_blob(found[1]))

    applied = apply_changes(patch, lookup)
    out: Index = dict(index)
    for path, entry in applied.changes.items():
        if entry is None:
            out.pop(path, None)
    check_layout([*out, *(p for p, e in applied.changes.items() if e is not None)])
    for path, entry in applied.changes.items():
        if entry is not None:
            out[path] = (entry.mode, repo.write_blob(entry.data))
    new_tree = write_index(repo, out)
    changed = sorted(p for p in applied.changes if index.get(p) != out.get(p))
    return PatchedTree(new_tree, changed, applied.offsets)


def diff_trees(repo: Repo, old: ObjectId, new: ObjectId, *, context: int = 3) -> Patch:
    """The patch that turns tree ``old`` into tree ``new``."""
    return diff_files(tree_files(repo, old), tree_files(repo, new), context=context)
