"""``import_git``: a git tree (a commit's tree) becomes a STEVE tree object.

    >>> result = import_git(repo, Path("project"), "main", ref="project")

Names, modes (100644, 100755, 120000, 040000) and bytes are kept, so
exporting the STEVE tree again gives the same git tree id.  Git entries
STEVE cannot hold are refused (:class:`~steve.errors.NotRepresentable`):
submodules (160000), other modes, names that are not UTF-8 or are
``.steve``.  History is not imported: a tree is the input of a build, not a
manifest.

A ref to the tree: refs in STEVE may name any object, but branches
(``refs/heads/*``) hold manifest history (``steve log``, ``export-git``
walk them), so an import ref lives under ``refs/imports/`` (a bare NAME
means ``refs/imports/NAME``) or ``refs/tags/``; a branch is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from steve.errors import InvalidInput, NotRepresentable
from steve.gitbridge.convert import Sink, ToSteve
from steve.gitbridge.pack import BLOB, COMMIT, TAG, TREE
from steve.gitbridge.target import object_info, open_git, open_object, read_raw, resolve_rev
from steve.objects.model import StoredObject
from steve.objects.oid import ObjectId
from steve.progress import Progress
from steve.refs.names import check_ref_name
from steve.repo import Repo

__all__ = ["IMPORT_NAMESPACE", "ImportResult", "import_git", "import_ref_name"]

IMPORT_NAMESPACE = "refs/imports/"
_TYPE_NAMES = {COMMIT: "commit", TREE: "tree", BLOB: "blob", TAG: "tag"}


@dataclass(frozen=True, slots=True)
class ImportResult:
    tree: ObjectId  # the STEVE tree
    git_tree: str  # the git tree it came from, hex
    commit: str | None  # the git commit REV named (None: REV named a tree)
    written: int  # objects written (new or not)
    ref: str | None  # the STEVE ref moved to the tree


def import_ref_name(ref: str) -> str:
    """The full STEVE ref an import ``--ref`` names (refuses branches)."""
    name = check_ref_name(ref if ref.startswith("refs/") else IMPORT_NAMESPACE + ref)
    if name.startswith("refs/heads/"):
        raise InvalidInput(
            "an imported tree cannot go on a branch",
            f"{name}: branches hold manifest history; use refs/imports/NAME or refs/tags/NAME",
        )
    return name


def import_git(
    repo: Repo,
    path: Path,
    rev: str,
    *,
    ref: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Store the tree of git revision ``rev`` (a commit, a tag of one, or a tree) of the
    repository at ``path`` as STEVE objects; optionally move ``ref`` to it.
    ``progress`` hears one phase "import-git" counting the objects converted (blobs,
    their chunks and trees; not known in advance)."""
    refname = import_ref_name(ref) if ref is not None else None
    git = open_git(path)
    try:
        sha = bytes.fromhex(resolve_rev(git, path, rev).decode())
        commit: str | None = None
        for _ in range(64):
            type_num, _ = object_info(git, sha)
            if type_num not in (TAG, COMMIT):
                break
            data = read_raw(git, sha)[1]
            if type_num == COMMIT:
                commit = sha.hex()
                sha = bytes.fromhex(data.split(b"\n", 1)[0].removeprefix(b"tree ").decode())
                type_num = TREE
                break
            sha = bytes.fromhex(data.split(b"\n", 1)[0].removeprefix(b"object ").decode())
        if type_num != TREE:
            raise NotRepresentable(rev, f"names a {_TYPE_NAMES.get(type_num, '?')}, not a tree")
        with repo.writer() as writer:
            sink: Sink = writer.add
            if progress is not None:
                progress.start("import-git", None, unit="objects")
                sink = _counted(writer.add, progress)
            reader = ToSteve(lambda s: read_raw(git, s), sink, lambda s: open_object(git, s))
            tree = reader.tree(sha)
        written = writer.written
        if progress is not None:
            progress.finish()
    finally:
        git.close()
    if refname is not None:
        repo.update_ref(refname, tree, message=f"import-git {rev}")
    return ImportResult(tree, sha.hex(), commit, written, refname)


def _counted(add: Sink, progress: Progress) -> Sink:
    """``add``, reporting one unit to ``progress`` per call."""

    def counted(obj: StoredObject) -> ObjectId:
        oid = add(obj)
        progress.advance(1)
        return oid

    return counted
