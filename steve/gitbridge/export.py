"""``export_git``: STEVE history into a git repository, deterministically and incrementally.

    >>> report = export_git(repo, Path("mirror"), ["main"])

What maps to what is in :mod:`steve.gitbridge.layout` and docs/git-compat.md.
The steps:

1. Choose refs: the names given, every ref (``all_refs``), or HEAD's branch.
2. Walk each ref's history parents first, stopping at manifests the target
   already has: the ``git-map`` (STEVE id -> git commit id, kept in the
   encrypted database) names the commit, and the target must contain it
   (the target may be another repository than last time).  Everything
   new goes into one pack (:class:`~steve.gitbridge.pack.PackWriter`).
3. Check every ref update before changing any: a ref may be created,
   left alone, or fast-forwarded; anything else (a branch whose commits the
   export does not contain, a moved tag) is refused with
   :class:`~steve.errors.NonFastForward` unless ``force``, and then
   nothing at all is written.  Forced updates are reported with the old id.
4. Move the pack into place, record the new ids in the ``git-map``, update
   the refs (compare-and-swap against the values read in step 3).

Commit ids depend only on STEVE content, so the same history gives the same
ids on every machine and in every export; with nothing new, nothing is
written (no pack, no ref change, no map change).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import ObjectID
from dulwich.refs import Ref as GitRefName

from steve.errors import (
    CorruptObject,
    GitFailure,
    NonFastForward,
    NotRepresentable,
    RefNotFound,
)
from steve.gitbridge.convert import ToGit, hexsha
from steve.gitbridge.layout import GIT_MAP, git_ref_name
from steve.gitbridge.pack import BLOB, COMMIT, TAG, TREE, PackWriter
from steve.gitbridge.target import (
    GIT_READ_ERRORS,
    GitRepo,
    TargetObjects,
    open_or_create,
    read_raw,
)
from steve.objects.model import Manifest, ObjectType, Tag
from steve.objects.oid import ObjectId
from steve.refs.names import HEAD
from steve.repo import DEFAULT_BRANCH, Repo

__all__ = ["ExportReport", "RefResult", "RefStatus", "SkippedRef", "export_git"]

REFLOG_MESSAGE = b"steve export-git"
CHAIN_PREFETCH = 256  # manifest index rows read per query while walking


class RefStatus(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # fast-forward
    FORCED = "forced"  # non-fast-forward, with force
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class RefResult:
    steve_ref: str
    git_ref: str
    new: str  # git id, hex
    old: str | None  # the target's value before the export
    status: RefStatus


@dataclass(frozen=True, slots=True)
class SkippedRef:
    steve_ref: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExportReport:
    path: Path
    created: bool  # the git repository was created by this export
    commits: int  # commits written
    tags: int  # annotated tags written
    objects: int  # objects in the new pack (0: no pack)
    pack: str | None  # the new pack's name
    refs: tuple[RefResult, ...]
    skipped: tuple[SkippedRef, ...]  # refs --all met that git cannot hold


def _select(repo: Repo, names: Sequence[str], all_refs: bool) -> list[tuple[str, ObjectId]]:
    chosen: dict[str, ObjectId] = {}
    if all_refs:
        for listed in repo.list_refs("refs/"):
            if listed.symbolic is None and listed.target is not None:
                chosen[listed.name] = listed.target
    wanted = list(names) if (names or all_refs) else [HEAD]
    for name in wanted:
        ref = repo.refs.resolve(name) if name.startswith("refs/") else repo.refs.dwim(name)
        if ref is None and name == HEAD:
            ref = repo.refs.resolve(HEAD)
        if ref is None or ref.target is None:
            raise RefNotFound(name)
        full = ref.symbolic or ref.name
        if full == HEAD:
            raise NotRepresentable(HEAD, "HEAD is detached; name the refs to export")
        chosen[full] = ref.target
    return list(chosen.items())


def _commit_parents(raw: bytes) -> list[bytes]:
    out = []
    for line in raw.split(b"\n"):
        if not line:
            break
        if line.startswith(b"parent "):
            out.append(bytes.fromhex(line[7:].decode()))
    return out


class _Export:
    def __init__(self, repo: Repo, target: GitRepo, pack: PackWriter, *, empty: bool) -> None:
        self.repo = repo
        self.target = target
        self.pack = pack
        # an empty target holds no mapped commit: the map need not be read
        self.use_map = not empty
        self.to_git = ToGit(repo, pack)
        self.done: dict[bytes, bytes] = {}  # STEVE manifest/tag id -> git id (this export)
        self.mapped: dict[bytes, bytes | None] = {}  # git-map lookups made
        self.heads: dict[bytes, tuple[ObjectId, ...]] = {}  # prefetched parents
        self.new_map: list[tuple[bytes, bytes]] = []

    # --- history ---------------------------------------------------------------------

    def _known(self, oid: ObjectId) -> bytes | None:
        sha = self.done.get(oid.raw)
        if sha is not None:
            return sha
        if not self.use_map:
            return None
        mapped = self.repo.get_derived(GIT_MAP, oid.raw)
        self.mapped[oid.raw] = mapped
        if mapped is not None and len(mapped) == 20 and self.pack.has(mapped):
            self.done[oid.raw] = mapped
            return mapped
        return None

    def _parents(self, oid: ObjectId) -> tuple[ObjectId, ...]:
        """Parents from the manifest index, a run of first-parent history per query."""
        cached = self.heads.pop(oid.raw, None)
        if cached is not None:
            return cached
        chain = self.repo.manifest_chain(oid, CHAIN_PREFETCH)
        if chain:
            if len(self.heads) > 16 * CHAIN_PREFETCH:
                self.heads.clear()
            for ancestor, head in chain[1:]:
                self.heads[ancestor.raw] = head.parents
            return chain[0][1].parents
        obj = self.repo.read_object(oid)
        if not isinstance(obj, Manifest):
            raise CorruptObject(oid.hex, f"a parent link names a {obj.type.value}")
        return obj.parents

    def _record(self, oid: ObjectId, sha: bytes) -> None:
        self.done[oid.raw] = sha
        if self.mapped.get(oid.raw) != sha:
            self.new_map.append((oid.raw, sha))

    def commit_for(self, root: ObjectId) -> bytes:
        """The commit of manifest ``root``, writing it and its missing ancestors
        (parents first; an explicit stack, so any depth of history works)."""
        known = self._known(root)
        if known is not None:
            return known
        # (manifest, its parents once expanded: then all of them are done first)
        stack: list[tuple[ObjectId, tuple[ObjectId, ...] | None]] = [(root, None)]
        expanded: set[bytes] = set()
        while stack:
            oid, parents = stack.pop()
            if oid.raw in self.done:
                continue
            if parents is not None:
                shas = []
                for p in parents:
                    sha = self.done.get(p.raw)
                    if sha is None:
                        raise CorruptObject(oid.hex, "manifest parents form a cycle")
                    shas.append(sha)
                self._record(oid, self.to_git.commit(oid, shas))
                continue
            if oid.raw in expanded or self._known(oid) is not None:
                continue
            expanded.add(oid.raw)
            parents = self._parents(oid)
            stack.append((oid, parents))
            for p in reversed(parents):
                if p.raw not in self.done:
                    stack.append((p, None))
        return self.done[root.raw]

    def object_for(self, oid: ObjectId) -> tuple[bytes, int]:
        """(git id, git type) of any STEVE object, written if new."""
        kind = self.repo.object_type(oid)
        if kind.is_manifest:
            return self.commit_for(oid), COMMIT
        if kind is ObjectType.TREE:
            return self.to_git.tree(oid), TREE
        if kind is ObjectType.BLOB:
            return self.to_git.blob(oid), BLOB
        known = self._known(oid)
        if known is not None:
            return known, TAG
        tag = self.repo.read_object(oid)
        if not isinstance(tag, Tag):
            raise CorruptObject(oid.hex, f"stored as a tag but decodes as a {tag.type.value}")
        inner, inner_type = self.object_for(tag.object)
        sha = self.to_git.tag(oid, inner, inner_type)
        self._record(oid, sha)
        return sha, TAG

    # --- refs ---------------------------------------------------------------------------

    def is_ancestor(self, old: bytes, new: bytes) -> bool:
        """Whether commit ``old`` is ``new`` or one of its ancestors."""
        stack, seen = [new], set()
        while stack:
            sha = stack.pop()
            if sha == old:
                return True
            if sha in seen:
                continue
            seen.add(sha)
            parents = self.to_git.new_parents.get(sha)
            if parents is None:
                type_num, data = read_raw(self.target, sha)
                parents = tuple(_commit_parents(data)) if type_num == COMMIT else ()
            stack.extend(parents)
        return False


def export_git(
    repo: Repo,
    path: Path,
    refs: Sequence[str] = (),
    *,
    all_refs: bool = False,
    force: bool = False,
    bare: bool = False,
) -> ExportReport:
    """Export the history of ``refs`` (default: HEAD's branch; ``all_refs``: every
    ref) into the git repository at ``path``, created (``bare`` or not) if missing.

    Raises NonFastForward (nothing written) when a target ref would lose
    commits and ``force`` is not set; NotRepresentable for a named ref git
    cannot hold (a branch pointing at a tree); NotAGitRepository, GitFailure.
    """
    selected = _select(repo, refs, all_refs)
    head = repo.head()
    branch = head.symbolic if head is not None and head.symbolic else DEFAULT_BRANCH
    target, created = open_or_create(path, bare=bare, branch=branch)
    try:
        return _run(repo, target, path, created, selected, force=force, strict=not all_refs)
    finally:
        target.close()


def _run(
    repo: Repo,
    target: GitRepo,
    path: Path,
    created: bool,
    selected: list[tuple[str, ObjectId]],
    *,
    force: bool,
    strict: bool,
) -> ExportReport:
    pack_dir = Path(target.controldir()) / "objects" / "pack"
    present = TargetObjects(target)
    with PackWriter(pack_dir, present) as pack:
        ex = _Export(repo, target, pack, empty=present.empty)
        planned: list[tuple[str, str, bytes, int]] = []
        skipped: list[SkippedRef] = []
        owners: dict[str, str] = {}
        for steve_ref, oid in selected:
            git_ref = git_ref_name(steve_ref)
            if git_ref in owners:
                raise NotRepresentable(
                    steve_ref, f"exports to {git_ref}, as {owners[git_ref]} does"
                )
            owners[git_ref] = steve_ref
            kind = repo.object_type(oid)
            if not git_ref.startswith("refs/tags/") and not kind.is_manifest:
                why = f"points at a {kind.value}; git branches hold commits"
                if strict:
                    raise NotRepresentable(steve_ref, why)
                skipped.append(SkippedRef(steve_ref, why))
                continue
            sha, type_num = ex.object_for(oid)
            planned.append((steve_ref, git_ref, sha, type_num))
        try:
            current = target.refs.as_dict()
        except GIT_READ_ERRORS as exc:
            raise GitFailure("read refs", str(exc)) from exc
        results = []
        for steve_ref, git_ref, sha, type_num in planned:
            new = hexsha(sha).decode()
            old_id = current.get(GitRefName(git_ref.encode()))
            old = old_id.decode() if old_id is not None else None
            if old == new:
                status = RefStatus.UNCHANGED
            elif old is None:
                status = RefStatus.CREATED
            elif (
                type_num == COMMIT
                and not git_ref.startswith("refs/tags/")
                and ex.is_ancestor(bytes.fromhex(old), sha)
            ):
                status = RefStatus.UPDATED
            elif force:
                status = RefStatus.FORCED
            else:
                raise NonFastForward(git_ref, old, new)
            results.append(RefResult(steve_ref, git_ref, new, old, status))
        objects = pack.count
        name = pack.finish()
    if ex.new_map:
        repo.put_derived(GIT_MAP, ex.new_map)
    for r in results:
        if r.status is RefStatus.UNCHANGED:
            continue
        _set_ref(target, r)
    return ExportReport(
        path,
        created,
        ex.to_git.commits_written,
        ex.to_git.tags_written,
        objects,
        name,
        tuple(results),
        tuple(skipped),
    )


def _set_ref(target: GitRepo, r: RefResult) -> None:
    name = GitRefName(r.git_ref.encode())
    new = ObjectID(r.new.encode())
    try:
        if r.old is None:
            ok = target.refs.add_if_new(name, new, message=REFLOG_MESSAGE)
        else:
            ok = target.refs.set_if_equals(
                name, ObjectID(r.old.encode()), new, message=REFLOG_MESSAGE
            )
    except GIT_READ_ERRORS as exc:
        raise GitFailure(f"update {r.git_ref}", str(exc)) from exc
    if not ok:
        raise GitFailure(f"update {r.git_ref}", "the ref changed during the export; run it again")
