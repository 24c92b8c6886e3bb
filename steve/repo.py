"""The repository: the one object library users hold.

    >>> import steve
    >>> repo = steve.Repo.init(path, passphrase="correct horse")
    >>> oid = repo.write_blob(b"hello")
    >>> repo.update_ref("refs/heads/main", oid, old=None, message="first")

A repository is a ``.steve/`` directory holding ``steve.db`` (SQLCipher)
and a plain ``config``.  Plumbing operations live here as typed methods;
the CLI is a thin shell over them.  Maintenance (fsck, gc) lives in
:mod:`steve.store.maint` and is exposed through :meth:`Repo.fsck` / :meth:`Repo.gc`.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from steve.config import RepoConfig
from steve.errors import (
    CorruptObject,
    FileNameNotUtf8,
    InvalidInput,
    MalformedObject,
    NotARepository,
    ObjectNotFound,
    RepositoryExists,
    SteveError,
    StorageError,
    TreeTooDeep,
    WrongKey,
    WrongObjectType,
)
from steve.objects import cbor
from steve.objects.model import (
    CHUNK_SIZE,
    Blob,
    ChunkedBlob,
    Manifest,
    Mode,
    ObjectType,
    Person,
    StoredObject,
    Tag,
    Tree,
    TreeEntry,
    decode_object_trusted,
    encode_blob,
    hash_object,
    object_size,
)
from steve.objects.oid import ObjectId, digest
from steve.objects.signatures import Signer, sign_bytes
from steve.objects.summary import HeadRow, ManifestHead
from steve.record import MutableRecord, Record
from steve.refs.names import HEAD, check_branch_or_tag_name, check_ref_name
from steve.refs.refs import Identity, Ref, RefStore, local_offset_minutes
from steve.refs.revparse import Resolved, resolve
from steve.store.base import (
    ANY,
    Backend,
    ErrorCount,
    ObjectInfo,
    ObjectRow,
    OutboxEvent,
    ReflogEntry,
    RefRecord,
    RunRecord,
    SecretRecord,
    TextHit,
    Transaction,
    TransitionRecord,
    Unset,
    text_terms,
)
from steve.store.kdf import KdfParams, derive_key, key_check, key_matches
from steve.store.lock import DirLock
from steve.store.sqlcipher import secure_directory, secure_file
from steve.store.sqlite import SqlCipherBackend

if TYPE_CHECKING:
    from steve.ignore import IgnoreRules
    from steve.progress import Progress
    from steve.store.maint import FsckProblem, FsckReport, GcReport
    from steve.store.rekey import RekeyReport

STEVE_DIR = ".steve"
DB_NAME = "steve.db"
CONFIG_NAME = "config"
DEFAULT_IDENTITY = Identity("steve", "steve@localhost")
DEFAULT_BRANCH = "refs/heads/main"
MAX_TREE_DEPTH = 256  # directory levels below the root write-tree accepts

# A batch is committed when it holds this many bytes or objects.
BATCH_BYTES = 8 << 20
BATCH_OBJECTS = 4096

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

REKEY_STAGING = "rekey"
"""steve.store.rekey.STAGING, named here so that opening a repository does not import
the rekey machinery (start-up time; tests/store/test_rekey.py checks they agree)."""


def lock_repository(steve_dir: Path, timeout: float) -> DirLock:
    """The shared repository lock of ``steve_dir``, after finishing or undoing a rekey
    that a crash interrupted (:func:`steve.store.rekey.recover`)."""
    lock = DirLock.acquire(steve_dir, exclusive=False, timeout=timeout)
    if not (steve_dir / REKEY_STAGING).exists():
        return lock
    from steve.store import rekey  # rare: imported only when a rekey was interrupted

    lock.release()
    with DirLock.acquire(steve_dir, exclusive=True, timeout=timeout):
        try:
            rekey.recover(steve_dir)
        except OSError as exc:
            raise StorageError(
                f"cannot finish the rekey interrupted in {steve_dir}: {exc}"
            ) from exc
    return DirLock.acquire(steve_dir, exclusive=False, timeout=timeout)


def find_repository(start: Path) -> Path:
    """The directory holding ``.steve/`` at or above ``start`` (like git's discovery)."""
    here = start.resolve()
    for candidate in (here, *here.parents):
        if (candidate / STEVE_DIR / CONFIG_NAME).is_file():
            return candidate
    raise NotARepository(str(start))


FIRST_BATCH_BYTES = 3 << 20
"""While the repository is still opening (its key being derived: Argon2id holds 64 MiB
then), the first batch is committed at this many bytes rather than BATCH_BYTES, so
what waits in memory for the key stays small."""


class BatchWriter:
    """Buffers object writes and commits them in bounded batches.

    Objects are written children first (chunks before their chunked blob,
    entries before their tree), so a crash between two batches leaves at most
    unreachable objects, never a dangling reference.

    ``repo`` may be a callable returning the repository (a repository still
    opening on a background thread, :meth:`Repo.open_background`): it is
    called at the first commit, so the objects of the first batch are read,
    hashed and encoded while the key is derived.

    With ``overlap`` a full batch is inserted on the calling thread and its
    ``COMMIT`` (page encryption, WAL write, fsync: SQLite releases the GIL for
    all of it) runs on a background thread while the caller prepares the next
    batch; batches still commit one at a time, in order.  Each add is
    numbered (:attr:`added`); :meth:`durable` says how many of them are
    committed, so a caller can report an object only once it is.  Finish
    with :meth:`flush` or :meth:`discard` (or use the writer as a context
    manager) before closing the repository: both wait for a running commit.
    """

    def __init__(self, repo: Repo | Callable[[], Repo], *, overlap: bool = False) -> None:
        self._repo: Repo | None = repo if isinstance(repo, Repo) else None
        self._opener: Callable[[], Repo] | None = None if isinstance(repo, Repo) else repo
        self._overlap = overlap
        # keyed by the id's bytes (a bytes hash is cached; an ObjectId's is not)
        self._pending: dict[bytes, tuple[ObjectId, ObjectType, int, bytes]] = {}
        self._events: list[tuple[str, Mapping[str, object], str | None]] = []
        self._bytes = 0
        self._commit: _BackgroundCommit | None = None
        self._durable = 0
        self.added = 0
        self.written = 0

    @property
    def repo(self) -> Repo:
        """The repository (waits for it when it is still opening)."""
        if self._repo is None:
            assert self._opener is not None
            self._repo = self._opener()
        return self._repo

    def add(self, obj: StoredObject) -> ObjectId:
        if type(obj) is Blob and type(obj.data) is bytes:  # the commonest object, fast
            return self.add_blob(obj.data)
        oid, data = hash_object(obj)
        self.add_encoded(oid, obj.type, object_size(obj), data)
        return oid

    def add_blob(self, content: bytes) -> ObjectId:
        """Add the inline blob of ``content`` (at most CHUNK_SIZE bytes)."""
        data = encode_blob(content)
        oid = ObjectId.trusted(digest(data))
        self.add_encoded(oid, ObjectType.BLOB, len(content), data)
        return oid

    def add_encoded(self, oid: ObjectId, type_: ObjectType, size: int, data: bytes) -> None:
        self.added += 1
        key = oid.raw
        if key in self._pending:
            return
        self._pending[key] = (oid, type_, size, data)
        self._bytes += len(data)
        limit = BATCH_BYTES if self._repo is not None else min(BATCH_BYTES, FIRST_BATCH_BYTES)
        if self._bytes >= limit or len(self._pending) >= BATCH_OBJECTS:
            self._seal()

    def emit(self, type: str, payload: Mapping[str, object], run_id: str | None = None) -> None:
        """Record an event in the transaction that commits the objects added so far
        (see :meth:`RepoTransaction.emit`)."""
        self._events.append((type, payload, run_id))

    @property
    def pending(self) -> int:
        """Objects added but not yet committed (0: everything added so far is durable)."""
        if self._commit is not None and not self._commit.running():
            self._finish()
        return len(self._pending) + (self._commit.rows if self._commit is not None else 0)

    def durable(self) -> int:
        """How many adds (counted by :attr:`added`, in order) are committed: the objects
        of the first ``durable()`` adds are in the database.  Collects a background
        commit that has ended (and raises its error)."""
        if self._commit is not None and not self._commit.running():
            self._finish()
        return self._durable

    def add_stream(self, stream: BinaryIO) -> ObjectId:
        """Store a blob read from ``stream`` in bounded memory (chunked if large)."""
        return write_blob_stream(stream, self.add)

    def _rows(self) -> list[tuple[ObjectId, ObjectType, int, bytes]]:
        return list(self._pending.values())

    def _seal(self) -> None:
        """A full batch: commit it, in the background when overlapping."""
        self._finish()
        repo = self.repo
        if not (self._overlap and not self._events and isinstance(repo.backend, SqlCipherBackend)):
            self.flush()
            return
        rows = self._rows()
        upto = self.added
        with ExitStack() as stack:
            tx = stack.enter_context(repo.transaction())
            tx.put_many(rows)
            held = stack.pop_all()  # BEGIN and the inserts done; COMMIT goes to the thread
        self._pending.clear()
        self._bytes = 0
        self._commit = _BackgroundCommit(held, len(rows), upto)

    def _finish(self) -> None:
        """Wait for the background commit, if any; raise its error."""
        commit, self._commit = self._commit, None
        if commit is None:
            return
        commit.wait()
        self.written += commit.rows
        self._durable = commit.upto

    def flush(self) -> None:
        """Commit everything added so far (waits for a background commit first)."""
        self._finish()
        if not self._pending and not self._events:
            self._durable = self.added
            return
        rows = self._rows()
        with self.repo.transaction() as tx:
            tx.put_many(rows)
            for type_, payload, run_id in self._events:
                tx.emit(type_, payload, run_id)
        self.written += len(rows)
        self._durable = self.added
        self._pending.clear()
        self._events.clear()
        self._bytes = 0

    def discard(self) -> None:
        """Drop what is not committed yet; a background commit already running is
        waited for (it completes or fails on its own; its error is not raised)."""
        self._pending.clear()
        self._events.clear()
        self._bytes = 0
        commit, self._commit = self._commit, None
        if commit is not None:
            with suppress(BaseException):
                commit.wait()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.discard()


class _BackgroundCommit:
    """The ``COMMIT`` of one batch (``stack`` holds its open transaction) on a thread.

    Not a daemon thread: a commit that has begun is always allowed to end, even
    when the interpreter is exiting."""

    def __init__(self, stack: ExitStack, rows: int, upto: int) -> None:
        self.rows = rows
        self.upto = upto
        self._error: BaseException | None = None
        self._ended = False  # set last by the thread: cheaper to poll than is_alive()
        self._thread = threading.Thread(
            target=self._run, args=(stack,), name="steve-commit", daemon=False
        )
        self._thread.start()

    def _run(self, stack: ExitStack) -> None:
        try:
            stack.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self._error = exc
        finally:
            self._ended = True

    def running(self) -> bool:
        return not self._ended

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _read_full(stream: BinaryIO, n: int) -> bytes:
    parts: list[bytes] = []
    remaining = n
    while remaining:
        piece = stream.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return b"".join(parts)


def write_blob_stream(stream: BinaryIO, sink: Callable[[StoredObject], ObjectId]) -> ObjectId:
    """Cut ``stream`` into CHUNK_SIZE chunks, hand every object to ``sink``, return the blob id.

    Holds at most two chunks in memory.  ``sink`` may store (BatchWriter.add)
    or only hash the objects.
    """
    first = _read_full(stream, CHUNK_SIZE)
    nxt = _read_full(stream, CHUNK_SIZE) if len(first) == CHUNK_SIZE else b""
    if not nxt:
        return sink(Blob(first))
    chunks: list[tuple[ObjectId, int]] = []
    size = 0
    current = first
    while current:
        chunks.append((sink(Blob(current)), len(current)))
        size += len(current)
        current, nxt = nxt, (_read_full(stream, CHUNK_SIZE) if nxt else b"")
    return sink(ChunkedBlob(size, tuple(chunks)))


class _Dir(MutableRecord):
    """A directory being snapshotted: its sorted children and the entries so far."""

    __match_args__ = ("path", "rel", "rules", "children", "entries", "next")
    path: Path
    rel: str  # from the snapshot's root: "" or "a/b/"
    rules: IgnoreRules
    children: list[os.DirEntry[str]]
    entries: list[TreeEntry]
    next: int

    def __init__(
        self,
        path: Path,
        rel: str,
        rules: IgnoreRules,
        children: list[os.DirEntry[str]],
        entries: list[TreeEntry],
        next: int = 0,
    ) -> None:
        self.path = path
        self.rel = rel
        self.rules = rules
        self.children = children
        self.entries = entries
        self.next = next


def _open_dir(path: Path, rel: str, rules: IgnoreRules) -> _Dir:
    try:
        with os.scandir(path) as it:
            children = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise InvalidInput("cannot read directory", f"{path}: {exc}") from exc
    return _Dir(path, rel, rules.entering(path, rel), children, [])


def _snapshot(w: BatchWriter, root: Path) -> ObjectId:
    """Write the tree of ``root`` (see :meth:`Repo.write_tree`): children first, with
    an explicit stack of open directories, so any depth up to the limit works."""
    from steve.ignore import ALWAYS_SKIPPED, IgnoreRules  # write-tree only (start-up time)

    stack = [_open_dir(root, "", IgnoreRules())]
    while True:
        top = stack[-1]
        if top.next == len(top.children):
            oid = w.add(Tree.from_entries(top.entries))
            stack.pop()
            if not stack:
                return oid
            stack[-1].entries.append(TreeEntry(top.path.name, Mode.TREE, oid))
            continue
        entry = top.children[top.next]
        top.next += 1
        if entry.name in ALWAYS_SKIPPED:
            continue
        full = Path(entry.path)
        try:
            st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            rel = top.rel + entry.name
            if top.rules.specs and top.rules.ignored(rel, is_dir):
                continue
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                raise FileNameNotUtf8(os.fsencode(full)) from None
            if stat.S_ISLNK(st.st_mode):
                oid = w.add(Blob(os.fsencode(full.readlink())))
                top.entries.append(TreeEntry(entry.name, Mode.SYMLINK, oid))
            elif is_dir:
                if len(stack) > MAX_TREE_DEPTH:
                    raise TreeTooDeep(str(root / rel), MAX_TREE_DEPTH)
                stack.append(_open_dir(full, rel + "/", top.rules))
            elif stat.S_ISREG(st.st_mode):
                mode = Mode.EXECUTABLE if st.st_mode & 0o100 else Mode.FILE
                with full.open("rb") as fh:
                    oid = w.add_stream(fh)
                top.entries.append(TreeEntry(entry.name, mode, oid))
            else:
                raise InvalidInput(
                    "unsupported file type", f"{full} is not a file, directory or symlink"
                )
        except OSError as exc:
            raise InvalidInput("cannot read file", f"{full}: {exc}") from exc


def _decode(oid: ObjectId, data: bytes) -> StoredObject:
    """Decode stored bytes; a decoding failure means the stored object is corrupt."""
    try:
        return decode_object_trusted(data)
    except MalformedObject as exc:
        raise CorruptObject(oid.hex, exc.detail) from exc


def _check_hash(oid: ObjectId, data: bytes) -> None:
    """Content leaves the store only if its bytes still hash to its id."""
    if ObjectId.of(data) != oid:
        raise CorruptObject(oid.hex, "stored bytes do not hash to the id")


def hash_only(obj: StoredObject) -> ObjectId:
    if type(obj) is Blob and type(obj.data) is bytes:
        return ObjectId.trusted(digest(encode_blob(obj.data)))
    return hash_object(obj)[0]


def _ref_change(ref: str, old: ObjectId | None, new: ObjectId | None) -> dict[str, object]:
    return {"ref": ref, "old": old.hex if old else None, "new": new.hex if new else None}


class LsTreeEntry(Record):
    __match_args__ = ("path", "mode", "type", "oid")
    __slots__ = __match_args__
    path: str
    mode: Mode
    type: ObjectType
    oid: ObjectId

    def __init__(self, path: str, mode: Mode, type: ObjectType, oid: ObjectId) -> None:
        _set(self, "path", path)
        _set(self, "mode", mode)
        _set(self, "type", type)
        _set(self, "oid", oid)


class VacuumReport(Record):
    __match_args__ = ("before", "after", "free_pages", "full")
    __slots__ = __match_args__
    before: int
    """Bytes of ``steve.db`` and its WAL before the vacuum."""
    after: int
    free_pages: int
    """Free pages the database held before (4 KiB each)."""
    full: bool

    def __init__(self, before: int, after: int, free_pages: int, full: bool) -> None:
        _set(self, "before", before)
        _set(self, "after", after)
        _set(self, "free_pages", free_pages)
        _set(self, "full", full)

    @property
    def reclaimed(self) -> int:
        return max(0, self.before - self.after)


DRAIN_BATCH = 512
"""Outbox rows appended to the event log per transaction when draining."""


class EventSink(Protocol):
    """Where the outbox drains to (:class:`steve.events.EventLog` is one)."""

    def deliver(self, source: str, events: Sequence[OutboxEvent]) -> int:
        """Append ``events`` (in order) to the log, skipping those whose outbox ``seq``
        the log already holds for ``source``, and remember the highest seq: all in
        one transaction of the log.  Returns how many were appended."""
        ...


class EventRouting(MutableRecord):
    """How a repository's events leave its outbox.

    ``sink`` receives drained events (None: they wait in the outbox);
    ``correlation_id`` and ``actor`` are stamped on every event queued by
    this process (None: the sink's own).  ``error`` is the last drain
    failure: the change it followed is committed, its events wait in the
    outbox, and the next drain retries them.
    """

    __match_args__ = ("sink", "correlation_id", "actor", "error", "lock")
    __slots__ = __match_args__
    _factories = {"lock": threading.RLock}  # noqa: RUF012 - read only
    sink: EventSink | None
    correlation_id: str | None
    actor: str | None
    error: SteveError | None
    lock: threading.RLock

    def __init__(
        self,
        sink: EventSink | None = None,
        correlation_id: str | None = None,
        actor: str | None = None,
        error: SteveError | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        self.sink = sink
        self.correlation_id = correlation_id
        self.actor = actor
        self.error = error
        self.lock = threading.RLock() if lock is None else lock


class RepoTransaction:
    """One repository transaction: changes plus the events that record them.

    Everything a :class:`~steve.store.base.Transaction` does, and
    :meth:`emit`, which queues an event in the outbox of the same
    transaction, so the event commits exactly when the change does.  Get
    one with :meth:`Repo.transaction`.
    """

    def __init__(self, tx: Transaction, events: EventRouting) -> None:
        self._tx = tx
        self._events = events
        self.emitted = 0

    def emit(self, type: str, payload: Mapping[str, object], run_id: str | None = None) -> None:
        """Record event ``type`` (``payload``: ids and names) with this transaction."""
        try:
            data = cbor.encode(dict(payload))
        except MalformedObject as exc:
            raise InvalidInput("invalid event payload", exc.detail) from exc
        ev = self._events
        self._tx.append_outbox(
            OutboxEvent(
                0, time.time_ns() // 1_000_000, type, run_id, ev.correlation_id, ev.actor, data
            )
        )
        self.emitted += 1

    # --- the store transaction ---------------------------------------------------------

    def put(self, oid: ObjectId, type_: ObjectType, size: int, data: bytes) -> None:
        self._tx.put(oid, type_, size, data)

    def put_many(self, rows: Iterable[tuple[ObjectId, ObjectType, int, bytes]]) -> None:
        self._tx.put_many(rows)

    def delete_objects(self, oids: Iterable[ObjectId]) -> int:
        return self._tx.delete_objects(oids)

    def read_ref(self, name: str) -> RefRecord | None:
        return self._tx.read_ref(name)

    def set_ref(
        self, name: str, record: RefRecord | None, expected: RefRecord | Unset | None = ANY
    ) -> RefRecord | None:
        return self._tx.set_ref(name, record, expected)

    def append_reflog(self, entry: ReflogEntry) -> None:
        self._tx.append_reflog(entry)

    def delete_reflog(self, ref: str, keep_newest: int = 0) -> int:
        return self._tx.delete_reflog(ref, keep_newest)

    def read_run(self, run_id: str) -> RunRecord | None:
        return self._tx.read_run(run_id)

    def insert_run(self, run: RunRecord) -> None:
        self._tx.insert_run(run)

    def set_run_stage(self, run_id: str, expected: str, stage: str, time: int) -> bool:
        return self._tx.set_run_stage(run_id, expected, stage, time)

    def append_transition(self, record: TransitionRecord) -> None:
        self._tx.append_transition(record)

    def set_meta(self, key: str, value: str | None) -> None:
        self._tx.set_meta(key, value)

    def put_derived(self, space: str, key: bytes, value: bytes) -> None:
        self._tx.put_derived(space, key, value)

    def delete_derived(self, space: str, key: bytes) -> None:
        self._tx.delete_derived(space, key)

    def put_manifest_head(self, oid: ObjectId, head: ManifestHead | None) -> None:
        self._tx.put_manifest_head(oid, head)

    def put_text(self, uri: str, content: ObjectId, title: str, body: str) -> None:
        """Index a research source's text (``research_fts``), replacing its old text."""
        self._tx.put_text(uri, content, title, body)

    def delete_text(self, uri: str) -> None:
        self._tx.delete_text(uri)

    def append_outbox(self, event: OutboxEvent) -> None:
        self._tx.append_outbox(event)
        self.emitted += 1

    def delete_outbox(self, upto: int) -> int:
        return self._tx.delete_outbox(upto)

    def read_secret(self, name: str) -> SecretRecord | None:
        return self._tx.read_secret(name)

    def put_secret(self, record: SecretRecord) -> None:
        self._tx.put_secret(record)


class _SerialBackend:
    """A backend proxy: every call and every whole transaction holds one lock, and a
    stream is read whole under it (see :meth:`Repo.serialized`)."""

    def __init__(self, inner: Backend, lock: threading.RLock) -> None:
        self._inner = inner
        self._lock = lock

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock, self._inner.transaction() as tx:
            yield tx

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr
        lock = self._lock

        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                result = attr(*args, **kwargs)
                if isinstance(result, Iterator):
                    return list(result)  # a stream must not outlive the lock
                return result

        return call


class OpeningRepo:
    """A repository being opened on a background thread (:meth:`Repo.open_background`).

    Argon2id's C code releases the GIL, so the thread that asked can read and
    prepare its input meanwhile.  :meth:`result` waits and returns the
    repository, or raises exactly what :meth:`Repo.open` raised."""

    def __init__(self, open_: Callable[[], Repo]) -> None:
        self._repo: Repo | None = None
        self._error: BaseException | None = None
        # a daemon: an open still waiting (for a rekey's lock) never holds up exit
        self._thread = threading.Thread(
            target=self._run, args=(open_,), name="steve-open", daemon=True
        )
        self._thread.start()

    def _run(self, open_: Callable[[], Repo]) -> None:
        try:
            self._repo = open_()
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc

    def done(self) -> bool:
        """Whether :meth:`result` would return (or raise) without waiting."""
        return not self._thread.is_alive()

    def result(self) -> Repo:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._repo is not None
        return self._repo

    def close(self) -> None:
        """Not needed after all: wait for the open to end and close what it opened."""
        self._thread.join()
        repo, self._repo = self._repo, None
        if repo is not None:
            repo.close()


class Repo:
    """An open STEVE repository.  Use :meth:`init`, :meth:`open` or :meth:`memory`."""

    def __init__(
        self,
        backend: Backend,
        root: Path | None,
        config: RepoConfig | None,
        identity: Identity = DEFAULT_IDENTITY,
        key: bytes | None = None,
    ) -> None:
        self.backend = backend
        self.root = root
        self.config = config
        self.identity = identity
        self.refs = RefStore(backend)
        self.key = key  # the raw SQLCipher key; the event log keys events.db with it
        self.events = EventRouting()
        self._lock: DirLock | None = None  # the shared repository lock (steve.store.lock)

    # --- transactions and their events -----------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[RepoTransaction]:
        """One atomic change: ``with repo.transaction() as tx: ...; tx.emit(...)``.

        Objects, refs, runs and the events recording them commit together
        (the events into the outbox of ``steve.db``).  After the commit the
        outbox is drained into the event log (:meth:`drain`); a failed drain
        does not undo or fail the committed change.
        """
        with self.backend.transaction() as tx:
            rtx = RepoTransaction(tx, self.events)
            yield rtx
        if rtx.emitted:
            self.drain()

    @property
    def source(self) -> str:
        """The name the event log files this repository's outbox under."""
        return self.repository_id

    def drain(self) -> int:
        """Move committed events from the outbox to the event sink; returns how many
        were appended to the log.

        Each batch is appended to the log (which skips the rows it already
        holds) and then deleted from the outbox, so a crash between the two
        repeats the delivery of nothing.  Without a sink, or when the sink
        fails, the events stay in the outbox for a later drain; the failure
        is kept in ``repo.events.error`` and not raised: the change that
        queued them is committed.
        """
        routing = self.events
        sink = routing.sink
        if sink is None:
            return 0
        delivered = 0
        with routing.lock:
            try:
                while True:
                    batch = self.backend.outbox(DRAIN_BATCH)
                    if not batch:
                        break
                    delivered += sink.deliver(self.source, batch)
                    with self.backend.transaction() as tx:
                        tx.delete_outbox(batch[-1].seq)
                    if len(batch) < DRAIN_BATCH:
                        break
            except SteveError as exc:
                routing.error = exc
                return delivered
            routing.error = None
        return delivered

    def undelivered(self) -> int:
        """How many committed events wait in the outbox (``fsck --events`` reports them)."""
        return self.backend.outbox_count()

    # --- lifecycle ------------------------------------------------------------------

    @property
    def steve_dir(self) -> Path | None:
        return None if self.root is None else self.root / STEVE_DIR

    @property
    def repository_id(self) -> str:
        return self.config.repository_id if self.config else "memory"

    def serialized(self) -> Repo:
        """A view of this repository that threads may share: the same database, key and
        event routing (outbox sink, correlation id, actor), with every storage call and
        every whole transaction under one lock."""
        if isinstance(self.backend, _SerialBackend):
            return self
        backend = cast(Backend, _SerialBackend(self.backend, threading.RLock()))
        view = Repo(backend, self.root, self.config, self.identity, self.key)
        view.events = self.events
        return view

    @classmethod
    def memory(cls, identity: Identity = DEFAULT_IDENTITY) -> Repo:
        """A scratch repository held in memory (nothing touches disk)."""
        from steve.store.memory import MemoryBackend

        repo = cls(MemoryBackend(), None, None, identity)
        repo.refs.set_symbolic(HEAD, DEFAULT_BRANCH, who=identity, message="init")
        return repo

    @classmethod
    def init(
        cls,
        path: Path | str,
        *,
        passphrase: str | bytes | None = None,
        key: bytes | None = None,
        kdf: KdfParams | None = None,
        identity: Identity = DEFAULT_IDENTITY,
        busy_timeout: float = 30.0,
    ) -> Repo:
        """Create ``path/.steve`` (encrypted) and open it.

        Give ``passphrase`` (Argon2id derives the key) or, with explicit
        ``kdf`` params, an already derived ``key``.  On any failure nothing
        is left behind.
        """
        root = Path(path)
        steve_dir = root / STEVE_DIR
        if os.path.lexists(steve_dir):  # also a dangling symlink: never written through
            raise RepositoryExists(str(steve_dir))
        params = kdf or KdfParams.fresh()
        if key is None:
            if passphrase is None:
                raise InvalidInput("a passphrase or key is required to create a repository")
            key = derive_key(passphrase, params)
        import shutil
        import tempfile
        import uuid

        config = RepoConfig(uuid.uuid4().hex, params, key_check(key))
        # Build the repository in a private temporary directory and rename it
        # into place, so a crash at any instant leaves either no .steve or a
        # complete one.
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".steve-init-", dir=root))
        except OSError as exc:
            raise StorageError(f"cannot create {steve_dir}: {exc}") from exc
        try:
            old_umask = os.umask(0o077)
            try:
                backend = SqlCipherBackend.create(staging / DB_NAME, key, busy_timeout)
                try:
                    staged = cls(backend, None, config, identity)
                    staged.refs.set_symbolic(HEAD, DEFAULT_BRANCH, who=identity, message="init")
                    backend.checkpoint()
                finally:
                    backend.close()
                config.write(staging / CONFIG_NAME)
            finally:
                os.umask(old_umask)
            try:
                staging.rename(steve_dir)
            except OSError as exc:
                if os.path.lexists(steve_dir):  # another init won the race
                    raise RepositoryExists(str(steve_dir)) from exc
                raise StorageError(f"cannot create {steve_dir}: {exc}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.open(root, key=key, identity=identity, busy_timeout=busy_timeout)

    @classmethod
    def read_config(cls, path: Path | str) -> RepoConfig:
        root = Path(path)
        cfg = root / STEVE_DIR / CONFIG_NAME
        if not cfg.is_file():
            raise NotARepository(str(root))
        return RepoConfig.read(cfg)

    @classmethod
    def derive_key(cls, path: Path | str, passphrase: str | bytes) -> bytes:
        """Derive and check the key of the repository at ``path`` (for key caches)."""
        config = cls.read_config(path)
        key = derive_key(passphrase, config.kdf)
        if not key_matches(key, config.key_check):
            raise WrongKey(str(Path(path) / STEVE_DIR / DB_NAME))
        return key

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        passphrase: str | bytes | None = None,
        key: bytes | None = None,
        identity: Identity = DEFAULT_IDENTITY,
        busy_timeout: float = 30.0,
    ) -> Repo:
        """Open the repository whose ``.steve`` is in ``path``."""
        root = Path(path)
        cls.read_config(root)  # NotARepository before anything else
        lock = lock_repository(root / STEVE_DIR, busy_timeout)
        try:
            config = cls.read_config(root)  # read under the lock: a rekey may just have ended
            db = root / STEVE_DIR / DB_NAME
            if not db.is_file():
                raise NotARepository(str(root))
            if key is None:
                if passphrase is None:
                    raise InvalidInput("a passphrase or key is required to open a repository")
                key = derive_key(passphrase, config.kdf)
            if not key_matches(key, config.key_check):
                raise WrongKey(str(db))
            secure_directory(db.parent)  # 0700 and 0600 (a repository made before this rule)
            secure_file(db.parent / CONFIG_NAME)
            backend = SqlCipherBackend.open(db, key, busy_timeout)
        except BaseException:
            lock.release()
            raise
        repo = cls(backend, root, config, identity, key=key)
        repo._lock = lock
        return repo

    @classmethod
    def open_background(
        cls,
        path: Path | str,
        *,
        passphrase: str | bytes | None = None,
        key: bytes | None = None,
        identity: Identity = DEFAULT_IDENTITY,
        busy_timeout: float = 30.0,
    ) -> OpeningRepo:
        """:meth:`open` on a background thread: the key derivation (the bulk of
        opening by passphrase) overlaps whatever the caller does next, until it
        calls :meth:`OpeningRepo.result`."""
        return OpeningRepo(
            lambda: cls.open(
                path, passphrase=passphrase, key=key, identity=identity, busy_timeout=busy_timeout
            )
        )

    @classmethod
    def rekey(
        cls,
        path: Path | str,
        *,
        new_passphrase: str | bytes,
        old_passphrase: str | bytes | None = None,
        old_key: bytes | None = None,
        memory_kib: int | None = None,
        iterations: int | None = None,
        parallelism: int | None = None,
        busy_timeout: float = 30.0,
    ) -> RekeyReport:
        """Change the passphrase of the repository at ``path`` (and optionally its
        Argon2id parameters; the salt is always new), crash-safe: a kill at any
        instant leaves it opening with the old passphrase or the new one (see
        :mod:`steve.store.rekey`).  Waits up to ``busy_timeout`` for every other
        process to close the repository (RepositoryInUse otherwise).  Records a
        ``repo.rekeyed`` event (it waits in the outbox until a command with an
        event log drains it)."""
        from steve.store import rekey

        root = Path(path)
        steve_dir = root / STEVE_DIR
        cls.read_config(root)
        with DirLock.acquire(steve_dir, exclusive=True, timeout=busy_timeout):
            rekey.recover(steve_dir)
            config = cls.read_config(root)
            if old_key is None:
                if old_passphrase is None:
                    raise InvalidInput("the current passphrase or key is required to rekey")
                old_key = derive_key(old_passphrase, config.kdf)
            if not key_matches(old_key, config.key_check):
                raise WrongKey(str(steve_dir / DB_NAME))
            old = config.kdf
            params = KdfParams(
                KdfParams.fresh().salt,
                old.memory_kib if memory_kib is None else memory_kib,
                old.iterations if iterations is None else iterations,
                old.parallelism if parallelism is None else parallelism,
            )
            new_key = derive_key(new_passphrase, params)
            new_config = config.replace(kdf=params, key_check=key_check(new_key))
            try:
                report = rekey.rekey_files(
                    steve_dir, old_key, new_key, new_config, busy_timeout=busy_timeout
                )
            except OSError as exc:
                raise StorageError(f"rekey of {steve_dir} failed: {exc}") from exc
        with (
            cls.open(root, key=new_key, busy_timeout=busy_timeout) as repo,
            repo.transaction() as tx,
        ):
            tx.emit(
                "repo.rekeyed",
                {
                    "memory_kib": params.memory_kib,
                    "iterations": params.iterations,
                    "parallelism": params.parallelism,
                    "databases": list(report.databases),
                },
            )
        return report

    def forbid_writes(self) -> None:
        """Make this handle read-only: every later write through it raises
        ReadOnlyStorage (the database itself refuses it).  For readers that must
        not change anything, such as `steve tui`."""
        self.backend.forbid_writes()

    def close(self) -> None:
        try:
            self.backend.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Repo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- objects: writing -----------------------------------------------------------

    def writer(self, *, overlap: bool = False) -> BatchWriter:
        """A batch writer: ``with repo.writer() as w: w.add(obj)`` (``overlap``: commit
        each full batch in the background, see :class:`BatchWriter`)."""
        return BatchWriter(self, overlap=overlap)

    def write(self, obj: StoredObject) -> ObjectId:
        with self.writer() as w:
            return w.add(obj)

    def write_blob(self, data: bytes) -> ObjectId:
        """Store ``data`` as a blob (chunked when larger than CHUNK_SIZE)."""
        if len(data) <= CHUNK_SIZE:
            return self.write(Blob(data))
        with self.writer() as w:
            return w.add_stream(io.BytesIO(data))

    def write_stream(self, stream: BinaryIO) -> ObjectId:
        with self.writer() as w:
            return w.add_stream(stream)

    @staticmethod
    def hash_stream(stream: BinaryIO) -> ObjectId:
        """The blob id ``stream`` would get, without storing anything."""
        return write_blob_stream(stream, hash_only)

    def write_tree(self, directory: Path | str) -> ObjectId:
        """Snapshot ``directory`` into tree and blob objects.

        ``.git`` and ``.steve`` are skipped at every level, and so is whatever
        the ``.steveignore`` files in the directory exclude (gitignore
        semantics, :mod:`steve.ignore`).  The walk is iterative; a directory
        nested deeper than :data:`MAX_TREE_DEPTH` raises TreeTooDeep, a name
        that is not UTF-8 FileNameNotUtf8.
        """
        root = Path(directory)
        if not root.is_dir():
            raise InvalidInput("not a directory", str(root))
        with self.writer() as w:
            return _snapshot(w, root)

    # --- objects: reading -----------------------------------------------------------

    def has_object(self, oid: ObjectId) -> bool:
        return self.backend.has(oid)

    def read_raw(self, oid: ObjectId) -> bytes:
        """The stored bytes of ``oid``, checked against the id (CorruptObject if not)."""
        data = self.backend.read(oid)
        if data is None:
            raise ObjectNotFound(oid.hex)
        _check_hash(oid, data)
        return data

    def read_object(self, oid: ObjectId) -> StoredObject:
        return _decode(oid, self.read_raw(oid))

    def object_info(self, oid: ObjectId) -> ObjectInfo:
        info = self.backend.info(oid)
        if info is None:
            raise ObjectNotFound(oid.hex)
        return info

    def find_object(self, oid: ObjectId) -> ObjectInfo | None:
        """Type, size and creation time of ``oid``, or None if it is not stored."""
        return self.backend.info(oid)

    def read_with_info(self, oid: ObjectId) -> tuple[ObjectType, int, bytes] | None:
        """Type, size and stored bytes of ``oid`` in one lookup (None if absent); the
        bytes are not checked here (:meth:`iter_content` checks them)."""
        return self.backend.read_with_info(oid)

    def lookup_objects(self, oids: Sequence[ObjectId], inline_max: int) -> list[ObjectRow]:
        """The stored ones of ``oids`` in one pass, bytes up to ``inline_max`` long (None
        when longer: read those with :meth:`read_with_info`); not checked here."""
        return self.backend.lookup_objects(oids, inline_max)

    def scan_objects(self, after: int, limit: int, inline_max: int) -> tuple[int, list[ObjectRow]]:
        """One page of every stored object in storage order (see the backend's)."""
        return self.backend.scan_objects(after, limit, inline_max)

    def count_estimate(self) -> int:
        """An upper bound on the number of stored objects, in constant time."""
        return self.backend.count_estimate()

    def object_type(self, oid: ObjectId) -> ObjectType:
        return self.object_info(oid).type

    def read_typed(self, oid: ObjectId, kind: ObjectType) -> StoredObject:
        obj = self.read_object(oid)
        if obj.type is not kind:
            raise WrongObjectType(oid.hex, kind.value, obj.type.value)
        return obj

    def _lookup(self, oid: ObjectId) -> tuple[ObjectType, int, bytes]:
        found = self.backend.read_with_info(oid)
        if found is None:
            raise ObjectNotFound(oid.hex)
        return found

    def iter_content(
        self, oid: ObjectId, found: tuple[ObjectType, int, bytes] | None = None
    ) -> Iterator[bytes]:
        """The content ``cat-file`` prints: blob bytes (streamed chunk by chunk),
        or the stored canonical bytes of any other object.  ``found`` is the
        row a caller already read with ``backend.read_with_info``."""
        kind, _, data = found if found is not None else self._lookup(oid)
        _check_hash(oid, data)
        if kind is not ObjectType.BLOB:
            yield data
            return
        obj = _decode(oid, data)
        if isinstance(obj, Blob):
            yield obj.data
            return
        assert isinstance(obj, ChunkedBlob)
        for chunk_id, length in obj.chunks:
            chunk = self.read_object(chunk_id)
            if not isinstance(chunk, Blob) or len(chunk.data) != length:
                raise CorruptObject(oid.hex, f"chunk {chunk_id.hex} does not match its index")
            yield chunk.data

    def read_blob(self, oid: ObjectId) -> bytes:
        found = self._lookup(oid)
        if found[0] is not ObjectType.BLOB:
            raise WrongObjectType(oid.hex, "blob", found[0].value)
        return b"".join(self.iter_content(oid, found))

    def match_prefix(self, prefix_hex: str, limit: int = 16) -> list[ObjectId]:
        return self.backend.match_prefix(prefix_hex, limit)

    def iter_objects(self) -> Iterator[ObjectInfo]:
        return self.backend.iter_info()

    def ls_tree(
        self, oid: ObjectId, recursive: bool = False, prefix: str = ""
    ) -> Iterator[LsTreeEntry]:
        """The entries of tree ``oid`` in order; with ``recursive`` the subtrees' entries
        in their place (depth first, walked with an explicit stack: any depth)."""
        stack: list[tuple[str, Iterator[TreeEntry]]] = [(prefix, self._tree_entries(oid))]
        while stack:
            base, entries = stack[-1]
            e = next(entries, None)
            if e is None:
                stack.pop()
                continue
            path = f"{base}{e.name}"
            if recursive and e.mode is Mode.TREE:
                stack.append((path + "/", self._tree_entries(e.oid)))
            else:
                yield LsTreeEntry(path, e.mode, e.mode.object_type, e.oid)

    def _tree_entries(self, oid: ObjectId) -> Iterator[TreeEntry]:
        tree = self.read_typed(oid, ObjectType.TREE)
        assert isinstance(tree, Tree)
        return iter(tree.entries)

    # --- revisions ------------------------------------------------------------------

    def resolve(self, rev: str) -> Resolved:
        return resolve(self, self.refs, rev)

    def rev_parse(self, rev: str) -> ObjectId:
        return resolve(self, self.refs, rev).oid

    # --- refs -------------------------------------------------------------------------

    def update_ref(
        self,
        name: str,
        new: ObjectId,
        old: ObjectId | Unset | None = ANY,
        *,
        message: str = "",
        deref: bool = True,
    ) -> ObjectId | None:
        """Compare-and-swap ``name`` to ``new``; returns the previous value."""
        if not self.backend.has(new):
            raise ObjectNotFound(new.hex)
        with self.transaction() as tx:
            target, previous = self.refs.update(
                name,
                new,
                old,
                who=self.identity,
                message=message or "update-ref",
                deref=deref,
                tx=tx,
            )
            tx.emit("ref.updated", _ref_change(target, previous, new))
        return previous

    def write_named_blobs(
        self, items: Sequence[tuple[str, bytes]], *, message: str
    ) -> list[ObjectId]:
        """Store each ``(ref, data)`` blob and move its ref to it (from whatever the ref
        held), objects, refs and their events in ONE transaction; returns the ids."""
        rows: dict[ObjectId, tuple[ObjectType, int, bytes]] = {}

        def add(obj: StoredObject) -> ObjectId:
            oid, data = hash_object(obj)
            rows[oid] = (obj.type, object_size(obj), data)
            return oid

        oids = [write_blob_stream(io.BytesIO(data), add) for _, data in items]
        with self.transaction() as tx:
            tx.put_many([(oid, t, n, d) for oid, (t, n, d) in rows.items()])
            for (name, _), oid in zip(items, oids, strict=True):
                current = self.refs.resolve(name)
                old = None if current is None else current.target
                if old == oid:
                    continue
                target, previous = self.refs.update(
                    name, oid, old, who=self.identity, message=message, tx=tx
                )
                tx.emit("ref.updated", _ref_change(target, previous, oid))
        return oids

    def delete_ref(
        self, name: str, old: ObjectId | Unset | None = ANY, *, deref: bool = True
    ) -> ObjectId | None:
        with self.transaction() as tx:
            target, previous = self.refs.update(
                name, None, old, who=self.identity, message="delete", deref=deref, tx=tx
            )
            tx.emit("ref.deleted", _ref_change(target, previous, None))
        return previous

    def set_symbolic_ref(self, name: str, target: str, message: str = "") -> None:
        with self.transaction() as tx:
            self.refs.set_symbolic(
                name,
                target,
                who=self.identity,
                message=message or f"symbolic-ref to {target}",
                tx=tx,
            )
            tx.emit("ref.symbolic", {"ref": name, "target": target})

    def delete_symbolic_ref(self, name: str) -> str:
        """Delete the symbolic ref ``name``; returns the ref it pointed at.

        Recorded as a ``ref.symbolic`` event whose ``target`` is None and
        whose ``old`` is the former target.
        """
        with self.transaction() as tx:
            old = self.refs.delete_symbolic(name, tx=tx)
            tx.emit("ref.symbolic", {"ref": name, "target": None, "old": old})
        return old

    def read_ref_record(self, name: str) -> RefRecord | None:
        """What ``name`` holds (an id or a symbolic target), without following it."""
        return self.refs.read(check_ref_name(name))

    def read_symbolic_ref(self, name: str) -> str | None:
        record = self.refs.read(check_ref_name(name))
        return None if record is None else record.symbolic

    def list_refs(self, prefix: str = "refs/") -> list[Ref]:
        return self.refs.list_refs(prefix)

    def head(self) -> Ref | None:
        return self.refs.resolve(HEAD)

    def reflog(self, name: str = HEAD) -> list[ReflogEntry]:
        full = name
        if name != HEAD and not name.startswith("refs/"):
            ref = self.refs.dwim(name)
            full = ref.name if ref else name
        return self.refs.reflog(full)

    def create_tag(
        self,
        name: str,
        target: ObjectId,
        *,
        message: str | None = None,
        force: bool = False,
        now: int | None = None,
        tz: int | None = None,
        signers: Sequence[Signer] = (),
    ) -> ObjectId:
        """Create ``refs/tags/NAME``; annotated (a tag object) when ``message`` is given,
        signed by each of ``signers`` (a signed tag, :mod:`steve.objects.signatures`).

        Returns the id the ref points at (the tag object's id if annotated).
        """
        if signers and message is None:
            raise InvalidInput("a signed tag needs a message", f"tag {name}")
        check_branch_or_tag_name(name)
        refname = check_ref_name(f"refs/tags/{name}")
        kind = self.object_type(target)
        stamp = int(time.time()) if now is None else now
        if message is not None:
            tag = Tag(
                object=target,
                object_type=kind,
                name=name,
                tagger=Person(self.identity.name, self.identity.email),
                time=stamp,
                tz=local_offset_minutes(stamp) if tz is None else tz,
                message=message,
            )
            if signers:
                tag = tag.replace(signatures=sign_bytes(tag.signed_bytes(), signers))
            target = self.write(tag)
        old: ObjectId | Unset | None = ANY if force else None
        with self.transaction() as tx:
            _, previous = self.refs.update(
                refname, target, old, who=self.identity, message=f"tag {name}", now=stamp, tx=tx
            )
            tx.emit("ref.updated", _ref_change(refname, previous, target))
        return target

    # --- runs (the stage machine's records; steve.porcelain.runs owns the rules) -------

    def list_runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        return self.backend.list_runs()

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.backend.get_run(run_id)

    def run_transitions(self, run_id: str) -> list[TransitionRecord]:
        """A run's transition records in order."""
        return self.backend.transitions(run_id)

    def get_meta(self, key: str) -> str | None:
        """A repository setting kept in ``steve.db`` (e.g. ``current_run``)."""
        return self.backend.get_meta(key)

    # --- the secrets vault (steve.porcelain.secrets owns the rules) -------------------

    def get_secret(self, name: str) -> SecretRecord | None:
        """The vault row of ``name`` (a tombstone too), or None."""
        return self.backend.get_secret(name)

    def list_secrets(self) -> list[SecretRecord]:
        """Every vault row, tombstones included, by name."""
        return self.backend.list_secrets()

    def object_stats(self) -> list[tuple[str, int, int]]:
        """(type, objects, content bytes) per object type, by type name."""
        return self.backend.object_stats()

    # --- error occurrences (F-ERR-006) ------------------------------------------------

    def count_error(self, code: str, message: str, *, now: int, wait: float = 0.2) -> None:
        """Count one occurrence of the error ``code`` (``message``: its latest text), in
        a transaction of its own that waits at most ``wait`` seconds for the write
        lock (RepositoryBusy after that).  Bookkeeping only: no event is emitted."""
        self.backend.count_error(code, message, now, wait)

    def error_counts(self) -> list[ErrorCount]:
        """Every counted error code, most frequent first."""
        return self.backend.error_counts()

    # --- maintenance ------------------------------------------------------------------

    def fsck(self) -> FsckReport:
        """Re-hash every object, check every reference and ref (see :mod:`steve.store.maint`).

        The event log's checks are :func:`steve.events.fsck.fsck`'s."""
        from steve.store import maint

        return maint.fsck(self.backend)

    def iter_fsck(self) -> Iterator[FsckProblem | ObjectId | str]:
        """:meth:`fsck` streamed: problems as found, plus each checked object id and ref."""
        from steve.store import maint

        return maint.iter_fsck(self.backend)

    def pending_events(self) -> Iterator[OutboxEvent]:
        """The committed events still waiting in the outbox, oldest first."""
        after = 0
        while batch := self.backend.outbox(DRAIN_BATCH, after):
            yield from batch
            after = batch[-1].seq

    def gc(
        self, *, prune_before: int | None, dry_run: bool = False, progress: Progress | None = None
    ) -> GcReport:
        """Delete objects unreachable from refs and reflogs and older than ``prune_before``
        (``progress``: see :func:`steve.store.maint.gc`)."""
        from steve.store import maint

        return maint.gc(self.backend, prune_before=prune_before, dry_run=dry_run, progress=progress)

    def vacuum(self, *, full: bool = False) -> VacuumReport:
        """Give the space of deleted objects back to the file system (``steve vacuum``).

        Runs SQLite's incremental vacuum (the database uses ``auto_vacuum =
        INCREMENTAL``; ``full``: ``VACUUM``, which rebuilds the file) as one write
        transaction, under the single-writer lock like any other write, then
        checkpoints and truncates the WAL.  Readers keep their snapshots."""
        before = self.disk_usage()
        free = self.backend.free_pages()
        self.backend.vacuum(full=full)
        return VacuumReport(before, self.disk_usage(), free, full)

    def disk_usage(self) -> int:
        """Bytes of ``steve.db`` and its WAL on disk (0 for a memory repository)."""
        if self.steve_dir is None:
            return 0
        total = 0
        for name in (DB_NAME, f"{DB_NAME}-wal"):
            with suppress(FileNotFoundError):
                total += (self.steve_dir / name).stat().st_size
        return total

    # --- derived data ------------------------------------------------------------------

    def get_derived(self, space: str, key: bytes) -> bytes | None:
        """A value of a rebuildable map kept in the encrypted database (e.g. ``git-map``)."""
        return self.backend.get_derived(space, key)

    def iter_derived(self, space: str) -> Iterator[tuple[bytes, bytes]]:
        return self.backend.iter_derived(space)

    def put_derived(self, space: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Set many keys of ``space`` in one transaction."""
        with self.backend.transaction() as tx:
            for key, value in items:
                tx.put_derived(space, key, value)

    def delete_derived(self, space: str, keys: Iterable[bytes]) -> None:
        with self.backend.transaction() as tx:
            for key in keys:
                tx.delete_derived(space, key)

    def search_text(self, query: str, limit: int = 10) -> list[TextHit]:
        """The research sources whose indexed text holds every word of ``query``
        (encrypted FTS5 index), best first."""
        return self.backend.search_text(text_terms(query), limit)

    def text_count(self) -> int:
        """How many research sources the full-text index holds."""
        return self.backend.text_count()

    def manifest_head(self, oid: ObjectId) -> ManifestHead | None:
        """The manifest index row of ``oid`` (kind, time, parents, summary), or None."""
        return self.backend.manifest_head(oid)

    def manifest_chain(self, oid: ObjectId, limit: int) -> list[tuple[ObjectId, ManifestHead]]:
        """Index rows of ``oid`` and up to ``limit - 1`` first-parent ancestors."""
        return self.backend.manifest_chain(oid, limit)

    def manifest_rows(self, oid: bytes, limit: int) -> list[HeadRow]:
        """:meth:`manifest_chain` as raw index rows (the log walk's fast path)."""
        return self.backend.manifest_rows(oid, limit)

    def manifest_parents(self, oid: ObjectId) -> tuple[ObjectId, ...]:
        obj = self.read_object(oid)
        return obj.parents if isinstance(obj, Manifest) else ()
