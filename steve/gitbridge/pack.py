"""One pack per export, written as objects come, in bounded memory.

Objects are appended to a temporary ``objects/pack/tmp-steve-PID-*.pack`` as the
export produces them (large blobs streamed chunk by chunk through zlib),
each only if neither the target nor this pack has it yet: deflated at zlib
level 1, or, under :data:`STORED` bytes, stored in one uncompressed deflate
block (:func:`stored`); no deltas.  :meth:`finish` writes the real object
count into the header, appends the pack checksum, writes the version 2 index
(:func:`write_index`, the bytes of dulwich's ``write_pack_index``) and
renames both into place (``.pack`` first: git ignores a pack without
its index).  :meth:`abort` removes the temporary file, so a refused or
failed export leaves nothing behind; the temporary pack of a killed export
(its process gone) is removed by the next export (:func:`remove_stale_packs`).
Memory held: 20-byte ids plus one index entry per object, never object contents.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import tempfile
import time
import zlib
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from steve.errors import GitFailure

if TYPE_CHECKING:
    from steve.progress import Progress

COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
TYPE_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob", TAG: b"tag"}
COMPRESSION = 1  # zlib level: export speed over pack size (git gc repacks anyway)
SMALL = 4096  # objects up to this size use a 4 KiB zlib window: 2-3x faster to set up
SMALL_WBITS = 12
STORED = 128  # objects shorter than this are stored, not deflated (see stored())
_READ = 1 << 20
_INDEX_RUN = 4096  # ids joined per write of the pack index
TMP_PREFIX = "tmp-steve-"  # + pid + "-" + random: the temporary pack of a running export
STALE_AFTER = 3600  # seconds: a temporary pack without a pid older than this is removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def remove_stale_packs(pack_dir: Path, *, now: float | None = None) -> list[str]:
    """Remove the temporary pack (and index) of an export that was killed: a
    ``tmp-steve-PID-*`` file whose process is gone, or, without a pid in its name,
    older than :data:`STALE_AFTER` seconds.  Returns the names removed."""
    removed: list[str] = []
    try:
        candidates = [p for p in pack_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
    except OSError:
        return removed
    when = time.time() if now is None else now
    for path in candidates:
        pid_text = path.name[len(TMP_PREFIX) :].split("-", 1)[0]
        try:
            if pid_text.isdigit():
                stale = not _alive(int(pid_text))
            else:
                stale = when - path.stat().st_mtime > STALE_AFTER
            if stale:
                path.unlink()
                removed.append(path.name)
        except (OSError, ValueError):
            continue
    return removed


_HEADS = {t: name + b" %d\0" for t, name in TYPE_NAMES.items()}


def object_header(type_num: int, size: int) -> bytes:
    """The loose-object header git hashes before the content."""
    return _HEADS[type_num] % size


def git_sha(type_num: int, data: bytes) -> bytes:
    """The raw 20-byte SHA-1 git gives ``data`` as an object of ``type_num``."""
    h = hashlib.sha1(_HEADS[type_num] % len(data))
    h.update(data)
    return h.digest()


def stored(data: bytes) -> bytes:
    """``data`` as a zlib stream of one stored (not compressed) deflate block: what
    ``zlib.compress(data, 0)`` gives for up to 16 KiB (tests compare them), built
    without setting up a deflate stream.  For the small objects an export writes
    most of (trees of a few entries, whose 20-byte ids do not compress) deflate
    saves a few bytes at most and its set-up costs more than the rest of the work."""
    n = len(data)
    if n > 0xFFFF:
        raise ValueError("a stored deflate block holds at most 65535 bytes")
    return (
        b"\x78\x01\x01"
        + n.to_bytes(2, "little")
        + (n ^ 0xFFFF).to_bytes(2, "little")
        + data
        + zlib.adler32(data).to_bytes(4, "big")
    )


def write_index(f: BinaryIO, entries: list[tuple[bytes, int, int]], pack_checksum: bytes) -> bytes:
    """Write the version 2 index of a pack: ``entries`` are (raw id, offset, CRC-32)
    sorted by id; the bytes :func:`dulwich.pack.write_pack_index` writes (tests
    compare them), built in a few large writes.  Returns the index's checksum."""
    fanout = array("I", bytes(4 * 256))
    crcs = array("I")
    offsets = array("I")
    large: list[int] = []
    for sha, offset, crc in entries:
        fanout[sha[0]] += 1
        crcs.append(crc)
        if offset < 1 << 31:
            offsets.append(offset)
        else:
            offsets.append((1 << 31) + len(large))
            large.append(offset)
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    if sys.byteorder == "little":
        for table in (fanout, crcs, offsets):
            table.byteswap()
    # the ids joined a few thousand at a time: joining n byte strings at once
    # allocates n 80-byte buffer views (8 MB for 100,000 objects)
    ids = (
        b"".join([e[0] for e in entries[i : i + _INDEX_RUN]])
        for i in range(0, len(entries), _INDEX_RUN)
    )
    h = hashlib.sha1()
    for piece in (
        b"\377tOc\0\0\0\2" + fanout.tobytes(),
        *ids,
        crcs.tobytes(),
        offsets.tobytes(),
        b"".join([struct.pack(">Q", off) for off in large]),
        pack_checksum,
    ):
        h.update(piece)
        f.write(piece)
    checksum = h.digest()
    f.write(checksum)
    return checksum


def entry_header(type_num: int, size: int) -> bytes:
    """A pack entry's header: its type and inflated size (git's size varint)."""
    out = bytearray()
    c = (type_num << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(c | 0x80)
        c = size & 0x7F
        size >>= 7
    out.append(c)
    return bytes(out)


class PackWriter:
    """Collects new objects into one pack in ``pack_dir``."""

    def __init__(self, pack_dir: Path, has: Callable[[bytes], bool] | None) -> None:
        """``has(raw id)``: whether the target holds an object (None: it holds none)."""
        self._dir = pack_dir
        self._has = has
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._entries: list[tuple[bytes, int, int]] = []
        self._seen: set[bytes] = set()
        self._offset = 0
        self.name: str | None = None
        self.progress: Progress | None = None  # one unit per object written

    @property
    def count(self) -> int:
        return len(self._entries)

    def has(self, sha: bytes) -> bool:
        """Whether the target or this pack holds the object ``sha`` (raw)."""
        return sha in self._seen or (self._has is not None and self._has(sha))

    def is_new(self, sha: bytes) -> bool:
        """Whether this pack wrote ``sha`` (not the target before the export)."""
        return sha in self._seen

    def _open(self) -> BinaryIO:
        if self._file is None:
            try:
                self._dir.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(
                    prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=".pack", dir=self._dir
                )
            except OSError as exc:
                raise GitFailure("create pack", f"{self._dir}: {exc.strerror}") from exc
            self._file = os.fdopen(fd, "w+b")
            self._path = Path(name)
            self._file.write(b"PACK" + struct.pack(">LL", 2, 0))
            self._offset = 12
        return self._file

    def add(self, type_num: int, data: bytes) -> bytes:
        """Add one object held in memory; returns its raw id."""
        size = len(data)
        sha = hashlib.sha1(_HEADS[type_num] % size + data).digest()
        if sha in self._seen or (self._has is not None and self._has(sha)):
            return sha
        f = self._file or self._open()
        if 16 <= size < 2048:  # the commonest pack entry header: two bytes
            head = bytes(((type_num << 4) | (size & 0x0F) | 0x80, size >> 4))
        else:
            head = entry_header(type_num, size)
        if size < STORED:
            entry = head + stored(data)
        else:
            wbits = SMALL_WBITS if size <= SMALL else zlib.MAX_WBITS
            entry = head + zlib.compress(data, COMPRESSION, wbits)
        try:
            f.write(entry)
        except OSError as exc:
            raise GitFailure("write pack", str(exc)) from exc
        self._entries.append((sha, self._offset, zlib.crc32(entry)))
        if self.progress is not None:
            self.progress.advance(1)
        self._seen.add(sha)
        self._offset += len(entry)
        return sha

    def add_stream(self, type_num: int, size: int, chunks: Iterable[bytes]) -> bytes:
        """Add one object of ``size`` bytes given in chunks (a large blob), streamed:
        written while hashed, and cut off again if the pack or target has it."""
        f = self._open()
        start = self._offset
        h = hashlib.sha1(object_header(type_num, size))
        total = 0

        def hashed() -> Iterable[bytes]:
            nonlocal total
            for chunk in chunks:
                h.update(chunk)
                total += len(chunk)
                yield chunk

        crc = self._write_entry(f, type_num, size, hashed())
        if total != size:
            raise GitFailure("write pack", f"object size {total} differs from {size}")
        sha = h.digest()
        if self.has(sha):
            self._truncate(start)
            return sha
        self._entries.append((sha, start, crc))
        if self.progress is not None:
            self.progress.advance(1)
        self._seen.add(sha)
        return sha

    def _truncate(self, offset: int) -> None:
        assert self._file is not None
        try:
            self._file.seek(offset)
            self._file.truncate()
        except OSError as exc:
            raise GitFailure("write pack", str(exc)) from exc
        self._offset = offset

    def _write_entry(self, f: BinaryIO, type_num: int, size: int, chunks: Iterable[bytes]) -> int:
        header = entry_header(type_num, size)
        comp = zlib.compressobj(COMPRESSION)
        try:
            f.write(header)
            crc = zlib.crc32(header)
            written = len(header)
            for chunk in chunks:
                out = comp.compress(chunk)
                if out:
                    f.write(out)
                    crc = zlib.crc32(out, crc)
                    written += len(out)
            out = comp.flush()
            f.write(out)
        except OSError as exc:
            raise GitFailure("write pack", str(exc)) from exc
        crc = zlib.crc32(out, crc)
        self._offset += written + len(out)
        return crc & 0xFFFFFFFF

    def finish(self) -> str | None:
        """Complete the pack and move it into place; returns its name (None: nothing new)."""
        f, path = self._file, self._path
        if f is None or path is None:
            return None
        if not self._entries:
            self.abort()
            return None
        try:
            f.seek(8)
            f.write(struct.pack(">L", len(self._entries)))
            f.seek(0)
            h = hashlib.sha1()
            while block := f.read(_READ):
                h.update(block)
            checksum = h.digest()
            f.seek(0, os.SEEK_END)
            f.write(checksum)
            f.flush()
            os.fsync(f.fileno())
            f.close()
            self._file = None
            base = self._dir / f"pack-{checksum.hex()}"
            self._entries.sort()
            idx_tmp = path.with_suffix(".idx")
            with idx_tmp.open("wb") as fi:
                write_index(fi, self._entries, checksum)
                fi.flush()
                os.fsync(fi.fileno())
            path.chmod(0o444)
            idx_tmp.chmod(0o444)
            path.rename(base.with_suffix(".pack"))
            idx_tmp.rename(base.with_suffix(".idx"))
        except OSError as exc:
            self.abort()
            raise GitFailure("write pack", str(exc)) from exc
        self._path = None
        self.name = base.name
        return self.name

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            for p in (self._path, self._path.with_suffix(".idx")):
                p.unlink(missing_ok=True)
            self._path = None

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or self._file is not None:
            self.abort()
