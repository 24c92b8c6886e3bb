"""An in-memory backend: the reference implementation of the storage contract.

Used by tests (the contract suite runs against it and the encrypted store)
and by library users who want a scratch repository.  Thread-safe; a
transaction stages its changes and applies them on commit.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from steve.errors import ReadOnlyStorage, StorageError
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.summary import HeadRow, ManifestHead, read_head
from steve.store.base import (
    ANY,
    ErrorCount,
    ObjectInfo,
    ObjectRow,
    OutboxEvent,
    ReflogEntry,
    RefRecord,
    RunRecord,
    SecretRecord,
    TextHit,
    TransitionRecord,
    Unset,
    check_expected,
    prefix_range,
    text_rowid,
    text_terms,
)


class _MemoryTx:
    def __init__(self, backend: MemoryBackend) -> None:
        self._b = backend
        self.objects: dict[ObjectId, tuple[ObjectType, int, bytes]] = {}
        self.deleted: set[ObjectId] = set()
        self.refs: dict[str, RefRecord | None] = {}
        self.reflog: list[ReflogEntry] = []
        self.reflog_trim: dict[str, int] = {}
        self.runs: dict[str, RunRecord] = {}
        self.transitions: list[TransitionRecord] = []
        self.meta: dict[str, str | None] = {}
        self.heads: dict[ObjectId, ManifestHead | None] = {}
        self.derived: dict[tuple[str, bytes], bytes | None] = {}
        self.outbox: list[OutboxEvent] = []
        self.outbox_upto = 0
        self.secrets: dict[str, SecretRecord] = {}
        self.texts: dict[int, tuple[str, ObjectId, str, str] | None] = {}

    def put_text(self, uri: str, content: ObjectId, title: str, body: str) -> None:
        self.texts[text_rowid(uri)] = (uri, content, title, body)

    def delete_text(self, uri: str) -> None:
        self.texts[text_rowid(uri)] = None

    def put(self, oid: ObjectId, type_: ObjectType, size: int, data: bytes) -> None:
        if oid not in self.objects and type_.is_manifest and oid not in self._b._objects:
            self.heads[oid] = read_head(oid.hex, data)
        self.objects.setdefault(oid, (type_, size, data))
        self.deleted.discard(oid)

    def put_many(self, rows: Iterable[tuple[ObjectId, ObjectType, int, bytes]]) -> None:
        for oid, t, s, d in rows:
            self.put(oid, t, s, d)

    def delete_objects(self, oids: Iterable[ObjectId]) -> int:
        n = 0
        for oid in oids:
            if oid not in self.deleted and (oid in self._b._objects or oid in self.objects):
                n += 1
            self.objects.pop(oid, None)
            self.deleted.add(oid)
            self.heads[oid] = None
        return n

    def put_manifest_head(self, oid: ObjectId, head: ManifestHead | None) -> None:
        self.heads[oid] = head

    def put_derived(self, space: str, key: bytes, value: bytes) -> None:
        self.derived[(space, bytes(key))] = bytes(value)

    def read_secret(self, name: str) -> SecretRecord | None:
        return self.secrets.get(name) or self._b._secrets.get(name)

    def put_secret(self, record: SecretRecord) -> None:
        self.secrets[record.name] = record

    def delete_derived(self, space: str, key: bytes) -> None:
        self.derived[(space, bytes(key))] = None

    def read_ref(self, name: str) -> RefRecord | None:
        if name in self.refs:
            return self.refs[name]
        return self._b._refs.get(name)

    def set_ref(
        self, name: str, record: RefRecord | None, expected: RefRecord | Unset | None = ANY
    ) -> RefRecord | None:
        current = self.read_ref(name)
        check_expected(name, expected, current)
        self.refs[name] = record
        return current

    def append_reflog(self, entry: ReflogEntry) -> None:
        self.reflog.append(entry)

    def delete_reflog(self, ref: str, keep_newest: int = 0) -> int:
        # like the SQL backend: keep the newest ``keep_newest`` entries counting
        # both committed ones and those appended earlier in this transaction
        committed = len(self._b._reflog.get(ref, []))
        committed = min(committed, self.reflog_trim.get(ref, committed))
        pending = sum(1 for e in self.reflog if e.ref == ref)
        drop_pending = max(0, pending - keep_newest)
        kept: list[ReflogEntry] = []
        for e in self.reflog:
            if e.ref == ref and drop_pending:
                drop_pending -= 1
                continue
            kept.append(e)
        self.reflog = kept
        keep_committed = min(committed, max(0, keep_newest - pending))
        self.reflog_trim[ref] = keep_committed
        return committed + pending - keep_committed - min(pending, keep_newest)

    def read_run(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id) or self._b._runs.get(run_id)

    def insert_run(self, run: RunRecord) -> None:
        if self.read_run(run.id) is not None:
            raise StorageError(f"run {run.id} already exists")
        self.runs[run.id] = run

    def set_run_stage(self, run_id: str, expected: str, stage: str, time: int) -> bool:
        run = self.read_run(run_id)
        if run is None or run.stage != expected:
            return False
        self.runs[run_id] = RunRecord(run.id, run.name, stage, run.created, time)
        return True

    def append_transition(self, record: TransitionRecord) -> None:
        existing = self._b._transitions.get(record.run_id, []) + [
            t for t in self.transitions if t.run_id == record.run_id
        ]
        if any(t.seq == record.seq for t in existing):
            raise StorageError(f"transition {record.run_id}#{record.seq} already exists")
        self.transitions.append(record)

    def set_meta(self, key: str, value: str | None) -> None:
        self.meta[key] = value

    def append_outbox(self, event: OutboxEvent) -> None:
        self.outbox.append(event)

    def delete_outbox(self, upto: int) -> int:
        self.outbox_upto = max(self.outbox_upto, upto)
        return sum(1 for e in self._b._outbox if e.seq <= upto)


class MemoryBackend:
    def __init__(self) -> None:
        self.location = ":memory:"
        self._query_only = False  # forbid_writes()
        self._lock = threading.RLock()
        self._objects: dict[ObjectId, ObjectInfo] = {}
        self._data: dict[ObjectId, bytes] = {}
        self._sorted: list[bytes] = []
        self._refs: dict[str, RefRecord] = {}
        self._reflog: dict[str, list[ReflogEntry]] = {}
        self._runs: dict[str, RunRecord] = {}
        self._transitions: dict[str, list[TransitionRecord]] = {}
        self._meta: dict[str, str] = {}
        self._heads: dict[ObjectId, ManifestHead] = {}
        self._derived: dict[str, dict[bytes, bytes]] = {}
        self._outbox: list[OutboxEvent] = []
        self._outbox_seq = 0
        self._secrets: dict[str, SecretRecord] = {}
        self._texts: dict[int, tuple[str, ObjectId, str, str]] = {}
        self._errors: dict[str, ErrorCount] = {}

    # reads
    def search_text(self, terms: Sequence[str], limit: int) -> list[TextHit]:
        """A plain scan (the reference for the SQLite FTS5 index): every source holding
        all ``terms``, ranked by how often they occur (more first), then by URI."""
        hits: list[TextHit] = []
        if not terms or limit <= 0:
            return hits
        with self._lock:
            rows = list(self._texts.values())
        for uri, content, title, body in rows:
            tokens = text_terms(title + " " + body)
            if all(t in tokens for t in terms):
                score = -float(sum(tokens.count(t) for t in terms))
                hits.append(TextHit(uri, content, title, body[:160], score))
        hits.sort(key=lambda h: (h.rank, h.uri))
        return hits[:limit]

    def text_count(self) -> int:
        return len(self._texts)

    def has(self, oid: ObjectId) -> bool:
        return oid in self._objects

    def read(self, oid: ObjectId) -> bytes | None:
        return self._data.get(oid)

    def info(self, oid: ObjectId) -> ObjectInfo | None:
        return self._objects.get(oid)

    def read_with_info(self, oid: ObjectId) -> tuple[ObjectType, int, bytes] | None:
        info = self._objects.get(oid)
        data = self._data.get(oid)
        if info is None or data is None:
            return None
        return info.type, info.size, data

    def match_prefix(self, prefix_hex: str, limit: int = 16) -> list[ObjectId]:
        lo, hi = prefix_range(prefix_hex)
        with self._lock:
            i = bisect.bisect_left(self._sorted, lo)
            out: list[ObjectId] = []
            keys = self._sorted
            while i < len(keys) and (hi is None or keys[i] < hi) and len(out) < limit:
                out.append(ObjectId(self._sorted[i]))
                i += 1
        return out

    def iter_info(self) -> Iterator[ObjectInfo]:
        with self._lock:
            keys = list(self._sorted)
        for raw in keys:
            info = self._objects.get(ObjectId(raw))
            if info is not None:
                yield info

    def scan_objects(self, after: int, limit: int, inline_max: int) -> tuple[int, list[ObjectRow]]:
        with self._lock:
            infos = list(itertools.islice(self._objects.values(), after, after + limit))
        out: list[ObjectRow] = []
        for info in infos:
            data = self._data.get(info.oid)
            if data is not None:
                out.append(
                    (
                        info.oid.raw,
                        info.type.value,
                        info.size,
                        data if len(data) <= inline_max else None,
                    )
                )
        return after + len(infos), out

    def count_estimate(self) -> int:
        return len(self._objects)

    def lookup_objects(self, oids: Sequence[ObjectId], inline_max: int) -> list[ObjectRow]:
        out: list[ObjectRow] = []
        for oid in oids:
            info, data = self._objects.get(oid), self._data.get(oid)
            if info is not None and data is not None:
                out.append(
                    (oid.raw, info.type.value, info.size, data if len(data) <= inline_max else None)
                )
        return out

    def iter_raw(self) -> Iterator[tuple[ObjectId, bytes]]:
        for info in self.iter_info():
            data = self._data.get(info.oid)
            if data is not None:
                yield info.oid, data

    def count(self) -> int:
        return len(self._objects)

    def read_ref(self, name: str) -> RefRecord | None:
        return self._refs.get(name)

    def list_refs(self, prefix: str = "") -> list[tuple[str, RefRecord]]:
        with self._lock:
            return sorted((n, r) for n, r in self._refs.items() if n.startswith(prefix))

    def reflog(self, ref: str) -> list[ReflogEntry]:
        return list(reversed(self._reflog.get(ref, [])))

    def reflog_refs(self) -> list[str]:
        return sorted(n for n, entries in self._reflog.items() if entries)

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def list_runs(self) -> list[RunRecord]:
        with self._lock:
            return sorted(self._runs.values(), key=lambda r: (r.created, r.id))

    def transitions(self, run_id: str) -> list[TransitionRecord]:
        with self._lock:
            return list(self._transitions.get(run_id, []))

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def manifest_head(self, oid: ObjectId) -> ManifestHead | None:
        return self._heads.get(oid)

    def manifest_chain(self, oid: ObjectId, limit: int) -> list[tuple[ObjectId, ManifestHead]]:
        out: list[tuple[ObjectId, ManifestHead]] = []
        head = self._heads.get(oid)
        while head is not None and len(out) < limit:
            out.append((oid, head))
            if not head.parents:
                break
            oid = head.parents[0]
            head = self._heads.get(oid)
        return out

    def manifest_rows(self, oid: bytes, limit: int) -> list[HeadRow]:
        return [head.row(o) for o, head in self.manifest_chain(ObjectId(oid), limit)]

    def relink_manifests(self) -> int:
        return 0  # rows are found by id; there are no positions to link

    def iter_manifest_heads(self) -> Iterator[tuple[ObjectId, ManifestHead]]:
        with self._lock:
            items = sorted(self._heads.items(), key=lambda kv: kv[0].raw)
        yield from items

    def get_derived(self, space: str, key: bytes) -> bytes | None:
        return self._derived.get(space, {}).get(bytes(key))

    def iter_derived(self, space: str) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            items = sorted(self._derived.get(space, {}).items())
        yield from items

    def outbox(self, limit: int, after: int = 0) -> list[OutboxEvent]:
        with self._lock:
            return [e for e in self._outbox if e.seq > after][:limit]

    def outbox_count(self) -> int:
        return len(self._outbox)

    # writes
    def forbid_writes(self) -> None:
        self._query_only = True

    @contextmanager
    def transaction(self) -> Iterator[_MemoryTx]:
        if self._query_only:
            raise ReadOnlyStorage(self.location, "this handle was opened for reading only")
        with self._lock:
            tx = _MemoryTx(self)
            yield tx
            now = int(time.time())
            for oid in tx.deleted:
                if self._objects.pop(oid, None) is not None:
                    self._data.pop(oid, None)
                    i = bisect.bisect_left(self._sorted, oid.raw)
                    del self._sorted[i]
            for oid, (t, s, d) in tx.objects.items():
                if oid not in self._objects:
                    self._objects[oid] = ObjectInfo(oid, t, s, now)
                    self._data[oid] = d
                    bisect.insort(self._sorted, oid.raw)
            for name, record in tx.refs.items():
                if record is None:
                    self._refs.pop(name, None)
                else:
                    self._refs[name] = record
            for ref, keep in tx.reflog_trim.items():
                entries = self._reflog.get(ref, [])
                self._reflog[ref] = entries[len(entries) - keep :] if keep else []
            for entry in tx.reflog:
                self._reflog.setdefault(entry.ref, []).append(entry)
            self._runs.update(tx.runs)
            for rec in tx.transitions:
                self._transitions.setdefault(rec.run_id, []).append(rec)
            for key, value in tx.meta.items():
                if value is None:
                    self._meta.pop(key, None)
                else:
                    self._meta[key] = value
            for oid, head in tx.heads.items():
                if head is None:
                    self._heads.pop(oid, None)
                else:
                    self._heads[oid] = head
            for (space, dkey), blob in tx.derived.items():
                if blob is None:
                    self._derived.get(space, {}).pop(dkey, None)
                else:
                    self._derived.setdefault(space, {})[dkey] = blob
            self._secrets.update(tx.secrets)
            for rowid, text in tx.texts.items():
                if text is None:
                    self._texts.pop(rowid, None)
                else:
                    self._texts[rowid] = text
            if tx.outbox_upto:
                self._outbox = [e for e in self._outbox if e.seq > tx.outbox_upto]
            for event in tx.outbox:
                self._outbox_seq += 1
                self._outbox.append(replace(event, seq=self._outbox_seq))

    def get_secret(self, name: str) -> SecretRecord | None:
        return self._secrets.get(name)

    def list_secrets(self) -> list[SecretRecord]:
        with self._lock:
            return [self._secrets[n] for n in sorted(self._secrets)]

    def count_error(self, code: str, message: str, now: int, wait: float) -> None:
        with self._lock:
            old = self._errors.get(code)
            if old is None:
                self._errors[code] = ErrorCount(code, 1, now, now, message)
            else:
                self._errors[code] = ErrorCount(
                    code, old.count + 1, old.first, max(old.last, now), message
                )

    def object_stats(self) -> list[tuple[str, int, int]]:
        stats: dict[str, list[int]] = {}
        with self._lock:
            for info in self._objects.values():
                row = stats.setdefault(info.type.value, [0, 0])
                row[0] += 1
                row[1] += info.size
        return [(t, n, b) for t, (n, b) in sorted(stats.items())]

    def error_counts(self) -> list[ErrorCount]:
        with self._lock:
            rows = list(self._errors.values())
        return sorted(rows, key=lambda e: (-e.count, -e.last, e.code))

    def check_integrity(self) -> list[str]:
        return []  # nothing on disk to damage

    def vacuum(self, full: bool = False) -> None:
        pass  # freed memory is returned as objects are dropped

    def free_pages(self) -> int:
        return 0

    def close(self) -> None:
        pass
