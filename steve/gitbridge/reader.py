"""Reading git objects in bounded memory, whatever the repository claims.

dulwich reads an object whole, and believes what a pack says: a 400 MB blob
costs 400 MB (and more, in copies), a 1 MB zip bomb 1 GB, a delta whose
copies expand a small base, or a chain of thousands of deltas, as much as
they make.  :class:`ObjectReader` reads loose objects and pack entries
itself (dulwich only finds the entry, through the pack index):

- :meth:`ObjectReader.stream` inflates a whole (non-delta) object chunk by
  chunk (at most :data:`OUT_BLOCK` bytes at a time, never more than the
  size its header declares: one byte more is an error), so a blob of any
  size is hashed or imported in constant memory;
- :meth:`ObjectReader.read` reads an object whole, refusing one whose
  declared size is above :data:`MAX_INLINE` (trees, commits, tags,
  ``manifest.cbor`` are read this way);
- a delta-compressed object is rebuilt in memory, so it is bounded too: its
  chain may be at most :data:`MAX_DELTA_DEPTH` deep and every base, delta
  and result at most :data:`MAX_INLINE` bytes, checked from the headers
  before anything is inflated and again while the delta is applied.

Memory held: a few blocks, plus up to three :data:`MAX_INLINE` buffers while
a delta is applied.  Objects in alternates are read through dulwich.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dulwich.objects import ObjectID, RawObjectID
from dulwich.repo import Repo as GitRepo

from steve.errors import GitFailure, GitObjectTooLarge

__all__ = ["MAX_DELTA_DEPTH", "MAX_INLINE", "ObjectReader", "apply_delta", "chunk_stream"]

MAX_INLINE = 16 << 20  # bytes: the largest object read whole (or rebuilt from deltas)
MAX_DELTA_DEPTH = 4095  # git's own maximum (pack-objects --depth)
READ_BLOCK = 1 << 16  # compressed bytes read at a time
OUT_BLOCK = 1 << 20  # inflated bytes produced at a time
_OFS_DELTA, _REF_DELTA = 6, 7
_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
_READ_ERRORS = (OSError, ValueError, zlib.error, AssertionError, IndexError)


def _damaged(sha: bytes, why: str) -> GitFailure:
    return GitFailure("read object", f"{sha.hex()}: {why}")


def _inflate(
    f: BinaryIO,
    size: int,
    sha: bytes,
    d: Any = None,
    head: bytes = b"",
) -> Iterator[bytes]:
    """The zlib stream at ``f``'s position, exactly ``size`` bytes, in bounded pieces.

    ``d`` and ``head``: a decompressor already started on the stream (a loose
    object's header read) and the bytes it gave after that header.
    """
    if d is None:
        d = zlib.decompressobj()
    total = len(head)
    if total > size:
        raise _damaged(sha, f"inflates to more than its declared {size} bytes")
    if head:
        yield head
    while not d.eof:
        data = d.unconsumed_tail or f.read(READ_BLOCK)
        if not data:
            raise _damaged(sha, "the compressed data is truncated")
        try:
            out = d.decompress(data, OUT_BLOCK)
        except zlib.error as exc:
            raise _damaged(sha, f"bad compressed data: {exc}") from exc
        total += len(out)
        if total > size:
            raise _damaged(sha, f"inflates to more than its declared {size} bytes")
        if out:
            yield out
    if total != size:
        raise _damaged(sha, f"inflates to {total} bytes, not its declared {size}")


def _read_all(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


def apply_delta(base: bytes, delta: bytes, limit: int, sha: bytes = b"") -> bytes:
    """git's delta format applied to ``base``; the result's declared size must be at
    most ``limit``, and the copies may never write past it (checked per op)."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            c = delta[pos]
            pos += 1
            value |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return value
            if shift > 63:
                raise _damaged(sha, "a delta size does not end")

    try:
        src_size, dest_size = varint(), varint()
        if src_size != len(base):
            raise _damaged(sha, f"the delta expects a {src_size}-byte base, not {len(base)}")
        if dest_size > limit:
            raise GitObjectTooLarge(sha.hex(), dest_size, limit)
        out = bytearray()
        view = memoryview(base)
        end = len(delta)
        while pos < end:
            op = delta[pos]
            pos += 1
            if op & 0x80:
                offset = size = 0
                for i in range(4):
                    if op & (1 << i):
                        offset |= delta[pos] << (8 * i)
                        pos += 1
                for i in range(3):
                    if op & (1 << (4 + i)):
                        size |= delta[pos] << (8 * i)
                        pos += 1
                size = size or 0x10000
                if offset + size > len(base):
                    raise _damaged(sha, "a delta copies from beyond its base")
                chunk: bytes | memoryview = view[offset : offset + size]
            elif op:
                size = op
                if pos + size > end:
                    raise _damaged(sha, "a delta insert runs past its end")
                chunk = delta[pos : pos + size]
                pos += size
            else:
                raise _damaged(sha, "a delta holds the reserved op 0")
            if len(out) + size > dest_size:
                raise _damaged(sha, f"a delta writes more than its declared {dest_size} bytes")
            out += chunk
    except IndexError:
        raise _damaged(sha, "a delta ends in the middle of an op") from None
    if len(out) != dest_size:
        raise _damaged(sha, f"a delta writes {len(out)} bytes, not its declared {dest_size}")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A pack entry's header: type, declared size, where its data starts, its base."""

    path: str
    type: int
    size: int
    data: int  # offset of the compressed data
    base_offset: int | None = None  # OFS_DELTA: the base's offset in the same pack
    base_sha: bytes | None = None  # REF_DELTA: the base's id


def _entry(f: BinaryIO, path: str, offset: int, sha: bytes) -> _Entry:
    f.seek(offset)
    head = f.read(64)
    if not head:
        raise _damaged(sha, f"no pack entry at offset {offset}")
    pos = 0
    c = head[pos]
    pos += 1
    type_num = (c >> 4) & 7
    size = c & 0x0F
    shift = 4
    while c & 0x80:
        if pos >= len(head) or shift > 60:
            raise _damaged(sha, "a pack entry's size does not end")
        c = head[pos]
        pos += 1
        size |= (c & 0x7F) << shift
        shift += 7
    if type_num == _OFS_DELTA:
        c = head[pos]
        pos += 1
        back = c & 0x7F
        while c & 0x80:
            if pos >= len(head) or back > offset:
                raise _damaged(sha, "a delta's base offset does not end")
            c = head[pos]
            pos += 1
            back = ((back + 1) << 7) | (c & 0x7F)
        if back <= 0 or back > offset:
            raise _damaged(sha, "a delta's base is not before it in the pack")
        return _Entry(path, type_num, size, offset + pos, base_offset=offset - back)
    if type_num == _REF_DELTA:
        base = head[pos : pos + 20]
        if len(base) != 20:
            raise _damaged(sha, "a delta's base id is truncated")
        return _Entry(path, type_num, size, offset + pos + 20, base_sha=base)
    if type_num not in (1, 2, 3, 4):
        raise _damaged(sha, f"a pack entry of unknown type {type_num}")
    return _Entry(path, type_num, size, offset + pos)


def _delta_result_size(f: BinaryIO, entry: _Entry) -> int:
    """The result size a delta entry declares (its second varint), from its first bytes."""
    f.seek(entry.data)
    d = zlib.decompressobj()
    head = d.decompress(f.read(READ_BLOCK), 32)
    pos = 0
    size = 0
    for _ in range(2):  # base size, then result size
        size = shift = 0
        while True:
            c = head[pos]
            pos += 1
            size |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
    return size


class ObjectReader:
    """Reads the objects of one git repository (see the module docstring)."""

    def __init__(self, repo: GitRepo) -> None:
        store = repo.object_store
        try:
            self._root = Path(store.path)
            self._packs = [(p.index, str(p._data_path)) for p in store.packs]
            self._store = store
        except (*_READ_ERRORS, AttributeError) as exc:
            raise GitFailure("list objects", str(exc)) from exc

    # --- finding ------------------------------------------------------------------------

    def _loose(self, sha: bytes) -> Path | None:
        hexsha = sha.hex()
        path = self._root / hexsha[:2] / hexsha[2:]
        return path if path.is_file() else None

    def _find(self, sha: bytes) -> tuple[str, int] | None:
        for index, path in self._packs:
            try:
                offset = index.object_offset(RawObjectID(sha))
            except KeyError:
                continue
            except _READ_ERRORS as exc:
                raise _damaged(sha, f"pack index: {exc}") from exc
            if offset is not None:
                return path, offset
        return None

    # --- reading ------------------------------------------------------------------------

    def stream(self, sha: bytes) -> tuple[int, int, Iterator[bytes]]:
        """(type, size, chunks) of object ``sha``: whole objects inflated as they are
        consumed (any size), delta-compressed ones rebuilt within the bounds."""
        try:
            return self._stream(sha, 0)
        except _READ_ERRORS as exc:
            raise _damaged(sha, str(exc)) from exc

    def read(self, sha: bytes, limit: int = MAX_INLINE) -> tuple[int, bytes]:
        """(type, content) of object ``sha`` read whole; GitObjectTooLarge above ``limit``."""
        type_num, size, chunks = self.stream(sha)
        if size > limit:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            raise GitObjectTooLarge(sha.hex(), size, limit)
        try:
            return type_num, _read_all(chunks)
        except _READ_ERRORS as exc:
            raise _damaged(sha, str(exc)) from exc

    def info(self, sha: bytes) -> tuple[int, int]:
        """(type, size) of object ``sha`` from headers alone (a delta's chain is
        walked, not applied; only the first bytes of its data are inflated)."""
        try:
            return self._info(sha, 0)
        except _READ_ERRORS as exc:
            raise _damaged(sha, str(exc)) from exc

    def _info(self, sha: bytes, depth: int) -> tuple[int, int]:
        """Walk the delta chain iteratively (a REF_DELTA's base may be in another pack,
        or loop back: GitFailure), never recursively."""
        size: int | None = None  # the object's own size (a delta's result size)
        seen: set[tuple[str, int]] = set()
        n = depth
        current = sha
        while True:
            found = self._find(current)
            if found is None:
                type_num, whole, chunks = self._stream_unpacked(current)
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
                return type_num, whole if size is None else size
            path, offset = found
            with Path(path).open("rb") as f:
                entry = _entry(f, path, offset, sha)
                if entry.type not in (_OFS_DELTA, _REF_DELTA):
                    return entry.type, entry.size if size is None else size
                if size is None:
                    size = _delta_result_size(f, entry)
                while True:
                    n += 1
                    if n > MAX_DELTA_DEPTH:
                        raise GitObjectTooLarge(sha.hex(), n, MAX_DELTA_DEPTH, "deltas deep")
                    if (entry.path, entry.data) in seen:
                        raise _damaged(sha, "its delta chain loops back on itself")
                    seen.add((entry.path, entry.data))
                    if entry.base_offset is None:
                        assert entry.base_sha is not None
                        current = entry.base_sha
                        break
                    entry = _entry(f, path, entry.base_offset, sha)
                    if entry.type not in (_OFS_DELTA, _REF_DELTA):
                        return entry.type, size

    def _stream(self, sha: bytes, depth: int) -> tuple[int, int, Iterator[bytes]]:
        found = self._find(sha)  # packs first, as git looks: an export writes only packs
        if found is not None:
            return self._stream_packed(found[0], found[1], sha, depth)
        return self._stream_unpacked(sha)

    def _stream_unpacked(self, sha: bytes) -> tuple[int, int, Iterator[bytes]]:
        """A loose object, else one of an alternate (whole objects, never deltas)."""
        loose = self._loose(sha)
        if loose is not None:
            return self._stream_loose(loose, sha)
        return self._stream_alternate(sha)

    def _stream_alternate(self, sha: bytes) -> tuple[int, int, Iterator[bytes]]:
        hexsha = ObjectID(sha.hex().encode())
        for alt in self._store.alternates:
            if hexsha in alt:
                type_num, data = alt.get_raw(hexsha)
                return type_num, len(data), iter([data])
        raise GitFailure("read object", f"{sha.hex()} is missing")

    def _stream_loose(self, path: Path, sha: bytes) -> tuple[int, int, Iterator[bytes]]:
        f = path.open("rb")
        try:
            d = zlib.decompressobj()
            head = b""
            while b"\0" not in head:
                data = d.unconsumed_tail or f.read(READ_BLOCK)
                if not data or len(head) > 64:
                    raise _damaged(sha, "a loose object without a header")
                head += d.decompress(data, 64 - len(head) + 1)
            header, _, rest = head.partition(b"\0")
            kind, _, size_text = header.partition(b" ")
            if kind not in _TYPES or not size_text.isdigit():
                raise _damaged(sha, f"a loose object with the header {header[:40]!r}")
            size = int(size_text)
        except BaseException:
            f.close()
            raise

        def chunks() -> Iterator[bytes]:
            with f:
                yield from _inflate(f, size, sha, d, rest)

        return _TYPES[kind], size, chunks()

    def _stream_packed(
        self, path: str, offset: int, sha: bytes, depth: int
    ) -> tuple[int, int, Iterator[bytes]]:
        f = Path(path).open("rb")  # noqa: SIM115 (owned by the generator, or closed below)
        try:
            entry = _entry(f, path, offset, sha)
        except BaseException:
            f.close()
            raise
        if entry.type not in (_OFS_DELTA, _REF_DELTA):

            def chunks() -> Iterator[bytes]:
                with f:
                    f.seek(entry.data)
                    yield from _inflate(f, entry.size, sha)

            return entry.type, entry.size, chunks()
        with f:
            base_type, base = self._resolve_delta(f, path, entry, sha, depth)
        return base_type, len(base), iter([base])

    def _resolve_delta(
        self, f: BinaryIO, path: str, entry: _Entry, sha: bytes, depth: int
    ) -> tuple[int, bytes]:
        """Rebuild a delta-compressed object: walk the chain to its base checking the
        bounds from the headers alone (iteratively, following REF_DELTA bases into
        other packs; a chain that loops is damage), then apply the deltas, innermost
        first."""
        files: dict[str, BinaryIO] = {path: f}
        try:
            chain = [entry]
            seen = {(entry.path, entry.data)}
            while True:
                if len(chain) + depth > MAX_DELTA_DEPTH:
                    raise GitObjectTooLarge(
                        sha.hex(), len(chain) + depth, MAX_DELTA_DEPTH, "deltas deep"
                    )
                if entry.size > MAX_INLINE:
                    raise GitObjectTooLarge(sha.hex(), entry.size, MAX_INLINE)
                if entry.base_offset is not None:
                    entry = _entry(files[entry.path], entry.path, entry.base_offset, sha)
                else:
                    assert entry.base_sha is not None
                    found = self._find(entry.base_sha)
                    if found is None:
                        base_type, base_size, base_chunks = self._stream_unpacked(entry.base_sha)
                        if base_size > MAX_INLINE:
                            close = getattr(base_chunks, "close", None)
                            if close is not None:
                                close()
                            raise GitObjectTooLarge(sha.hex(), base_size, MAX_INLINE)
                        base = _read_all(base_chunks)
                        break
                    base_path, base_offset = found
                    if base_path not in files:
                        files[base_path] = Path(base_path).open("rb")  # noqa: SIM115
                    entry = _entry(files[base_path], base_path, base_offset, sha)
                if (entry.path, entry.data) in seen:
                    raise _damaged(sha, "its delta chain loops back on itself")
                seen.add((entry.path, entry.data))
                if entry.type in (_OFS_DELTA, _REF_DELTA):
                    chain.append(entry)
                    continue
                if entry.size > MAX_INLINE:
                    raise GitObjectTooLarge(sha.hex(), entry.size, MAX_INLINE)
                fb = files[entry.path]
                fb.seek(entry.data)
                base_type, base = entry.type, _read_all(_inflate(fb, entry.size, sha))
                break
            for link in reversed(chain):
                fl = files[link.path]
                fl.seek(link.data)
                delta = _read_all(_inflate(fl, link.size, sha))
                base = apply_delta(base, delta, MAX_INLINE, sha)
                del delta
            return base_type, base
        finally:
            for other, handle in files.items():
                if other != path:
                    handle.close()


class _ChunkIO(io.RawIOBase):
    """A readable binary stream over an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._left = memoryview(nxt)
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def chunk_stream(chunks: Iterator[bytes]) -> BinaryIO:
    """``chunks`` as a file object (what :func:`steve.repo.write_blob_stream` reads)."""
    return io.BufferedReader(_ChunkIO(chunks), buffer_size=OUT_BLOCK)


OpenBlob = Callable[[bytes], tuple[int, int, Iterator[bytes]]]
