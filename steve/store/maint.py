"""Maintenance over a backend: fsck (verify everything) and gc (prune the unreachable).

fsck tells *corrupt* (bytes whose hash or encoding is wrong, damaged pages)
from *missing* (an object referenced by another object, a ref or a reflog
entry that is not in the store) and from *bad type* (a reference to an
object of the wrong type).  gc keeps everything reachable from refs and
reflog entries, and anything younger than the grace period.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import blake3

from steve.errors import MalformedObject, SteveError
from steve.objects.fastcheck import BLOB_TAIL, BlobFrames, tree_children
from steve.objects.model import (
    CHUNK_SIZE,
    Blob,
    ChunkedBlob,
    Manifest,
    Mode,
    ObjectType,
    StoredObject,
    Tag,
    Tree,
    decode_inline_blob,
    decode_object,
    decode_object_trusted,
    tree_entries,
)
from steve.objects.oid import ObjectId, digest
from steve.objects.summary import ManifestHead, read_head
from steve.store.base import Backend, ObjectInfo

if TYPE_CHECKING:
    from steve.progress import Progress


class ProblemKind(enum.StrEnum):
    CORRUPT = "corrupt"
    MISSING = "missing"
    BAD_TYPE = "bad-type"
    BAD_REF = "bad-ref"
    DATABASE = "database"
    INDEX = "index"
    RUN = "run"
    """A run's stage or transition records disagree with each other."""
    EVENTS = "events"
    """The event log's own chain (``fsck --events``)."""
    STATE = "state"
    """A run or ref disagrees with the events that should record it (``fsck --events``)."""
    UNDELIVERED = "undelivered"
    """Committed events still waiting in the outbox (``fsck --events``)."""


@dataclass(frozen=True, slots=True)
class FsckProblem:
    kind: ProblemKind
    oid: ObjectId | None
    detail: str
    seq: int | None = None  # the event log seq a problem is about, if any

    def __str__(self) -> str:
        if self.kind is ProblemKind.EVENTS:
            return f"events {self.detail}"
        who = self.oid.hex if self.oid else "-"
        return f"{self.kind.value} {who}: {self.detail}"


@dataclass(slots=True)
class FsckReport:
    objects: int = 0
    refs: int = 0
    problems: list[FsckProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, kind: ProblemKind) -> int:
        return sum(1 for p in self.problems if p.kind is kind)


def expected_types(obj: StoredObject) -> Iterator[tuple[ObjectId, tuple[ObjectType, ...], str]]:
    """Each reference of ``obj`` with the types it may point at and a label."""
    if isinstance(obj, ChunkedBlob):
        for i, (oid, _) in enumerate(obj.chunks):
            yield oid, (ObjectType.BLOB,), f"chunk {i}"
    elif isinstance(obj, Tree):
        for e in obj.entries:
            want = (ObjectType.TREE,) if e.mode is Mode.TREE else (ObjectType.BLOB,)
            yield e.oid, want, f"entry {e.name!r}"
    elif isinstance(obj, Tag):
        yield obj.object, (obj.object_type,), "tag target"
    elif isinstance(obj, Manifest):
        manifests = tuple(t for t in ObjectType if t.is_manifest)
        for i, p in enumerate(obj.parents):
            yield p, manifests, f"parent {i}"
        for link in obj.links:
            yield link, tuple(ObjectType), "link"


INLINE_MAX = 1 << 16
"""Passes over many objects fetch bytes up to this long with the row; longer ones
(chunks, big trees) are read one at a time so a page of rows stays small."""
SCAN_PAGE = 512
REF_BATCH = 4096
TYPES = {t.value: t for t in ObjectType}
RECENT = 32768  # objects whose type and size fsck keeps at hand (two generations)


def check_object(
    oid: ObjectId, data: bytes, stored_type: ObjectType | None, stored_size: int | None
) -> tuple[StoredObject | None, list[FsckProblem]]:
    """Re-hash and strictly decode one object."""
    actual = digest(data)
    if actual != oid.raw:
        detail = f"hash mismatch (bytes hash to {actual.hex()})"
        return None, [FsckProblem(ProblemKind.CORRUPT, oid, detail)]
    obj: StoredObject | None = decode_inline_blob(data)  # the common case, exactly
    if obj is None:
        try:
            obj = decode_object(data)
        except MalformedObject as exc:
            return None, [FsckProblem(ProblemKind.CORRUPT, oid, exc.detail)]
    problems: list[FsckProblem] = []
    if stored_type is not None and obj.type is not stored_type:
        problems.append(
            FsckProblem(ProblemKind.CORRUPT, oid, f"indexed as {stored_type}, is a {obj.type}")
        )
    if stored_size is not None:
        # object_size(obj), without re-encoding: a strict decode proved the bytes canonical
        real = (
            len(obj.data)
            if isinstance(obj, Blob)
            else obj.size
            if isinstance(obj, ChunkedBlob)
            else len(data)
        )
        if real != stored_size:
            problems.append(
                FsckProblem(
                    ProblemKind.CORRUPT, oid, f"indexed size {stored_size}, real size {real}"
                )
            )
    return obj, problems


# A reference to check: (target, allowed types, label, referrer, its type, chunk length)
_PendingRef = tuple[ObjectId, tuple[ObjectType, ...], str, ObjectId, ObjectType, int | None]


def _check_refs(backend: Backend, pending: list[_PendingRef]) -> Iterator[FsckProblem]:
    """Each pending reference's target exists, has an allowed type and, for a chunk,
    the length its chunked blob says (one batched lookup for the lot).

    A chunk's length is read from the index: the chunk's own row is checked
    against its bytes when the scan reaches it, and a chunked blob's size is
    always above one chunk, so a matching size is an inline blob of that length."""
    found = {
        raw: (t, size)
        for raw, t, size, _ in backend.lookup_objects(list({p[0] for p in pending}), -1)
    }
    for target, allowed, label, owner, owner_type, chunk_len in pending:
        row = found.get(target.raw)
        if row is None:
            yield FsckProblem(ProblemKind.MISSING, target, f"{label} of {owner_type} {owner.hex}")
        elif row[0] not in allowed:
            yield FsckProblem(ProblemKind.BAD_TYPE, target, f"{label} of {owner.hex} is a {row[0]}")
        elif chunk_len is not None and row[1] != chunk_len:
            yield FsckProblem(
                ProblemKind.CORRUPT, owner, f"{label} is not an inline blob of {chunk_len} bytes"
            )




@dataclass(frozen=True, slots=True)
class _Window:
    """The type and size of objects fsck scanned lately, by type (one generation)."""

    blobs: dict[bytes, int]
    trees: dict[bytes, int]
    others: dict[bytes, tuple[str, int]]

    def get(self, raw: bytes) -> tuple[str, int] | None:
        size = self.blobs.get(raw)
        if size is not None:
            return "blob", size
        size = self.trees.get(raw)
        if size is not None:
            return "tree", size
        return self.others.get(raw)


def _all_in(raws: tuple[bytes, ...], recent: dict[bytes, int], older: dict[bytes, int]) -> bool:
    """Whether every id of ``raws`` is a key of ``recent`` or ``older`` (set operations:
    ``keys() & set`` looks each id up, no Python loop)."""
    if not raws:
        return True
    wanted = set(raws)
    found = recent.keys() & wanted
    if len(found) == len(wanted):
        return True
    rest = wanted - found
    return len(older.keys() & rest) == len(rest)


def iter_fsck(backend: Backend) -> Iterator[FsckProblem | ObjectId | str]:
    """Yield problems as they are found, plus each checked object id / ref name.

    Objects are read in one sequential pass (pages of :data:`SCAN_PAGE` rows in
    storage order) and the references they hold are checked in batches."""
    try:
        for msg in backend.check_integrity():
            yield FsckProblem(ProblemKind.DATABASE, None, msg)
    except SteveError as exc:
        yield FsckProblem(ProblemKind.DATABASE, None, f"{exc.message}: {exc.detail}")
        return
    try:
        pending: list[_PendingRef] = []
        # the (type, size) of the objects scanned last, by type: most references point
        # at objects stored shortly before the referrer, and need no lookup then
        blobs: dict[bytes, int] = {}
        trees: dict[bytes, int] = {}
        others: dict[bytes, tuple[str, int]] = {}
        window = _Window(blobs, trees, others)
        older = _Window({}, {}, {})
        trusted, b3 = ObjectId.trusted, blake3.blake3
        frames = BlobFrames()
        after = 0
        while True:
            after_next, rows = backend.scan_objects(after, SCAN_PAGE, INLINE_MAX)
            if after_next == after:
                break
            after = after_next
            if len(blobs) + len(trees) + len(others) >= RECENT:
                older = window
                blobs, trees, others = {}, {}, {}
                window = _Window(blobs, trees, others)
            for raw, type_name, size, data in rows:
                if type_name == "blob":
                    blobs[raw] = size
                elif type_name == "tree":
                    trees[raw] = size
                else:
                    others[raw] = (type_name, size)
                oid = trusted(raw)
                if data is None:
                    data = backend.read(oid)
                    if data is None:  # deleted while we walked
                        continue
                    hash_ok = digest(data) == raw
                else:  # at most INLINE_MAX bytes: digest() without its size test
                    hash_ok = b3(data).digest() == raw
                # the common cases, exactly what check_object accepts without a word
                if type_name == "blob" and hash_ok:
                    frame = frames[size]
                    if (
                        len(data) == frame[1]
                        and data.startswith(frame[0])
                        and data.endswith(BLOB_TAIL)
                    ):
                        yield oid
                        continue
                elif type_name == "tree" and size == len(data) and hash_ok:
                    children = tree_children(data)
                    if (
                        children is not None
                        and _all_in(children[0], trees, older.trees)
                        and _all_in(children[1], blobs, older.blobs)
                    ):  # every entry's object scanned lately, with the type it needs
                        yield oid
                        continue
                    entries = tree_entries(data)
                    if entries is not None:
                        for name, mode, ref in entries:
                            want = "tree" if mode is Mode.TREE else "blob"
                            known = window.get(ref) or older.get(ref)
                            if known is None or known[0] != want:
                                pending.append(
                                    (
                                        trusted(ref),
                                        (ObjectType(want),),
                                        f"entry {name!r}",
                                        oid,
                                        ObjectType.TREE,
                                        None,
                                    )
                                )
                        yield oid
                        continue
                stored_type = TYPES.get(type_name)
                if stored_type is None:
                    detail = f"indexed with unknown type {type_name!r}"
                    yield FsckProblem(ProblemKind.CORRUPT, oid, detail)
                    continue
                obj, problems = check_object(oid, data, stored_type, size)
                yield from problems
                if obj is not None and not isinstance(obj, Blob):
                    if stored_type.is_manifest:
                        problem = _check_head(backend, oid, data)
                        if problem is not None:
                            yield problem
                    lengths = dict(obj.chunks) if isinstance(obj, ChunkedBlob) else None
                    for ref_oid, allowed, label in expected_types(obj):
                        chunk_len = lengths[ref_oid] if lengths else None
                        known = window.get(ref_oid.raw) or older.get(ref_oid.raw)
                        if (
                            known is None
                            or known[0] not in allowed
                            or (chunk_len is not None and known[1] != chunk_len)
                        ):  # looked up (again) and worded by _check_refs
                            pending.append((ref_oid, allowed, label, oid, obj.type, chunk_len))
                yield oid
            if len(pending) >= REF_BATCH:
                yield from _check_refs(backend, pending)
                pending = []
        if pending:
            yield from _check_refs(backend, pending)
        for indexed, _ in backend.iter_manifest_heads():
            if not backend.has(indexed):
                yield FsckProblem(
                    ProblemKind.INDEX, indexed, "manifest index row for an object not in the store"
                )
        for name, record in backend.list_refs(""):
            if record.target is not None and not backend.has(record.target):
                yield FsckProblem(ProblemKind.MISSING, record.target, f"ref {name}")
            yield name
        for ref_name in backend.reflog_refs():
            for entry in backend.reflog(ref_name):
                for logged in (entry.old, entry.new):
                    if logged is not None and not backend.has(logged):
                        yield FsckProblem(ProblemKind.MISSING, logged, f"reflog of {ref_name}")
        yield from check_runs(backend)
    except SteveError as exc:
        yield FsckProblem(ProblemKind.DATABASE, None, f"{exc.message}: {exc.detail}")


def check_runs(backend: Backend) -> Iterator[FsckProblem]:
    """Each run's transition records form one unbroken chain (seq 0, 1, 2, ...; each
    starts where the previous ended) that ends at the run's stage."""
    for run in backend.list_runs():
        stage: str | None = None
        for i, t in enumerate(backend.transitions(run.id)):
            if t.seq != i:
                yield FsckProblem(
                    ProblemKind.RUN,
                    None,
                    f"run {run.id}: transition #{i} is missing (next recorded is #{t.seq})",
                )
            if t.from_stage != stage:
                yield FsckProblem(
                    ProblemKind.RUN,
                    None,
                    f"run {run.id}: transition #{t.seq} starts from {t.from_stage}, "
                    f"the run was in {stage}",
                )
            stage = t.to_stage
        if stage != run.stage:
            yield FsckProblem(
                ProblemKind.RUN,
                None,
                f"run {run.id}: stage is {run.stage}, its transitions end in {stage}",
            )


def _check_head(backend: Backend, oid: ObjectId, data: bytes) -> FsckProblem | None:
    """The manifest index row of ``oid`` must equal what its bytes say."""
    want = read_head(oid.hex, data)
    have = backend.manifest_head(oid)
    if have == want:
        return None
    what = "missing" if have is None else "differs from the object"
    return FsckProblem(ProblemKind.INDEX, oid, f"manifest index row {what} (steve gc rebuilds it)")


def repair_index(backend: Backend) -> int:
    """Make the manifest index agree with the stored manifests; returns rows fixed."""
    fixes: list[tuple[ObjectId, ManifestHead | None]] = []
    for info in backend.iter_info():
        if not info.type.is_manifest:
            continue
        data = backend.read(info.oid)
        if data is None or ObjectId.of(data) != info.oid:
            continue  # corrupt: fsck reports it; nothing trustworthy to index
        try:
            want = read_head(info.oid.hex, data)
        except SteveError:
            continue
        if backend.manifest_head(info.oid) != want:
            fixes.append((info.oid, want))
    fixes.extend((oid, None) for oid, _ in backend.iter_manifest_heads() if not backend.has(oid))
    for i in range(0, len(fixes), 1000):
        with backend.transaction() as tx:
            for oid, head in fixes[i : i + 1000]:
                tx.put_manifest_head(oid, head)
    backend.relink_manifests()  # a speed hint: not counted as a repair
    return len(fixes)


def fsck(backend: Backend) -> FsckReport:
    report = FsckReport()
    for item in iter_fsck(backend):
        if isinstance(item, FsckProblem):
            report.problems.append(item)
        elif isinstance(item, ObjectId):
            report.objects += 1
        else:
            report.refs += 1
    return report


# --- gc ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GcReport:
    objects: int
    reachable: int
    unreachable: int
    pruned: int
    kept_recent: int
    dry_run: bool
    index_repaired: int = 0


def roots(backend: Backend) -> set[ObjectId]:
    out: set[ObjectId] = set()
    for _name, record in backend.list_refs(""):
        if record.target is not None:
            out.add(record.target)
    for ref in backend.reflog_refs():
        for entry in backend.reflog(ref):
            out.update(o for o in (entry.old, entry.new) if o is not None)
    return out


def references(backend: Backend, info: ObjectInfo) -> tuple[ObjectId, ...]:
    """The ids ``info``'s object refers to (none for inline blobs and unreadable objects)."""
    if info.type is ObjectType.BLOB and info.size <= CHUNK_SIZE:
        return ()  # inline blobs reference nothing
    data = backend.read(info.oid)
    if data is None:
        return ()
    try:
        return tuple(decode_object_trusted(data).references())
    except MalformedObject:
        return ()  # corrupt objects are fsck's business


def reachable(
    backend: Backend,
    start: set[ObjectId],
    seen: set[ObjectId] | None = None,
    progress: Progress | None = None,
) -> set[ObjectId]:
    """``seen`` plus every object reachable from ``start`` (``progress``: one unit per
    object found, in the phase the caller started)."""
    seen = set() if seen is None else seen
    stack = list(start)
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        info = backend.info(oid)
        if info is None:
            continue  # missing: fsck reports it; gc has nothing to keep
        seen.add(oid)
        if progress is not None:
            progress.advance(1)
        stack.extend(o for o in references(backend, info) if o not in seen)
    return seen


def deletion_order(backend: Backend, doomed: set[ObjectId]) -> list[ObjectId]:
    """``doomed`` ordered so that every object comes before the objects it refers to.

    Deleting in this order, in any number of transactions, never leaves an
    object whose chunks, entries or target are gone: whatever a crash leaves
    of ``doomed`` is closed under references (Kahn's algorithm; ids are
    hashes of their content, so there are no cycles).
    """
    children: dict[ObjectId, list[ObjectId]] = {}
    referrers: dict[ObjectId, int] = dict.fromkeys(doomed, 0)
    for oid in doomed:
        info = backend.info(oid)
        if info is None:
            continue
        kids = [c for c in references(backend, info) if c in referrers]
        if kids:
            children[oid] = kids
            for c in kids:
                referrers[c] += 1
    ready = sorted(o for o, n in referrers.items() if n == 0)
    order: list[ObjectId] = []
    while ready:
        oid = ready.pop()
        order.append(oid)
        for c in children.pop(oid, ()):
            referrers[c] -= 1
            if referrers[c] == 0:
                ready.append(c)
    placed = set(order)
    order.extend(o for o in sorted(doomed) if o not in placed)  # only if ids ever cycled
    return order


def gc(
    backend: Backend,
    *,
    prune_before: int | None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> GcReport:
    """Prune objects unreachable from refs and reflogs created before ``prune_before``.

    ``prune_before=None`` prunes nothing (like ``--prune=never``) but still
    reports what is unreachable.  An unreachable object younger than the
    cutoff is kept together with everything it refers to.  Deletion runs
    referrers first (:func:`deletion_order`), in bounded transactions, so a
    gc killed at any instant leaves no object with a missing part.

    ``progress`` hears the phases "gc: marking" (reachable objects found),
    "gc: scanning" (every stored object) and, when objects are deleted,
    "gc: pruning" (objects deleted).
    """
    estimate = backend.count_estimate() if progress is not None else None
    if progress is not None:
        progress.start("gc: marking", None, unit="objects")
    live = reachable(backend, roots(backend), progress=progress)
    total = 0
    unreachable: list[ObjectInfo] = []
    if progress is not None:
        progress.start("gc: scanning", estimate, unit="objects")
    for info in backend.iter_info():
        total += 1
        if info.oid not in live:
            unreachable.append(info)
        if progress is not None:
            progress.advance(1)
    recent = {i.oid for i in unreachable if prune_before is None or i.created >= prune_before}
    keep = reachable(backend, recent, set(live)) if recent else live
    doomed = {i.oid for i in unreachable if i.oid not in keep}
    kept = len(unreachable) - len(doomed)
    pruned = 0
    if not dry_run and doomed:
        order = deletion_order(backend, doomed)
        if progress is not None:
            progress.start("gc: pruning", len(order), unit="objects")
        for i in range(0, len(order), 1000):
            with backend.transaction() as tx:
                deleted = tx.delete_objects(order[i : i + 1000])
            pruned += deleted
            if progress is not None:
                progress.advance(len(order[i : i + 1000]))
        backend.vacuum()
    elif dry_run:
        pruned = len(doomed)
    repaired = 0 if dry_run else repair_index(backend)
    if progress is not None:
        progress.finish()
    return GcReport(total, len(live), len(unreachable), pruned, kept, dry_run, repaired)
