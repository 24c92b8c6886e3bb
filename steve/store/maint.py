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

from steve.errors import MalformedObject, SteveError
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
    decode_object,
    decode_object_trusted,
    object_size,
)
from steve.objects.oid import ObjectId
from steve.objects.summary import ManifestHead, read_head
from steve.store.base import Backend, ObjectInfo


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


def check_object(
    oid: ObjectId, data: bytes, stored_type: ObjectType | None, stored_size: int | None
) -> tuple[StoredObject | None, list[FsckProblem]]:
    """Re-hash and strictly decode one object."""
    problems: list[FsckProblem] = []
    actual = ObjectId.of(data)
    if actual != oid:
        problems.append(
            FsckProblem(ProblemKind.CORRUPT, oid, f"hash mismatch (bytes hash to {actual.hex})")
        )
        return None, problems
    try:
        obj = decode_object(data)
    except MalformedObject as exc:
        problems.append(FsckProblem(ProblemKind.CORRUPT, oid, exc.detail))
        return None, problems
    if stored_type is not None and obj.type is not stored_type:
        problems.append(
            FsckProblem(ProblemKind.CORRUPT, oid, f"indexed as {stored_type}, is a {obj.type}")
        )
    if stored_size is not None and object_size(obj) != stored_size:
        problems.append(
            FsckProblem(
                ProblemKind.CORRUPT,
                oid,
                f"indexed size {stored_size}, real size {object_size(obj)}",
            )
        )
    return obj, problems


def iter_fsck(backend: Backend) -> Iterator[FsckProblem | ObjectId | str]:
    """Yield problems as they are found, plus each checked object id / ref name."""
    try:
        for msg in backend.check_integrity():
            yield FsckProblem(ProblemKind.DATABASE, None, msg)
    except SteveError as exc:
        yield FsckProblem(ProblemKind.DATABASE, None, f"{exc.message}: {exc.detail}")
        return
    try:
        for info in backend.iter_info():
            data = backend.read(info.oid)
            if data is None:  # deleted while we walked
                continue
            obj, problems = check_object(info.oid, data, info.type, info.size)
            yield from problems
            if obj is not None and info.type.is_manifest:
                problem = _check_head(backend, info.oid, data)
                if problem is not None:
                    yield problem
            if obj is not None:
                for ref_oid, allowed, label in expected_types(obj):
                    target = backend.info(ref_oid)
                    if target is None:
                        yield FsckProblem(
                            ProblemKind.MISSING, ref_oid, f"{label} of {obj.type} {info.oid.hex}"
                        )
                    elif target.type not in allowed:
                        yield FsckProblem(
                            ProblemKind.BAD_TYPE,
                            ref_oid,
                            f"{label} of {info.oid.hex} is a {target.type}",
                        )
                    elif isinstance(obj, ChunkedBlob):
                        chunk = backend.read(ref_oid)
                        if chunk is not None:
                            try:
                                decoded = decode_object_trusted(chunk)
                            except MalformedObject:
                                continue  # reported when the chunk itself is checked
                            want = dict(obj.chunks)[ref_oid]
                            if not isinstance(decoded, Blob) or len(decoded.data) != want:
                                yield FsckProblem(
                                    ProblemKind.CORRUPT,
                                    info.oid,
                                    f"{label} is not an inline blob of {want} bytes",
                                )
            yield info.oid
        for indexed, _ in backend.iter_manifest_heads():
            if not backend.has(indexed):
                yield FsckProblem(
                    ProblemKind.INDEX, indexed, "manifest index row for an object not in the store"
                )
        for name, record in backend.list_refs(""):
            if record.target is not None and not backend.has(record.target):
                yield FsckProblem(ProblemKind.MISSING, record.target, f"ref {name}")
            yield name
        for ref in backend.reflog_refs():
            for entry in backend.reflog(ref):
                for oid in (entry.old, entry.new):
                    if oid is not None and not backend.has(oid):
                        yield FsckProblem(ProblemKind.MISSING, oid, f"reflog of {ref}")
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
    backend: Backend, start: set[ObjectId], seen: set[ObjectId] | None = None
) -> set[ObjectId]:
    """``seen`` plus every object reachable from ``start``."""
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


def gc(backend: Backend, *, prune_before: int | None, dry_run: bool = False) -> GcReport:
    """Prune objects unreachable from refs and reflogs created before ``prune_before``.

    ``prune_before=None`` prunes nothing (like ``--prune=never``) but still
    reports what is unreachable.  An unreachable object younger than the
    cutoff is kept together with everything it refers to.  Deletion runs
    referrers first (:func:`deletion_order`), in bounded transactions, so a
    gc killed at any instant leaves no object with a missing part.
    """
    live = reachable(backend, roots(backend))
    total = 0
    unreachable: list[ObjectInfo] = []
    for info in backend.iter_info():
        total += 1
        if info.oid not in live:
            unreachable.append(info)
    recent = {i.oid for i in unreachable if prune_before is None or i.created >= prune_before}
    keep = reachable(backend, recent, set(live)) if recent else live
    doomed = {i.oid for i in unreachable if i.oid not in keep}
    kept = len(unreachable) - len(doomed)
    pruned = 0
    if not dry_run and doomed:
        order = deletion_order(backend, doomed)
        for i in range(0, len(order), 1000):
            with backend.transaction() as tx:
                pruned += tx.delete_objects(order[i : i + 1000])
        backend.vacuum()
    elif dry_run:
        pruned = len(doomed)
    repaired = 0 if dry_run else repair_index(backend)
    return GcReport(total, len(live), len(unreachable), pruned, kept, dry_run, repaired)
