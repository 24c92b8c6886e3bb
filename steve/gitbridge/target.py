"""Opening (or creating) the git repository on the far side, with dulwich's
failures turned into STEVE errors."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from weakref import WeakKeyDictionary

from dulwich.errors import NotGitRepository, WrongObjectException
from dulwich.objects import ObjectID, RawObjectID
from dulwich.objectspec import parse_object
from dulwich.refs import Ref as GitRefName
from dulwich.repo import Repo as GitRepo

from steve.errors import GitFailure, GitRevisionNotFound, NotAGitRepository, NotRepresentable
from steve.gitbridge.reader import ObjectReader

__all__ = [
    "GitRepo",
    "TargetObjects",
    "object_info",
    "object_reader",
    "open_git",
    "open_object",
    "open_or_create",
    "read_raw",
    "read_refs",
    "resolve_rev",
]

# What a damaged git repository makes dulwich raise while reading.
GIT_READ_ERRORS = (OSError, ValueError, zlib.error, AssertionError, IndexError)


def _check_format(repo: GitRepo, path: Path) -> GitRepo:
    if repo.object_format.name != "sha1":
        repo.close()
        raise NotRepresentable(str(path), f"{repo.object_format.name} repositories: use SHA-1")
    return repo


def open_git(path: Path) -> GitRepo:
    """The existing git repository at ``path`` (bare, or with ``.git``)."""
    if not path.is_dir():
        raise NotAGitRepository(str(path), "no such directory")
    try:
        repo = GitRepo(str(path))
    except NotGitRepository:
        why = "neither a .git directory nor a bare repository"
        raise NotAGitRepository(str(path), why) from None
    except GIT_READ_ERRORS as exc:
        raise GitFailure(f"open {path}", str(exc)) from exc
    return _check_format(repo, path)


def open_or_create(path: Path, *, bare: bool, branch: str) -> tuple[GitRepo, bool]:
    """Open the repository at ``path``, or create one (``HEAD`` -> ``branch``) when
    ``path`` is missing or an empty directory.  Returns (repo, created)."""
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        return open_git(path), False
    default = branch.removeprefix("refs/heads/").encode()
    try:
        if bare:
            repo = GitRepo.init_bare(str(path), mkdir=not path.exists(), default_branch=default)
        else:
            repo = GitRepo.init(str(path), mkdir=not path.exists(), default_branch=default)
    except GIT_READ_ERRORS as exc:
        raise GitFailure(f"create {path}", str(exc)) from exc
    return repo, True


_READERS: WeakKeyDictionary[GitRepo, ObjectReader] = WeakKeyDictionary()


def object_reader(repo: GitRepo) -> ObjectReader:
    """The bounded-memory reader of ``repo``'s objects (one per open repository)."""
    reader = _READERS.get(repo)
    if reader is None:
        reader = _READERS[repo] = ObjectReader(repo)
    return reader


def read_raw(repo: GitRepo, sha: bytes) -> tuple[int, bytes]:
    """(type number, content) of the object ``sha`` (raw 20 bytes), read whole: at
    most :data:`~steve.gitbridge.reader.MAX_INLINE` bytes (GitObjectTooLarge)."""
    return object_reader(repo).read(sha)


def object_info(repo: GitRepo, sha: bytes) -> tuple[int, int]:
    """(type number, size) of the object ``sha``, without reading it whole."""
    return object_reader(repo).info(sha)


def open_object(repo: GitRepo, sha: bytes) -> tuple[int, int, Iterator[bytes]]:
    """(type number, size, chunks) of the object ``sha``: a blob of any size streams."""
    return object_reader(repo).stream(sha)


def read_refs(repo: GitRepo) -> dict[GitRefName, ObjectID]:
    """Every ref (symbolic ones resolved), name -> hex id."""
    try:
        return repo.refs.as_dict()
    except GIT_READ_ERRORS as exc:
        raise GitFailure("read refs", str(exc)) from exc


def resolve_rev(repo: GitRepo, path: Path, rev: str) -> ObjectID:
    """The hex id git revision ``rev`` names (dulwich's objectspec: ref names,
    full ids, ``REV~N``, ``REV^N``, ``REV^{}``, ``REV:path``)."""
    try:
        return parse_object(repo, rev.encode()).id
    except (KeyError, ValueError, IndexError, WrongObjectException):
        raise GitRevisionNotFound(rev, str(path)) from None
    except GIT_READ_ERRORS as exc:
        raise GitFailure(f"resolve {rev}", str(exc)) from exc


class TargetObjects:
    """Membership in the objects a repository held when this was made: its packs'
    indexes and a listing of its loose objects, read once (dulwich's own check
    re-lists the pack directory on every miss), plus any alternates."""

    def __init__(self, repo: GitRepo) -> None:
        store = repo.object_store
        try:
            self._packs = list(store.packs)
            self._alternates = list(store.alternates)
            self._loose: set[bytes] = set()
            root = Path(store.path)
            for sub in root.iterdir():
                if len(sub.name) == 2 and sub.is_dir():
                    for f in sub.iterdir():
                        if len(f.name) == 38:
                            self._loose.add(bytes.fromhex(sub.name + f.name))
        except (*GIT_READ_ERRORS, AttributeError) as exc:
            raise GitFailure("list objects", str(exc)) from exc

    @property
    def empty(self) -> bool:
        """No objects at all (a new repository)."""
        return not (self._loose or self._packs or self._alternates)

    def __call__(self, sha: bytes) -> bool:
        if sha in self._loose:
            return True
        try:
            raw = RawObjectID(sha)
            if any(raw in pack for pack in self._packs):
                return True
            return any(ObjectID(sha.hex().encode()) in alt for alt in self._alternates)
        except GIT_READ_ERRORS as exc:
            raise GitFailure("read objects", str(exc)) from exc
