"""STEVE trees <-> tar streams, in bounded memory.

:func:`tar_stream` turns named tree/blob objects into a tar stream, yielding
headers and blob content chunk by chunk (a chunked blob is never joined).
Modes (644/755), directories and symlinks are kept; every entry belongs to
the container user, mtimes are 0.  The first entry is the extraction root
itself (``/``) owned by that user: the Docker Engine applies its owner to
the directory the archive is extracted into, so a fresh volume becomes
writable by a non-root step.

:func:`store_tar` reads a tar stream (``get_archive``) member by member and
writes blobs and trees through ``repo.writer()``; file content is streamed
into chunked blobs.  Absolute paths, ``..``, device nodes, fifos, hard links
to unknown members and non-UTF-8 names are refused
(:class:`~steve.errors.UnsafeArchive`); symlinks are stored as symlinks and
never followed.  Both directions walk iteratively; a tree deeper than
:data:`MAX_TREE_DEPTH` (2048) directory levels is refused with a typed error
(:class:`~steve.errors.UnsafeArchive` for an output, which the step records as
``ContainerError.OutputRejected``; :class:`~steve.errors.InvalidInput` for an input).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Literal

from steve.errors import InvalidInput, MalformedObject, UnsafeArchive
from steve.objects.model import Blob, Mode, ObjectType, Tree, TreeEntry, check_entry_name
from steve.objects.oid import ObjectId
from steve.objects.schemas.container import relative_path_problem
from steve.repo import BatchWriter, Repo

BLOCK = tarfile.BLOCKSIZE
TAR_FORMAT: Literal[2] = 2  # tarfile.PAX_FORMAT
# Directory levels a tree may have on its way into or out of a container (both walks
# are iterative; the limit bounds memory and keeps every path under a few pages).
MAX_TREE_DEPTH = 2048


def _header(
    name: str, kind: bytes, *, mode: int, uid: int, gid: int, size: int = 0, linkname: str = ""
) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.size = size
    info.linkname = linkname
    info.mtime = 0
    return info.tobuf(format=TAR_FORMAT, encoding="utf-8", errors="strict")


def _pad(size: int) -> bytes:
    rest = size % BLOCK
    return b"\0" * (BLOCK - rest) if rest else b""


def check_input_name(name: str) -> list[str]:
    """The components of an input's relative path; refuses absolute paths and ``..``."""
    why = relative_path_problem(name)  # the rule freeze applies to a plan's names
    if why is not None:
        raise InvalidInput("invalid input or output path", why)
    return name.split("/")


def tar_stream(repo: Repo, items: Mapping[str, ObjectId], *, uid: int, gid: int) -> Iterator[bytes]:
    """A tar of ``items`` (relative path -> tree or blob id), root entry owned by uid:gid."""
    yield _header("/", tarfile.DIRTYPE, mode=0o755, uid=uid, gid=gid)
    made: set[str] = set()
    for name in sorted(items):
        parts = check_input_name(name)
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in made:
                made.add(parent)
                yield _header(parent + "/", tarfile.DIRTYPE, mode=0o755, uid=uid, gid=gid)
        oid = items[name]
        kind = repo.object_type(oid)
        if kind is ObjectType.TREE:
            made.add(name)
            yield _header(name + "/", tarfile.DIRTYPE, mode=0o755, uid=uid, gid=gid)
            yield from _tree_entries(repo, oid, name, uid, gid)
        elif kind is ObjectType.BLOB:
            yield from _file(repo, oid, name, Mode.FILE, uid, gid)
        else:
            raise InvalidInput("an input must be a tree or blob", f"{name}: {oid} is a {kind}")
    yield b"\0" * (2 * BLOCK)


def _tree_entries(repo: Repo, oid: ObjectId, prefix: str, uid: int, gid: int) -> Iterator[bytes]:
    """The entries under tree ``oid`` (depth first, in tree order), without recursion."""
    stack: list[Iterator[tuple[str, TreeEntry]]] = [_children(repo, oid, prefix)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, e = item
        if e.mode is Mode.TREE:
            if len(stack) >= MAX_TREE_DEPTH:
                raise InvalidInput(
                    "an input tree is nested too deep",
                    f"{path[:200]}...: more than {MAX_TREE_DEPTH} directory levels",
                )
            yield _header(path + "/", tarfile.DIRTYPE, mode=0o755, uid=uid, gid=gid)
            stack.append(_children(repo, e.oid, path))
        elif e.mode is Mode.SYMLINK:
            target = repo.read_blob(e.oid).decode("utf-8", "surrogateescape")
            yield _header(path, tarfile.SYMTYPE, mode=0o777, uid=uid, gid=gid, linkname=target)
        else:
            yield from _file(repo, e.oid, path, e.mode, uid, gid)


def _children(repo: Repo, oid: ObjectId, prefix: str) -> Iterator[tuple[str, TreeEntry]]:
    tree = repo.read_typed(oid, ObjectType.TREE)
    assert isinstance(tree, Tree)
    for e in tree.entries:
        yield f"{prefix}/{e.name}", e


def _file(repo: Repo, oid: ObjectId, path: str, mode: Mode, uid: int, gid: int) -> Iterator[bytes]:
    size = repo.object_info(oid).size
    perm = 0o755 if mode is Mode.EXECUTABLE else 0o644
    yield _header(path, tarfile.REGTYPE, mode=perm, uid=uid, gid=gid, size=size)
    written = 0
    for chunk in repo.iter_content(oid):
        written += len(chunk)
        yield chunk
    if written != size:
        raise InvalidInput("blob size changed while streaming", f"{path}: {oid}")
    yield _pad(size)


# --- tar -> objects ---------------------------------------------------------------------


class IterReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (no seeking)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


@dataclass
class _Dir:
    children: dict[str, _Dir | tuple[Mode, ObjectId]] = field(default_factory=dict)


def store_tar(
    repo: Repo, chunks: Iterable[bytes], *, max_depth: int = MAX_TREE_DEPTH
) -> tuple[str, ObjectId]:
    """Store the single top-level entry of a ``get_archive`` tar; (its name, tree/blob id).

    An entry nested deeper than ``max_depth`` directories below it is refused
    (:class:`~steve.errors.UnsafeArchive`)."""
    reader = io.BufferedReader(IterReader(chunks), buffer_size=1 << 16)
    root = _Dir()
    top: str | None = None
    top_is_file: ObjectId | None = None
    files: dict[str, tuple[Mode, ObjectId]] = {}
    with repo.writer() as w:
        try:
            with tarfile.open(fileobj=reader, mode="r|", encoding="utf-8", errors="strict") as tar:
                for member in tar:
                    parts = _check_member(member, max_depth)
                    if top is None:
                        top = parts[0]
                    elif parts[0] != top:
                        raise UnsafeArchive(member.name, "more than one top-level entry")
                    rel = parts[1:]
                    if not rel:
                        if member.isdir():
                            continue
                        if member.isreg():
                            top_is_file = _store_member(w, tar, member)
                            continue
                        raise UnsafeArchive(member.name, "an output must be a file or directory")
                    parent = _mkdirs(root, rel[:-1], member.name)
                    if member.isdir():
                        node = parent.children.get(rel[-1])
                        if node is None:
                            parent.children[rel[-1]] = _Dir()
                        elif not isinstance(node, _Dir):
                            raise UnsafeArchive(member.name, "a file and a directory")
                        continue
                    if member.issym():
                        oid = w.add(Blob(member.linkname.encode("utf-8")))
                        entry: tuple[Mode, ObjectId] = (Mode.SYMLINK, oid)
                    elif member.islnk():
                        target = posixpath.normpath(member.linkname)
                        if target not in files:
                            raise UnsafeArchive(member.name, "hard link to an unknown member")
                        entry = files[target]
                    else:
                        oid = _store_member(w, tar, member)
                        mode = Mode.EXECUTABLE if member.mode & 0o100 else Mode.FILE
                        entry = (mode, oid)
                        files[posixpath.normpath(member.name)] = entry
                    if rel[-1] in parent.children:
                        raise UnsafeArchive(member.name, "entry repeated")
                    parent.children[rel[-1]] = entry
        except (tarfile.TarError, UnicodeError, EOFError) as exc:
            raise UnsafeArchive(top or "(archive)", f"not a readable tar: {exc}") from None
        if top is None:
            raise UnsafeArchive("(archive)", "empty archive")
        if top_is_file is not None:
            return top, top_is_file
        return top, _write_dir(w, root)


def _check_member(member: tarfile.TarInfo, max_depth: int = 0) -> list[str]:
    name = member.name
    if name.startswith("/"):
        raise UnsafeArchive(name, "absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafeArchive(name, "path escapes the output ('..' or empty)")
    if len(parts) > (max_depth or MAX_TREE_DEPTH) + 1:
        raise UnsafeArchive(
            name[:200] + "...",
            f"nested deeper than {max_depth or MAX_TREE_DEPTH} directory levels",
        )
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchive(name, "device nodes, fifos and other special files are refused")
    for p in parts:
        try:
            check_entry_name(p)
        except MalformedObject as exc:
            raise UnsafeArchive(name, exc.detail) from None
    if member.islnk() and (member.linkname.startswith("/") or ".." in member.linkname.split("/")):
        raise UnsafeArchive(name, "hard link outside the archive")
    return parts


def _mkdirs(root: _Dir, parts: list[str], name: str) -> _Dir:
    node = root
    for p in parts:
        child = node.children.get(p)
        if child is None:
            child = node.children[p] = _Dir()
        if not isinstance(child, _Dir):
            raise UnsafeArchive(name, f"{p} is not a directory")
        node = child
    return node


def _store_member(w: BatchWriter, tar: tarfile.TarFile, member: tarfile.TarInfo) -> ObjectId:
    fh: IO[bytes] | None = tar.extractfile(member)
    if fh is None:
        raise UnsafeArchive(member.name, "no content")
    return w.add_stream(fh)  # type: ignore[arg-type]


def _write_dir(w: BatchWriter, root: _Dir) -> ObjectId:
    """Write the trees of ``root`` bottom-up, without recursion; the root tree's id."""
    ids: dict[int, ObjectId] = {}
    order: list[_Dir] = []
    stack = [root]
    while stack:  # parents before children; written in reverse: children first
        node = stack.pop()
        order.append(node)
        stack.extend(c for c in node.children.values() if isinstance(c, _Dir))
    for node in reversed(order):
        entries = []
        for name, child in node.children.items():
            if isinstance(child, _Dir):
                entries.append(TreeEntry(name, Mode.TREE, ids.pop(id(child))))
            else:
                entries.append(TreeEntry(name, child[0], child[1]))
        ids[id(node)] = w.add(Tree.from_entries(entries))
    return ids[id(root)]
