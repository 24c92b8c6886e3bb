"""Refs over a storage backend: compare-and-swap updates with a reflog.

Every change goes through :meth:`RefStore.update` or
:meth:`RefStore.set_symbolic` inside one backend transaction, which checks
the expected old value, writes the new one and appends the reflog entries
(on the ref itself and, like git, on HEAD when HEAD points at it).
"""

from __future__ import annotations

import time

from steve.errors import BadRefName, RefNameConflict, RefNameTooLong, RefNotFound
from steve.objects.oid import ObjectId
from steve.record import Record
from steve.refs.names import HEAD, candidates, check_ref_name, length_problem
from steve.store.base import ANY, Backend, ReflogEntry, RefRecord, RunRecord, Transaction, Unset

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

MAX_SYMREF_DEPTH = 5


class Ref(Record):
    __match_args__ = ("name", "target", "symbolic")
    __slots__ = __match_args__
    name: str
    target: ObjectId | None  # resolved object id (None: unborn symbolic ref)
    symbolic: str | None  # what the ref points at, if symbolic

    def __init__(self, name: str, target: ObjectId | None, symbolic: str | None = None) -> None:
        _set(self, "name", name)
        _set(self, "target", target)
        _set(self, "symbolic", symbolic)


class Identity(Record):
    __match_args__ = ("name", "email")
    __slots__ = __match_args__
    name: str
    email: str

    def __init__(self, name: str, email: str) -> None:
        _set(self, "name", name)
        _set(self, "email", email)

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


def local_offset_minutes(now: float | None = None) -> int:
    t = time.localtime(now)
    return (t.tm_gmtoff or 0) // 60


class RefStore:
    def __init__(self, backend: Backend) -> None:
        self._b = backend

    # --- reading ------------------------------------------------------------------

    def read(self, name: str) -> RefRecord | None:
        return self._b.read_ref(name)

    def resolve(self, name: str, tx: Transaction | None = None) -> Ref | None:
        """Follow symbolic refs from ``name``; None if ``name`` does not exist."""
        reader = tx if tx is not None else self._b
        seen = name
        record = reader.read_ref(name)
        if record is None:
            return None
        for _ in range(MAX_SYMREF_DEPTH):
            if record.target is not None:
                return Ref(name, record.target, None if seen == name else seen)
            assert record.symbolic is not None
            seen = record.symbolic
            nxt = reader.read_ref(seen)
            if nxt is None:
                return Ref(name, None, seen)
            record = nxt
        raise BadRefName(name, f"symbolic ref chain longer than {MAX_SYMREF_DEPTH}")

    def dwim(self, short: str) -> Ref | None:
        """Look ``short`` up with git's rules (name, refs/, refs/tags/, refs/heads/, ...)."""
        for full in candidates(short):
            ref = self.resolve(full)
            if ref is not None and ref.target is not None:
                return ref
        return None

    def list_refs(self, prefix: str = "refs/") -> list[Ref]:
        out = []
        for name, _record in self._b.list_refs(prefix):
            ref = self.resolve(name)
            if ref is not None:
                out.append(ref)
        return out

    def reflog(self, name: str) -> list[ReflogEntry]:
        return self._b.reflog(name)

    def runs(self) -> list[RunRecord]:
        """The runs, oldest first (for ``run:NAME`` revisions; steve.refs.runspec)."""
        return self._b.list_runs()

    # --- writing ------------------------------------------------------------------

    def _deref(self, tx: Transaction, name: str) -> str:
        """The ref a write to ``name`` lands on (follows symbolic refs, like git)."""
        current = name
        for _ in range(MAX_SYMREF_DEPTH):
            record = tx.read_ref(current)
            if record is None or record.symbolic is None:
                return current
            current = record.symbolic
        raise BadRefName(name, f"symbolic ref chain longer than {MAX_SYMREF_DEPTH}")

    def _check_creatable(self, tx: Transaction, name: str) -> None:
        """Refuse a new ref git could not hold: a name too long for a file, or one
        that is a directory of another ref's name or has one below it (D/F)."""
        why = length_problem(name)
        if why is not None:
            raise RefNameTooLong(name, why)
        parts = name.split("/")
        for i in range(2, len(parts)):
            prefix = "/".join(parts[:i])
            if tx.read_ref(prefix) is not None:
                raise RefNameConflict(name, prefix)
        below = self._b.list_refs(name + "/")  # the same connection: sees this transaction
        if below:
            raise RefNameConflict(name, below[0][0])

    def update(
        self,
        name: str,
        new: ObjectId | None,
        old: ObjectId | Unset | None = ANY,
        *,
        who: Identity,
        message: str,
        deref: bool = True,
        now: int | None = None,
        tx: Transaction | None = None,
    ) -> tuple[str, ObjectId | None]:
        """Compare-and-swap ``name`` to ``new`` (None deletes it).

        ``old`` is the expected current value (None: must not exist; ANY: no
        check).  Returns the ref actually written and its previous value.
        """
        check_ref_name(name)
        if tx is None:
            with self._b.transaction() as own:
                return self._update(own, name, new, old, who, message, deref, now)
        return self._update(tx, name, new, old, who, message, deref, now)

    def _update(
        self,
        tx: Transaction,
        name: str,
        new: ObjectId | None,
        old: ObjectId | Unset | None,
        who: Identity,
        message: str,
        deref: bool,
        now: int | None,
    ) -> tuple[str, ObjectId | None]:
        target = self._deref(tx, name) if deref else name
        check_ref_name(target)
        expected: RefRecord | Unset | None
        if isinstance(old, Unset):
            expected = ANY
        elif old is None:
            expected = None
        else:
            expected = RefRecord(old)
        current = tx.read_ref(target)
        if new is None and current is None and isinstance(old, Unset):
            raise RefNotFound(target)
        if new is not None and current is None:
            self._check_creatable(tx, target)
        previous = tx.set_ref(target, None if new is None else RefRecord(new), expected)
        prev_oid = previous.target if previous is not None else None
        stamp = int(time.time()) if now is None else now
        tz = local_offset_minutes(stamp)
        if new is None:
            tx.delete_reflog(target)
        else:
            tx.append_reflog(ReflogEntry(target, prev_oid, new, str(who), stamp, tz, message))
        if target != HEAD:
            head = tx.read_ref(HEAD)
            if (head is not None and head.symbolic == target) or (name == HEAD and deref):
                tx.append_reflog(ReflogEntry(HEAD, prev_oid, new, str(who), stamp, tz, message))
        return target, prev_oid

    def set_symbolic(
        self,
        name: str,
        target: str,
        *,
        who: Identity,
        message: str,
        now: int | None = None,
        tx: Transaction | None = None,
    ) -> None:
        check_ref_name(name)
        check_ref_name(target)
        if name == target:
            raise BadRefName(name, "a symbolic ref cannot point at itself")
        if tx is None:
            with self._b.transaction() as own:
                self._set_symbolic(own, name, target, who, message, now)
        else:
            self._set_symbolic(tx, name, target, who, message, now)

    def _set_symbolic(
        self,
        tx: Transaction,
        name: str,
        target: str,
        who: Identity,
        message: str,
        now: int | None,
    ) -> None:
        before = self.resolve(name, tx)
        if tx.read_ref(name) is None:
            self._check_creatable(tx, name)
        tx.set_ref(name, RefRecord(symbolic=target))
        after = self.resolve(name, tx)
        old = before.target if before else None
        new = after.target if after else None
        if old != new and new is not None:
            stamp = int(time.time()) if now is None else now
            tx.append_reflog(
                ReflogEntry(name, old, new, str(who), stamp, local_offset_minutes(stamp), message)
            )

    def delete_symbolic(self, name: str, tx: Transaction | None = None) -> str:
        """Delete the symbolic ref ``name``; returns the ref it pointed at."""
        check_ref_name(name)
        if tx is None:
            with self._b.transaction() as own:
                return self._delete_symbolic(own, name)
        return self._delete_symbolic(tx, name)

    def _delete_symbolic(self, tx: Transaction, name: str) -> str:
        record = tx.read_ref(name)
        if record is None or record.symbolic is None:
            raise RefNotFound(name)
        tx.set_ref(name, None, record)
        return record.symbolic
