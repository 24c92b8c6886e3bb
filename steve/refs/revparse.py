"""Revision syntax, after git's gitrevisions(7).

Supported::

    <64 hex>            a full object id (must exist)
    <4..63 hex>         a unique prefix (ambiguous -> AmbiguousPrefix with candidates)
    <refname>           HEAD, or a short name looked up as git does:
                        NAME, refs/NAME, refs/tags/NAME, refs/heads/NAME,
                        refs/remotes/NAME, refs/remotes/NAME/HEAD
    @                   HEAD
    <ref>@{N}           the N-th prior value of a ref from its reflog (@{0} = now)
    <rev>^  <rev>^N     the first / N-th parent of a manifest (^0: the manifest itself)
    <rev>~  <rev>~N     the N-th first-parent ancestor
    <rev>^{type}        peel tags until an object of that type; ^{} peels all tags,
                        ^{object} checks existence
    run:NAME            a run's latest manifest (id, id prefix or name; steve.refs.runspec)
    run:NAME/KIND       a run's latest manifest of KIND

Tags peel before ``^`` and ``~`` (as git peels to a commit).  A name that is
both a ref and a hex prefix resolves to the ref, as in git.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from steve.errors import (
    AmbiguousPrefix,
    BadRevision,
    UnknownRevision,
    WrongObjectType,
)
from steve.objects.model import Manifest, ObjectType, StoredObject, Tag
from steve.objects.oid import OID_HEX, ObjectId, is_hex_prefix
from steve.record import Record
from steve.refs.names import HEAD, candidates, format_problem
from steve.refs.refs import RefStore
from steve.refs.runspec import PREFIX as RUN_PREFIX
from steve.refs.runspec import resolve_run

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

_SUFFIX = re.compile(r"\^\{([a-z_]*)\}|\^(\d*)|~(\d*)")
_REFLOG = re.compile(r"^(.*)@\{(-?\d+)\}$")
MAX_PEEL = 64


class ObjectReader(Protocol):
    def read_object(self, oid: ObjectId) -> StoredObject: ...

    def object_type(self, oid: ObjectId) -> ObjectType: ...

    def match_prefix(self, prefix_hex: str, limit: int = 16) -> list[ObjectId]: ...

    def has_object(self, oid: ObjectId) -> bool: ...


class Resolved(Record):
    __match_args__ = ("oid", "ref")
    __slots__ = __match_args__
    oid: ObjectId
    ref: str | None  # the full ref name the base resolved through, if any

    def __init__(self, oid: ObjectId, ref: str | None) -> None:
        _set(self, "oid", oid)
        _set(self, "ref", ref)


def split_rev(rev: str) -> tuple[str, list[tuple[str, str]]]:
    """Split ``rev`` into its base and a list of (operator, argument) suffixes."""
    if not rev:
        raise BadRevision(rev, "empty revision")
    cut = len(rev)
    for i, ch in enumerate(rev):
        if ch in "^~":
            cut = i
            break
    base, rest = rev[:cut], rev[cut:]
    suffixes: list[tuple[str, str]] = []
    pos = 0
    while pos < len(rest):
        m = _SUFFIX.match(rest, pos)
        if m is None:
            raise BadRevision(rev, f"cannot parse {rest[pos:]!r}")
        if m.group(1) is not None:
            suffixes.append(("^{}", m.group(1)))
        elif m.group(2) is not None:
            suffixes.append(("^", m.group(2)))
        else:
            suffixes.append(("~", m.group(3)))
        pos = m.end()
    if not base:
        raise BadRevision(rev, "nothing before the suffix")
    return base, suffixes


def _parse_count(rev: str, digits: str) -> int:
    if digits == "":
        return 1
    if len(digits) > 9:
        raise BadRevision(rev, f"count {digits} too large")
    return int(digits)


def resolve_base(reader: ObjectReader, refs: RefStore, base: str, rev: str) -> Resolved:
    m = _REFLOG.match(base)
    if m is not None:
        name, n = (
            m.group(1),
            _parse_count(rev, m.group(2).lstrip("-")) * (-1 if m.group(2).startswith("-") else 1),
        )
        if n < 0:
            raise BadRevision(rev, "@{-N} (previous branch) is not supported")
        if name in ("", "@"):
            # git: a bare @{N} reads the reflog of the branch HEAD points at
            head = refs.resolve(HEAD)
            full: str | None = head.symbolic if head is not None and head.symbolic else HEAD
        else:
            full = _full_ref_name(refs, name)
        if full is None:
            raise UnknownRevision(rev, f"no ref {name!r}")
        entries = refs.reflog(full)
        if n >= len(entries):
            raise UnknownRevision(rev, f"log for {full} only has {len(entries)} entries")
        target = entries[n].new
        if target is None:
            raise UnknownRevision(rev, f"{full}@{{{n}}} records a deletion")
        return Resolved(target, full)
    if base.startswith(RUN_PREFIX):
        oid, run_ref = resolve_run(refs.runs(), _target_of(refs), base, rev)
        return Resolved(oid, run_ref)
    if "@{" in base:
        raise BadRevision(rev, "unsupported @{...} form")
    if base == "@":
        base = HEAD
    if len(base) == OID_HEX and is_hex_prefix(base):
        oid = ObjectId.from_hex(base)
        if not reader.has_object(oid):
            raise UnknownRevision(rev, "no such object")
        return Resolved(oid, None)
    if format_problem(base) is None:
        ref = refs.dwim(base)
        if ref is not None and ref.target is not None:
            return Resolved(ref.target, ref.symbolic or ref.name)
    if is_hex_prefix(base):
        found = reader.match_prefix(base, limit=16)
        if len(found) == 1:
            return Resolved(found[0], None)
        if len(found) > 1:
            raise AmbiguousPrefix(base, [f"{o.hex}" for o in found])
    if base == HEAD:
        raise UnknownRevision(rev, "HEAD does not point at anything yet")
    raise UnknownRevision(rev)


def _target_of(refs: RefStore) -> Callable[[str], ObjectId | None]:
    def target(name: str) -> ObjectId | None:
        ref = refs.resolve(name)
        return None if ref is None else ref.target

    return target


def _full_ref_name(refs: RefStore, name: str) -> str | None:
    """The full name whose reflog ``name@{N}`` reads (HEAD keeps its own, as in git)."""
    for full in candidates(name):
        if refs.read(full) is not None:
            return full
    return None


def peel(reader: ObjectReader, oid: ObjectId, want: ObjectType | None, rev: str) -> ObjectId:
    """Follow tags from ``oid`` until an object of type ``want`` (None: any non-tag)."""
    for _ in range(MAX_PEEL):
        kind = reader.object_type(oid)
        if want is not None and kind is want:
            return oid
        if kind is not ObjectType.TAG:
            if want is None:
                return oid
            raise WrongObjectType(oid.hex, want.value, kind.value)
        obj = reader.read_object(oid)
        assert isinstance(obj, Tag)
        oid = obj.object
    raise BadRevision(rev, f"more than {MAX_PEEL} nested tags")


def _parents(reader: ObjectReader, oid: ObjectId, rev: str) -> tuple[ObjectId, ...]:
    oid = peel(reader, oid, None, rev)
    obj = reader.read_object(oid)
    if not isinstance(obj, Manifest):
        raise WrongObjectType(oid.hex, "manifest", reader.object_type(oid).value)
    return obj.parents


def resolve(reader: ObjectReader, refs: RefStore, rev: str) -> Resolved:
    base, suffixes = split_rev(rev)
    current = resolve_base(reader, refs, base, rev)
    oid = current.oid
    for op, arg in suffixes:
        if op == "^{}":
            if arg == "":
                oid = peel(reader, oid, None, rev)
            elif arg == "object":
                if not reader.has_object(oid):
                    raise UnknownRevision(rev, "no such object")
            else:
                try:
                    want = ObjectType(arg)
                except ValueError:
                    raise BadRevision(rev, f"unknown type {arg!r} in ^{{}}") from None
                oid = peel(reader, oid, want, rev)
        elif op == "^":
            n = _parse_count(rev, arg)
            if n == 0:
                peeled = peel(reader, oid, None, rev)
                _parents(reader, peeled, rev)  # must be a manifest
                oid = peeled
                continue
            parents = _parents(reader, oid, rev)
            if n > len(parents):
                raise UnknownRevision(rev, f"{oid.short()} has {len(parents)} parent(s), not {n}")
            oid = parents[n - 1]
        else:
            for _ in range(_parse_count(rev, arg)):
                parents = _parents(reader, oid, rev)
                if not parents:
                    raise UnknownRevision(rev, f"{oid.short()} has no parents")
                oid = parents[0]
    return Resolved(oid, current.ref if not suffixes else None)
