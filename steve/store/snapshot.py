"""Consistent copies of the two keyed databases while writers keep working (``steve backup``).

The copy is made at the file level (``copy_file_range`` through
``shutil.copyfile``: as fast as ``cp``), and it stays encrypted with the
repository key: no page is decrypted.  Consistency comes from SQLite's WAL
rules, not from stopping writers:

* a read transaction pins a *snapshot*: the main file plus the WAL frames up
  to the snapshot's end.  While it is open, no checkpoint copies a later
  frame into the main file and the WAL is never restarted (restarting needs
  every reader to be past the WAL), so the frames of the snapshot stay in
  place; a checkpoint may still copy frames *of* the snapshot into the main
  file while it is read, but those pages are then also in the WAL.
* so the main file is copied first, and then the WAL up to the snapshot's last
  frame: its count (``mxFrame``) and how many frames are already in the main
  file (``nBackfill``) are read from the WAL index (``-shm``, which holds no
  content) while nothing can commit.  Opening the copy runs SQLite's WAL
  recovery over exactly those frames, so the copy is the snapshot, and it is
  then checkpointed into one file.  When every frame of the snapshot is
  already in the main file, no WAL is copied: the reader then reads the main
  file only, and no checkpoint may write to it while that reader lasts.

The two databases are pinned together: both snapshots (and both WAL marks)
are taken while this process holds the write locks of ``steve.db`` and
``events.db`` for a moment, so the pair is one instant: every event in the
``events.db`` copy was drained from a change in the ``steve.db`` copy, and
every change in the ``steve.db`` copy has its event in the ``events.db`` copy
or still in the copied outbox.  Writers wait only for that moment
(milliseconds), not for the copy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlcipher3 import dbapi2 as sqlite

from steve.errors import StorageError
from steve.store.sqlcipher import FILE_MODE, KeyedConnection, connect

MAIN_DB = "steve.db"
EVENTS_DB = "events.db"


def fsync_path(path: Path, *, directory: bool = False) -> None:
    """fsync a file, or a directory's entries."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_private(src: Path, dst: Path, size: int | None = None) -> int:
    """Copy ``src`` (its first ``size`` bytes; None: all of it) to the new file ``dst``,
    mode 0600 from its creation, and fsync it; returns the bytes copied.

    The copy stays in the kernel (``copy_file_range``, what ``cp`` uses; plain
    reads and writes where a file system refuses it)."""
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        inp = os.open(src, os.O_RDONLY)
        try:
            left = os.fstat(inp).st_size if size is None else size
            copied = 0
            while left > 0:
                try:
                    n = os.copy_file_range(inp, out, min(left, _COPY_BLOCK))
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    n = _copy_plain(inp, out, min(left, _COPY_BLOCK))
                if n == 0:  # the source ended early (a WAL being truncated)
                    break
                copied += n
                left -= n
        finally:
            os.close(inp)
        os.fsync(out)
    finally:
        os.close(out)
    return copied


_COPY_BLOCK = 1 << 30


def _copy_plain(inp: int, out: int, n: int) -> int:
    block = os.read(inp, min(n, 1 << 20))
    view = memoryview(block)
    while view:
        view = view[os.write(out, view) :]
    return len(block)


@contextmanager
def _read_snapshot(db: KeyedConnection) -> Iterator[None]:
    """Hold a read transaction (a WAL snapshot) on ``db`` for the block."""
    with db.errors():
        db.conn.execute("BEGIN")
        db.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    try:
        yield
    finally:
        with contextlib.suppress(sqlite.Error):
            db.conn.execute("ROLLBACK")


_WAL_HEADER = 32
_FRAME_HEADER = 24


def wal_mark(path: Path) -> tuple[int, int, int]:
    """(mxFrame, nBackfill, page size) from the WAL index of the database at ``path``:
    the frames committed to its WAL and how many of them a checkpoint already
    copied into the main file ((0, 0, 0) without a WAL index).  Meaningful while
    the caller holds the database's write lock (no commit moves mxFrame)."""
    try:
        with Path(f"{path}-shm").open("rb") as fh:
            head = fh.read(100)
    except FileNotFoundError:
        return 0, 0, 0
    if len(head) < 100 or head[0:48] != head[48:96]:  # two copies: equal when settled
        raise StorageError(f"{path}-shm: unreadable WAL index header")
    mx_frame = struct.unpack_from("=I", head, 16)[0]
    page = struct.unpack_from("=H", head, 14)[0]
    backfilled = struct.unpack_from("=I", head, 96)[0]
    return mx_frame, backfilled, (65536 if page == 1 else page)


def _copy_db(src: Path, dst: Path, mark: tuple[int, int, int]) -> None:
    copy_private(src, dst)
    frames, backfilled, page = mark
    if frames > backfilled:  # after the main file: see the module docstring
        size = _WAL_HEADER + frames * (_FRAME_HEADER + page)
        copy_private(Path(f"{src}-wal"), Path(f"{dst}-wal"), size)


def fold_wal(path: Path, key: bytes, *, busy_timeout: float) -> int:
    """Open the copied database ``path`` (WAL recovery), checkpoint its WAL into the
    main file, close it cleanly (no ``-wal``/``-shm`` left) and fsync it; returns
    its size."""
    db = connect(path, key, busy_timeout=busy_timeout, create=False)
    try:
        db.check_key()
        with db.errors():
            db.conn.execute("PRAGMA journal_mode = WAL")
        db.checkpoint()
    finally:
        db.close()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    fsync_path(path)
    return path.stat().st_size


@dataclass(frozen=True, slots=True)
class Snapshot:
    files: dict[str, int]
    """Each database file copied (``steve.db``, ``events.db``) and its size in bytes."""


ATTEMPTS = 3
"""Copies tried before a damaged one is reported (see :func:`snapshot_databases`)."""


def snapshot_databases(
    steve_dir: Path, dest: Path, key: bytes, *, busy_timeout: float = 30.0
) -> Snapshot:
    """Copy ``steve.db`` and (if present) ``events.db`` of ``steve_dir`` into the
    existing directory ``dest`` as one consistent pair (module docstring), each
    folded into a single file.

    A copy that SQLite finds damaged when it is folded is thrown away and taken
    again, up to :data:`ATTEMPTS` times: under a heavy write flood on a loaded
    machine a copy was seen to fold as "malformed" (a race between the file copy
    and a concurrent checkpoint that the module docstring's argument misses; the
    cause is still open).  Nothing damaged is ever kept: the fold opens and
    checkpoints every page chain it needs, and restore runs a full fsck."""
    names = [n for n in (MAIN_DB, EVENTS_DB) if (steve_dir / n).is_file()]
    if MAIN_DB not in names:
        from steve.errors import CannotOpenDatabase

        raise CannotOpenDatabase(str(steve_dir / MAIN_DB), "no such file")
    from steve.errors import CorruptDatabase

    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _snapshot_once(steve_dir, dest, key, names, busy_timeout)
        except CorruptDatabase:
            if attempt == ATTEMPTS:
                raise
            for name in names:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        (dest / f"{name}{suffix}").unlink()
    raise AssertionError("unreachable")  # pragma: no cover


def _snapshot_once(
    steve_dir: Path, dest: Path, key: bytes, names: list[str], busy_timeout: float
) -> Snapshot:
    conns: list[KeyedConnection] = []
    try:
        writers = {
            n: connect(steve_dir / n, key, busy_timeout=busy_timeout, create=False) for n in names
        }
        conns.extend(writers.values())
        readers = {
            n: connect(steve_dir / n, key, busy_timeout=busy_timeout, create=False) for n in names
        }
        conns.extend(readers.values())
        for db in conns:
            db.check_key()
            with db.errors():
                db.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        with contextlib.ExitStack() as pinned:
            with contextlib.ExitStack() as locked:  # a moment in which nothing commits
                for name in names:  # steve.db first, as a drain takes them one by one
                    locked.enter_context(writers[name].transaction())
                for name in names:
                    pinned.enter_context(_read_snapshot(readers[name]))
                marks = {name: wal_mark(steve_dir / name) for name in names}
            for name in names:
                _copy_db(steve_dir / name, dest / name, marks[name])
    finally:
        for db in conns:
            db.close()
    files = {name: fold_wal(dest / name, key, busy_timeout=busy_timeout) for name in names}
    fsync_path(dest, directory=True)
    return Snapshot(files)


@dataclass(frozen=True, slots=True)
class DatabaseSummary:
    """What a ``steve.db`` holds, in numbers and ref heads (no content)."""

    schema_version: int
    counts: dict[str, int]
    refs: dict[str, str]
    """Each ref: its target's hex id, or ``ref: NAME`` for a symbolic ref."""


SUMMARY_TABLES: Sequence[str] = (
    "objects",
    "refs",
    "reflog",
    "runs",
    "transitions",
    "manifests",
    "derived",
    "outbox",
)


def summarize(path: Path, key: bytes, *, busy_timeout: float = 30.0) -> DatabaseSummary:
    """Count the rows of every table of the ``steve.db`` at ``path`` and list its refs."""
    db = connect(path, key, busy_timeout=busy_timeout, create=False)
    try:
        db.check_key()
        with db.errors(), _read_snapshot(db):
            conn = db.conn
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            counts = {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in SUMMARY_TABLES
            }
            refs = {
                str(name): (f"ref: {symbolic}" if symbolic is not None else bytes(target).hex())
                for name, target, symbolic in conn.execute(
                    "SELECT name, target, symbolic FROM refs ORDER BY name"
                )
            }
    finally:
        db.close()
    version = row[0] if row is not None and type(row[0]) is int else -1
    return DatabaseSummary(version, counts, refs)


__all__ = [
    "EVENTS_DB",
    "MAIN_DB",
    "DatabaseSummary",
    "Snapshot",
    "copy_private",
    "fold_wal",
    "fsync_path",
    "snapshot_databases",
    "summarize",
]
