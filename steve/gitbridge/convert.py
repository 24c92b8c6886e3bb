"""Object conversion across the bridge.

:class:`ToGit` turns STEVE objects into git objects written to a
:class:`~steve.gitbridge.pack.PackWriter`: a blob becomes a blob with the same
bytes (chunked blobs streamed), a tree a tree with the same names and modes,
a manifest a commit (see :mod:`steve.gitbridge.layout`), an annotated tag an
annotated tag.  :class:`ToSteve` goes the other way for trees and blobs,
into any sink (a batch writer to import, or :func:`~steve.repo.hash_only` to
compute ids when verifying); git trees of the four modes STEVE knows
round-trip byte for byte.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any, BinaryIO, TypeVar

from dulwich.errors import ObjectFormatException
from dulwich.objects import Blob as GitBlob
from dulwich.objects import Commit as GitCommit
from dulwich.objects import ObjectID, ShaFile, sha_to_hex
from dulwich.objects import Tag as GitTag
from dulwich.objects import Tree as GitTree

from steve.errors import (
    CorruptObject,
    MalformedObject,
    NotRepresentable,
    ObjectNotFound,
    WrongObjectType,
)
from steve.gitbridge.layout import (
    EXPORT_IDENTITY,
    MANIFEST_CBOR,
    MANIFEST_JSON,
    attachments,
    commit_message,
    escape_entry_name,
    manifest_json,
    tag_message,
    unescape_entry_name,
)
from steve.gitbridge.pack import BLOB, COMMIT, TAG, TREE, PackWriter
from steve.gitbridge.reader import OpenBlob, chunk_stream
from steve.objects.model import (
    Blob,
    ChunkedBlob,
    Manifest,
    Mode,
    ObjectType,
    StoredObject,
    Tag,
    Tree,
    TreeEntry,
    check_entry_name,
    decode_inline_blob,
    decode_object_trusted,
    tree_entries,
)
from steve.objects.oid import ObjectId
from steve.repo import MAX_TREE_DEPTH, Repo, write_blob_stream

Sink = Callable[[StoredObject], ObjectId]
G = TypeVar("G", GitCommit, GitTree, GitTag)

FILE_MODE, EXEC_MODE, LINK_MODE, DIR_MODE = 0o100644, 0o100755, 0o120000, 0o040000
GIT_MODES = {Mode.FILE: FILE_MODE, Mode.EXECUTABLE: EXEC_MODE, Mode.SYMLINK: LINK_MODE}

# A manifest's tree before it is written: name -> (mode, raw id) or a subtree.
Nested = dict[bytes, Any]


def manifest_files(json_blob: bytes, cbor_blob: bytes) -> Nested:
    return {
        MANIFEST_JSON.encode(): (FILE_MODE, json_blob),
        MANIFEST_CBOR.encode(): (FILE_MODE, cbor_blob),
    }


def place(root: Nested, path: tuple[str, ...], leaf: tuple[int, bytes]) -> None:
    node = root
    for part in path[:-1]:
        node = node.setdefault(part.encode(), {})
    node[path[-1].encode()] = leaf


def write_nested(node: Nested, put: Callable[[int, bytes], bytes]) -> bytes:
    """Write the trees of ``node`` bottom up through ``put(type, raw) -> raw id``."""
    items = []
    for name, value in node.items():
        if isinstance(value, dict):
            items.append((name, DIR_MODE, write_nested(value, put)))
        else:
            items.append((name, value[0], value[1]))
    return put(TREE, build_tree(items))


def hexsha(raw: bytes) -> ObjectID:
    return sha_to_hex(raw)  # type: ignore[arg-type]


def parse_git(cls: type[G], data: bytes, where: str) -> G:
    """Parse raw git object content as ``cls`` (NotRepresentable if malformed)."""
    obj = cls()
    try:
        obj.set_raw_string(data)
        obj.check()
    except (ObjectFormatException, ValueError, UnicodeDecodeError) as exc:
        raise NotRepresentable(where, f"malformed git {cls.type_name.decode()}: {exc}") from exc
    return obj


def git_entry_name(name: str, mode: Mode) -> bytes:
    """A STEVE tree entry name as git stores it (names git refuses escaped:
    :func:`~steve.gitbridge.layout.escape_entry_name`)."""
    return escape_entry_name(name, mode is Mode.SYMLINK).encode()


def _tree_key(item: tuple[bytes, int, bytes]) -> bytes:
    return item[0] + b"/" if item[1] == DIR_MODE else item[0]


def build_tree(items: list[tuple[bytes, int, bytes]]) -> bytes:
    """Raw bytes of the git tree holding ``(name, mode, raw id)`` items (any order):
    git's order (a directory sorts as if its name ended in ``/``), modes in octal
    without leading zeros; what dulwich's Tree serialises (tests compare them)."""
    return b"".join(
        b"%o %s\0%s" % (mode, name, sha) for name, mode, sha in sorted(items, key=_tree_key)
    )


def _offset(minutes: int) -> bytes:
    sign = b"-" if minutes < 0 else b"+"
    hours, mins = divmod(abs(minutes), 60)
    return b"%s%02d%02d" % (sign, hours, mins)


def build_commit(tree: bytes, parents: list[bytes], oid: ObjectId, manifest: Manifest) -> bytes:
    """Raw bytes of the commit a manifest becomes (no encoding header, no signature);
    what dulwich's Commit serialises (tests compare them)."""
    who = b"%s %d %s\n" % (EXPORT_IDENTITY, manifest.time, _offset(manifest.tz))
    return b"".join(
        [
            b"tree %s\n" % hexsha(tree),
            *(b"parent %s\n" % hexsha(p) for p in parents),
            b"author " + who,
            b"committer " + who,
            b"\n",
            commit_message(oid, manifest),
        ]
    )


_GIT_CLASS: dict[int, type[ShaFile]] = {
    COMMIT: GitCommit,
    TREE: GitTree,
    BLOB: GitBlob,
    TAG: GitTag,
}


def _person(tag: Tag, oid: ObjectId) -> bytes:
    for part in (tag.tagger.name, tag.tagger.email):
        if any(ch in part for ch in "<>\n\0"):
            raise NotRepresentable(oid.hex, f"tagger {tag.tagger} has a character git refuses")
    return f"{tag.tagger.name} <{tag.tagger.email}>".encode()


def build_tag(target: bytes, target_type: int, oid: ObjectId, tag: Tag) -> bytes:
    t = GitTag()
    t.object = (_GIT_CLASS[target_type], hexsha(target))
    t.name = tag.name.encode()
    t.tagger = _person(tag, oid)
    t.tag_time = tag.time
    t.tag_timezone = tag.tz * 60
    t.message = tag_message(oid, tag.message, tag.signatures)
    return t.as_raw_string()


PREFETCH_OBJECTS = 4096  # objects read ahead at most per batch of manifests
PREFETCH_BYTES = 8 << 20  # and their stored bytes at most
PREFETCH_INLINE = 64 << 10  # larger objects are not read ahead
PREFETCH_QUERY = 128  # ids per query (so one query adds at most 8 MiB past the budget)


def _decode(kind: ObjectType, data: bytes) -> StoredObject:
    """Decode stored bytes read back from the authenticated store: the strict fast
    paths for inline blobs and trees (they accept only canonical encodings), else
    :func:`decode_object_trusted`."""
    if kind is ObjectType.BLOB:
        blob = decode_inline_blob(data)
        if blob is not None:
            return blob
    elif kind is ObjectType.TREE:
        entries = tree_entries(data)
        if entries is not None:
            trusted = ObjectId.trusted
            return Tree(tuple(TreeEntry(n, m, trusted(raw)) for n, m, raw in entries))
    return decode_object_trusted(data)


class ToGit:
    """Converts STEVE objects into git objects in one pack (memoised per export)."""

    def __init__(self, repo: Repo, pack: PackWriter) -> None:
        self.repo = repo
        self.pack = pack
        self._files: dict[bytes, bytes] = {}  # STEVE blob/tree id -> git id
        self.commits_written = 0
        self.tags_written = 0
        # parents of the commits this export wrote (for the fast-forward check)
        self.new_parents: dict[bytes, tuple[bytes, ...]] = {}
        # read ahead (:meth:`prefetch`): raw id -> (type, stored bytes, decoded)
        self._ahead: dict[bytes, tuple[ObjectType, bytes, StoredObject]] = {}
        self._kinds: dict[bytes, ObjectType] = {}  # types of linked manifests and tags

    def prefetch(self, manifests: Sequence[ObjectId]) -> None:
        """Read ahead what writing the commits of ``manifests`` will read: the
        manifests, then level by level their links and the entries of linked
        trees not converted yet, each level in ``oid IN (...)`` batches instead of
        one query per object.  Bounded (:data:`PREFETCH_OBJECTS`,
        :data:`PREFETCH_BYTES`; objects over :data:`PREFETCH_INLINE` bytes are
        left out); anything not read ahead is read when needed, and what was
        read ahead but not used is dropped at the next call."""
        self._ahead.clear()
        self._kinds.clear()
        ahead, kinds = self._ahead, self._kinds
        want = list(manifests)
        count = total = 0
        top = True
        while want:
            nxt: list[ObjectId] = []
            for start in range(0, len(want), PREFETCH_QUERY):
                if count >= PREFETCH_OBJECTS or total >= PREFETCH_BYTES:
                    return
                part = want[start : start + min(PREFETCH_QUERY, PREFETCH_OBJECTS - count)]
                for raw_id, type_text, _, data in self.repo.lookup_objects(part, PREFETCH_INLINE):
                    raw_id = bytes(raw_id)
                    kind = ObjectType(type_text)
                    if not top and kind is not ObjectType.TREE and kind is not ObjectType.BLOB:
                        kinds[raw_id] = kind  # a linked manifest or tag: only its type is used
                        continue
                    if data is None:
                        continue
                    data = bytes(data)
                    try:
                        obj = _decode(kind, data)
                    except MalformedObject:
                        continue  # read again when needed, and reported then
                    ahead[raw_id] = (kind, data, obj)
                    count += 1
                    total += len(data)
                    if isinstance(obj, Manifest):
                        children: Iterable[ObjectId] = obj.links
                    elif isinstance(obj, Tree):
                        children = (e.oid for e in obj.entries)
                    else:
                        continue
                    for child in children:
                        if child.raw not in self._files and child.raw not in ahead:
                            nxt.append(child)
            want = nxt
            top = False

    def _read(self, oid: ObjectId) -> tuple[ObjectType, StoredObject, bytes]:
        ahead = self._ahead.pop(oid.raw, None)
        if ahead is not None:
            kind, data, obj = ahead
            return kind, obj, data
        found = self.repo.read_with_info(oid)
        if found is None:
            raise ObjectNotFound(oid.hex)
        kind, _, data = found
        try:
            return kind, _decode(kind, data), data
        except MalformedObject as exc:
            raise CorruptObject(oid.hex, exc.detail) from exc

    def _type(self, oid: ObjectId) -> ObjectType:
        ahead = self._ahead.get(oid.raw)
        if ahead is not None:
            return ahead[0]
        kind = self._kinds.get(oid.raw)
        return kind if kind is not None else self.repo.object_info(oid).type

    def blob(self, oid: ObjectId) -> bytes:
        known = self._files.get(oid.raw)
        if known is not None:
            return known
        _, obj, _ = self._read(oid)
        if isinstance(obj, Blob):
            sha = self.pack.add(BLOB, obj.data)
        elif isinstance(obj, ChunkedBlob):
            sha = self.pack.add_stream(BLOB, obj.size, self.repo.iter_content(oid))
        else:
            raise WrongObjectType(oid.hex, "blob", obj.type.value)
        self._files[oid.raw] = sha
        return sha

    def tree(self, oid: ObjectId, depth: int = 0) -> bytes:
        known = self._files.get(oid.raw)
        if known is not None:
            return known
        if depth > MAX_TREE_DEPTH:
            raise NotRepresentable(f"tree {oid.hex}", f"nested deeper than {MAX_TREE_DEPTH}")
        _, obj, _ = self._read(oid)
        if not isinstance(obj, Tree):
            raise WrongObjectType(oid.hex, "tree", obj.type.value)
        items = []
        for e in obj.entries:
            name = git_entry_name(e.name, e.mode)
            if e.mode is Mode.TREE:
                items.append((name, DIR_MODE, self.tree(e.oid, depth + 1)))
            else:
                items.append((name, GIT_MODES[e.mode], self.blob(e.oid)))
        sha = self.pack.add(TREE, build_tree(items))
        self._files[oid.raw] = sha
        return sha

    def manifest_tree(self, oid: ObjectId, manifest: Manifest, data: bytes) -> bytes:
        """The tree of a manifest's commit: manifest.json, manifest.cbor, attachments."""
        root = manifest_files(
            self.pack.add(BLOB, manifest_json(oid, manifest)), self.pack.add(BLOB, data)
        )
        for path, target in attachments(manifest):
            kind = self._type(target)
            if kind is ObjectType.TREE:
                leaf = (DIR_MODE, self.tree(target))
            elif kind is ObjectType.BLOB:
                leaf = (FILE_MODE, self.blob(target))
            else:  # a manifest or tag: a commit or tag of its own; a symlink names it
                leaf = (LINK_MODE, self.pack.add(BLOB, target.hex.encode()))
            place(root, path, leaf)
        return write_nested(root, self.pack.add)

    def commit(self, oid: ObjectId, parents: list[bytes]) -> bytes:
        """Write the commit of manifest ``oid`` whose parents' commits are ``parents``."""
        _, obj, data = self._read(oid)
        if not isinstance(obj, Manifest):
            raise WrongObjectType(oid.hex, "manifest", obj.type.value)
        tree = self.manifest_tree(oid, obj, data)
        raw = build_commit(tree, parents, oid, obj)
        sha = self.pack.add(COMMIT, raw)
        if self.pack.is_new(sha):
            self.commits_written += 1
            self.new_parents[sha] = tuple(parents)
        return sha

    def tag(self, oid: ObjectId, target: bytes, target_type: int) -> bytes:
        _, obj, _ = self._read(oid)
        if not isinstance(obj, Tag):
            raise WrongObjectType(oid.hex, "tag", obj.type.value)
        sha = self.pack.add(TAG, build_tag(target, target_type, oid, obj))
        if self.pack.is_new(sha):
            self.tags_written += 1
        return sha


# --- git -> STEVE ---------------------------------------------------------------------------

_STEVE_MODES = {
    0o100644: Mode.FILE,
    0o100755: Mode.EXECUTABLE,
    0o120000: Mode.SYMLINK,
    0o040000: Mode.TREE,
}


class ToSteve:
    """Converts git trees and blobs into STEVE objects handed to ``sink``.

    ``read(raw id) -> (type_num, bytes)`` reads a git object whole (trees);
    ``open_blob(raw id) -> (type_num, size, chunks)`` streams one (blobs, in
    bounded memory whatever their size).  Results are memoised by git id, so
    shared subtrees are converted once.
    """

    def __init__(
        self,
        read: Callable[[bytes], tuple[int, bytes]],
        sink: Sink,
        open_blob: OpenBlob | None = None,
    ) -> None:
        self._read = read
        self._open = open_blob
        self._sink = sink
        self._done: dict[bytes, ObjectId] = {}

    def blob(self, sha: bytes) -> ObjectId:
        known = self._done.get(sha)
        if known is not None:
            return known
        if self._open is None:
            type_num, data = self._read(sha)
            stream: BinaryIO = io.BytesIO(data)
        else:
            type_num, _, chunks = self._open(sha)
            stream = chunk_stream(chunks)
        if type_num != BLOB:
            raise NotRepresentable(hexsha(sha).decode(), "expected a blob")
        oid = write_blob_stream(stream, self._sink)
        self._done[sha] = oid
        return oid

    def tree(self, sha: bytes, depth: int = 0) -> ObjectId:
        known = self._done.get(sha)
        if known is not None:
            return known
        where = f"git tree {hexsha(sha).decode()}"
        if depth > MAX_TREE_DEPTH:
            raise NotRepresentable(where, f"nested deeper than {MAX_TREE_DEPTH}")
        type_num, data = self._read(sha)
        if type_num != TREE:
            raise NotRepresentable(where, "expected a tree")
        git_tree = parse_git(GitTree, data, where)
        entries = []
        for item in git_tree.iteritems():
            name_raw, mode, child = item.path, item.mode, item.sha
            try:
                name = name_raw.decode("utf-8")
            except UnicodeDecodeError:
                raise NotRepresentable(where, f"entry name {name_raw!r} is not UTF-8") from None
            steve_mode = _STEVE_MODES.get(mode)
            if steve_mode is None:
                what = "a submodule (gitlink)" if mode == 0o160000 else f"mode {mode:o}"
                raise NotRepresentable(f"{where} entry {name!r}", f"{what} has no STEVE form")
            try:
                name = unescape_entry_name(name, steve_mode is Mode.SYMLINK)
            except NotRepresentable as exc:
                raise NotRepresentable(f"{where} entry {name!r}", exc.detail) from None
            try:
                check_entry_name(name)
            except MalformedObject as exc:
                raise NotRepresentable(f"{where} entry {name!r}", exc.detail) from None
            raw_child = bytes.fromhex(child.decode())
            if steve_mode is Mode.TREE:
                child_id = self.tree(raw_child, depth + 1)
            else:
                child_id = self.blob(raw_child)
            entries.append(TreeEntry(name, steve_mode, child_id))
        oid = self._sink(Tree.from_entries(entries))
        self._done[sha] = oid
        return oid

    def file(self, mode: int, sha: bytes) -> ObjectId:
        """A tree (mode 040000) or blob entry's STEVE id."""
        return self.tree(sha) if mode == DIR_MODE else self.blob(sha)
