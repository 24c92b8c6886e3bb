"""``export_git``: STEVE history into a git repository, deterministically and incrementally.

    >>> report = export_git(repo, Path("mirror"), ["main"])

What maps to what is in :mod:`steve.gitbridge.layout` and docs/git-compat.md.
The steps:

1. Choose refs: the names given, every ref (``all_refs``), or every branch and
   the current run's refs.
2. Walk each ref's history parents first, stopping at manifests the target
   already has: the ``git-map`` (STEVE id -> git commit id, kept in the
   encrypted database) names the commit, and the target must contain it
   (the target may be another repository than last time).  Everything
   new goes into one pack (:class:`~steve.gitbridge.pack.PackWriter`):
   the missing manifests are ordered parents first, then written
   :data:`COMMIT_BATCH` at a time, each batch's manifests and attachments
   read ahead in a few queries (:meth:`~steve.gitbridge.convert.ToGit.prefetch`).
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dulwich.file import FileLocked
from dulwich.objects import ObjectID
from dulwich.refs import Ref as GitRefName

from steve.errors import (
    CorruptObject,
    GitFailure,
    NonFastForward,
    NothingToExport,
    NotRepresentable,
    RefNotFound,
)
from steve.gitbridge.convert import ToGit, hexsha
from steve.gitbridge.layout import GIT_MAP, git_ref_name
from steve.gitbridge.pack import BLOB, COMMIT, TAG, TREE, PackWriter, remove_stale_packs
from steve.gitbridge.target import (
    GIT_READ_ERRORS,
    GitRepo,
    TargetObjects,
    open_or_create,
    read_raw,
    read_refs,
)
from steve.gitbridge.witness import CHECKPOINTS_REF
from steve.objects.model import Manifest, ObjectType, Tag
from steve.objects.oid import ObjectId
from steve.progress import Progress
from steve.refs.names import HEAD, length_problem
from steve.repo import DEFAULT_BRANCH, Repo

__all__ = ["ExportReport", "RefResult", "RefStatus", "SkippedRef", "export_git"]

REFLOG_MESSAGE = b"steve export-git"
CHAIN_PREFETCH = 256  # manifest index rows read per query while walking
COMMIT_BATCH = 256  # manifests (and their attachments) read ahead at a time


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
    steve_oid: str = ""  # the STEVE id the ref names, hex


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
    head: str | None = None  # the branch the target's unborn HEAD was pointed at


def _select(
    repo: Repo, names: Sequence[str], all_refs: bool, run: str | None = None
) -> list[tuple[str, ObjectId]]:
    chosen: dict[str, ObjectId] = {}
    if not names and not all_refs:
        return _select_default(repo, run)
    if all_refs:
        for listed in repo.list_refs("refs/"):
            if listed.symbolic is None and listed.target is not None:
                chosen[listed.name] = listed.target
    wanted = list(names)
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


def _select_default(repo: Repo, run: str | None) -> list[tuple[str, ObjectId]]:
    """What a user means by a bare ``export-git``: every branch and the refs of the
    current run (``run``); HEAD's branch when it is detached elsewhere."""
    chosen: dict[str, ObjectId] = {}
    prefixes = ["refs/heads/"] + ([f"refs/runs/{run}/"] if run else [])
    for prefix in prefixes:
        for listed in repo.list_refs(prefix):
            if listed.symbolic is None and listed.target is not None:
                chosen[listed.name] = listed.target
    head = repo.refs.resolve(HEAD)
    if head is not None and head.target is not None and head.symbolic is not None:
        chosen.setdefault(head.symbolic, head.target)
    if not chosen:
        where = f"no branch and no ref under refs/runs/{run}/" if run else "no branch, no run"
        raise NothingToExport(f"{where} (HEAD's branch has no commits yet)")
    return sorted(chosen.items())


def _head_for(repo: Repo, target: GitRepo, results: Sequence[RefResult]) -> str | None:
    """Point the target's HEAD at an exported branch when it names nothing (so a
    plain ``git log`` works): STEVE's HEAD branch, else the branch whose commit is
    newest (a run's latest stage).  Returns the branch set, or None."""
    try:
        current = target.refs.read_ref(GitRefName(b"HEAD"))
        if current is None or not current.startswith(b"ref: "):
            return None  # detached, or no HEAD: leave it
        if current[5:].strip() in target.refs.allkeys():
            return None  # HEAD's branch exists: git log works already
    except GIT_READ_ERRORS as exc:
        raise GitFailure("read HEAD", str(exc)) from exc
    branches = {r.git_ref: r for r in results if r.git_ref.startswith("refs/heads/")}
    if not branches:
        return None
    head = repo.head()
    if head is not None and head.symbolic is not None and head.symbolic in branches:
        choice = head.symbolic
    else:

        def newest(name: str) -> tuple[int, str]:
            oid = ObjectId.from_hex(branches[name].steve_oid)
            obj = repo.read_object(oid)
            return (obj.time if isinstance(obj, Manifest) else 0, name)

        choice = max(branches, key=newest)
    try:
        target.refs.set_symbolic_ref(
            GitRefName(b"HEAD"), GitRefName(choice.encode()), message=REFLOG_MESSAGE
        )
    except GIT_READ_ERRORS as exc:
        raise GitFailure("set HEAD", str(exc)) from exc
    return choice


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
        # First the order: every missing manifest after its parents.
        order: list[tuple[ObjectId, tuple[ObjectId, ...]]] = []
        planned: set[bytes] = set()
        # (manifest, its parents once expanded: then all of them are planned first)
        stack: list[tuple[ObjectId, tuple[ObjectId, ...] | None]] = [(root, None)]
        expanded: set[bytes] = set()
        while stack:
            oid, parents = stack.pop()
            if oid.raw in self.done or oid.raw in planned:
                continue
            if parents is not None:
                for p in parents:
                    if p.raw not in self.done and p.raw not in planned:
                        raise CorruptObject(oid.hex, "manifest parents form a cycle")
                planned.add(oid.raw)
                order.append((oid, parents))
                continue
            if oid.raw in expanded or self._known(oid) is not None:
                continue
            expanded.add(oid.raw)
            parents = self._parents(oid)
            stack.append((oid, parents))
            for p in reversed(parents):
                if p.raw not in self.done and p.raw not in planned:
                    stack.append((p, None))
        # Then the commits, in that order, reading ahead a batch at a time.
        for start in range(0, len(order), COMMIT_BATCH):
            batch = order[start : start + COMMIT_BATCH]
            self.to_git.prefetch([oid for oid, _ in batch])
            for oid, parents in batch:
                shas = [self.done[p.raw] for p in parents]
                self._record(oid, self.to_git.commit(oid, shas))
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
    run: str | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Export the history of ``refs`` (default: the branches and ``run``'s refs;
    ``all_refs``: every ref) into the git repository at ``path``, created
    (``bare`` or not) if missing.

    Without ``refs`` (and not ``all_refs``) it exports every branch and the
    refs of the run ``run`` (the current run, which the caller knows).  A
    target whose HEAD names no ref gets HEAD pointed at an exported branch.
    A ref git cannot hold is refused when named in ``refs``; in the default
    selection and with ``all_refs`` it is skipped and listed.

    Raises NonFastForward (nothing written) when a target ref would lose
    commits and ``force`` is not set; NotRepresentable for a named ref git
    cannot hold (a branch pointing at a tree); NothingToExport;
    NotAGitRepository, GitFailure.

    ``progress`` hears one phase "export-git" counting the git objects written
    (not known in advance), the detail the ref being exported.
    """
    selected = _select(repo, refs, all_refs, run)
    head = repo.head()
    branch = head.symbolic if head is not None and head.symbolic else DEFAULT_BRANCH
    target, created = open_or_create(path, bare=bare, branch=branch)
    try:
        return _run(
            repo,
            target,
            path,
            created,
            selected,
            force=force,
            strict=bool(refs),
            progress=progress,
        )
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
    progress: Progress | None = None,
) -> ExportReport:
    pack_dir = Path(target.controldir()) / "objects" / "pack"
    remove_stale_packs(pack_dir)
    present = TargetObjects(target)
    current = read_refs(target)
    chosen, skipped = _check_refs(repo, selected, current, strict=strict)
    # the checkpoints ref too: the CLI exports it right after the refs
    writes = [git_ref for _, git_ref, _ in chosen] + [CHECKPOINTS_REF.decode()]
    _check_writable(Path(target.controldir()), writes)
    with PackWriter(pack_dir, None if present.empty else present) as pack:
        ex = _Export(repo, target, pack, empty=present.empty)
        planned: list[tuple[str, str, bytes, int, ObjectId]] = []
        if progress is not None:
            progress.start("export-git", None, unit="objects")
            pack.progress = progress
        for steve_ref, git_ref, oid in chosen:
            if progress is not None:
                progress.advance(0, steve_ref)
            try:
                sha, type_num = ex.object_for(oid)
            except NotRepresentable as exc:  # e.g. a build output nested too deep
                if strict:
                    raise
                skipped.append(SkippedRef(steve_ref, exc.detail or exc.message))
                continue
            planned.append((steve_ref, git_ref, sha, type_num, oid))
        results = []
        for steve_ref, git_ref, sha, type_num, oid in planned:
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
            results.append(RefResult(steve_ref, git_ref, new, old, status, oid.hex))
        objects = pack.count
        name = pack.finish()
        if progress is not None:
            progress.finish()
    if ex.new_map:
        repo.put_derived(GIT_MAP, ex.new_map)
    for r in results:
        if r.status is RefStatus.UNCHANGED:
            continue
        _set_ref(target, r)
    head = _head_for(repo, target, results)
    return ExportReport(
        path,
        created,
        ex.to_git.commits_written,
        ex.to_git.tags_written,
        objects,
        name,
        tuple(results),
        tuple(skipped),
        head,
    )


def _check_refs(
    repo: Repo,
    selected: list[tuple[str, ObjectId]],
    existing: Iterable[bytes],
    *,
    strict: bool,
) -> tuple[list[tuple[str, str, ObjectId]], list[SkippedRef]]:
    """Every git ref the export will write, checked before anything is written: a
    branch must hold a commit, and git must be able to store the name next to the
    target's refs and the other exported ones (length, directory/file conflicts).
    Named refs (``strict``) raise NotRepresentable; ``--all`` skips and lists them."""
    chosen: list[tuple[str, str, ObjectId]] = []
    skipped: list[SkippedRef] = []
    owners: dict[str, str] = {}
    names = {name.decode() for name in existing if name != b"HEAD"}
    dirs = {name.rsplit("/", i)[0] for name in names for i in range(1, name.count("/"))}
    for steve_ref, oid in selected:
        git_ref = git_ref_name(steve_ref)
        if git_ref in owners:
            raise NotRepresentable(steve_ref, f"exports to {git_ref}, as {owners[git_ref]} does")
        owners[git_ref] = steve_ref
        kind = repo.object_type(oid)
        why: str | None = None
        if not git_ref.startswith("refs/tags/") and not kind.is_manifest:
            why = f"points at a {kind.value}; git branches hold commits"
        elif (too_long := length_problem(git_ref)) is not None:
            why = f"{git_ref} is too long for git: {too_long}"
        elif git_ref in dirs:
            below = next(n for n in sorted(names) if n.startswith(git_ref + "/"))
            why = f"{git_ref} cannot exist next to {below} (directory/file conflict in git)"
        else:
            parents = [git_ref.rsplit("/", i)[0] for i in range(1, git_ref.count("/"))]
            clash = next((p for p in parents if p in names), None)
            if clash is not None:
                why = f"{git_ref} cannot exist next to {clash} (directory/file conflict in git)"
            else:
                names.add(git_ref)
                dirs.update(parents)
        if why is not None:
            if strict:
                raise NotRepresentable(steve_ref, why)
            skipped.append(SkippedRef(steve_ref, why))
            continue
        chosen.append((steve_ref, git_ref, oid))
    return chosen, skipped


def _check_writable(controldir: Path, git_refs: Iterable[str]) -> None:
    """GitFailure, before anything is written, if a ref the export writes cannot be
    written: it is locked (``<ref>.lock``: a git command is running, or was killed and
    left it), or a file that is not a ref is in the way (at a directory of its name,
    or inside a directory at its name). Directories holding nothing but empty
    directories at a ref's name are removed, as git does. So the export never stops
    after writing some refs."""
    empty: list[Path] = []
    for git_ref in git_refs:
        path = controldir / git_ref
        lock = path.with_name(path.name + ".lock")
        if lock.exists():
            raise GitFailure(
                f"update {git_ref}",
                f"{lock} exists (a git command is running, or was killed: remove the "
                "file if none is); nothing was written",
            )
        parts = Path(git_ref).parts
        for i in range(1, len(parts)):
            above = controldir.joinpath(*parts[:i])
            if above.is_symlink() or (above.exists() and not above.is_dir()):
                raise GitFailure(
                    f"update {git_ref}",
                    f"{above} is in the way (not a directory); nothing was written",
                )
        if path.is_symlink() or not path.is_dir():
            continue
        stray = next((p for p in path.rglob("*") if p.is_symlink() or not p.is_dir()), None)
        if stray is not None:
            raise GitFailure(
                f"update {git_ref}",
                f"{stray} is in the way (a file that is not a ref); nothing was written",
            )
        empty.append(path)
    for path in empty:
        for folder in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            folder.rmdir()
        path.rmdir()


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
    except FileLocked as exc:
        raise GitFailure(f"update {r.git_ref}", f"locked by another git process: {exc}") from exc
    except GIT_READ_ERRORS as exc:
        raise GitFailure(f"update {r.git_ref}", str(exc)) from exc
    if not ok:
        raise GitFailure(f"update {r.git_ref}", "the ref changed during the export; run it again")
