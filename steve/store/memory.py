"""An in-memory backend: the reference implementation of the storage contract.

Used by tests (the contract suite runs against it and the encrypted store)
and by library users who want a scratch repository.  Thread-safe; a
transaction stages its changes and applies them on commit.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.store.base import (
    ANY,
    ObjectInfo,
    ReflogEntry,
    RefRecord,
    Unset,
    check_expected,
    prefix_range,
)


class _MemoryTx:
    def __init__(self, backend: MemoryBackend) -> None:
        self._b = backend
        self.objects: dict[ObjectId, tuple[ObjectType, int, bytes]] = {}
        self.deleted: set[ObjectId] = set()
        self.refs: dict[str, RefRecord | None] = {}
        self.reflog: list[ReflogEntry] = []
        self.reflog_trim: dict[str, int] = {}

    def put(self, oid: ObjectId, type_: ObjectType, size: int, data: bytes) -> None:
        self.objects.setdefault(oid, (type_, size, data))
        self.deleted.discard(oid)

    def put_many(self, rows: Iterable[tuple[ObjectId, ObjectType, int, bytes]]) -> None:
        for oid, t, s, d in rows:
            self.put(oid, t, s, d)

    def delete_objects(self, oids: Iterable[ObjectId]) -> int:
        n = 0
        for oid in oids:
            if oid in self._b._objects or oid in self.objects:
                n += 1
            self.objects.pop(oid, None)
            self.deleted.add(oid)
        return n

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
        before = len(self._b._reflog.get(ref, [])) + sum(1 for e in self.reflog if e.ref == ref)
        self.reflog = [e for e in self.reflog if e.ref != ref] if keep_newest == 0 else self.reflog
        self.reflog_trim[ref] = keep_newest
        return max(0, before - keep_newest)


class MemoryBackend:
    def __init__(self) -> None:
        self.location = ":memory:"
        self._lock = threading.RLock()
        self._objects: dict[ObjectId, ObjectInfo] = {}
        self._data: dict[ObjectId, bytes] = {}
        self._sorted: list[bytes] = []
        self._refs: dict[str, RefRecord] = {}
        self._reflog: dict[str, list[ReflogEntry]] = {}

    # reads
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

    # writes
    @contextmanager
    def transaction(self) -> Iterator[_MemoryTx]:
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

    def close(self) -> None:
        pass
