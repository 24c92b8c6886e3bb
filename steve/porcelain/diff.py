"""Diffs: two manifests of one kind field by field, or two trees path by path
(``steve diff REV1 REV2``).

Manifests are flattened to ``path -> leaf`` maps (paths like
``constraints[2].hard``; envelope fields under ``envelope.``, e.g.
``envelope.parents[0]``), then compared path by path: the body's changes
first, the envelope's after.  A list whose items all have a distinct
``id`` is keyed by it (``acceptance_criteria[AC-003].testable``), so an
item inserted in the middle is one added item, not every later item
changed; other lists compare by position.  This is how a user sees why an
amendment or a cache miss happened.

Trees compare entry by entry, recursing only into subtrees whose ids
differ: each added, removed or changed file (blob or symlink) is one
:class:`TreeChange`.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from steve.errors import WrongObjectType
from steve.objects.model import Manifest, Mode, ObjectType, Tag, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.porcelain.show import read_manifest
from steve.repo import Repo

_MISSING = object()


class Change(enum.StrEnum):
    ADDED = "+"
    REMOVED = "-"
    CHANGED = "~"


Section = Literal["body", "envelope"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    change: Change
    old: Any = None
    new: Any = None
    section: Section = "body"

    def __str__(self) -> str:
        if self.change is Change.ADDED:
            return f"+ {self.path}: {show(self.new)}"
        if self.change is Change.REMOVED:
            return f"- {self.path}: {show(self.old)}"
        return f"~ {self.path}: {show(self.old)} -> {show(self.new)}"


def show(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


_ID_TOKEN = re.compile(r"[A-Za-z0-9_:@+-][A-Za-z0-9_.:@+-]*")


def _id_keys(items: list[Any]) -> list[str] | None:
    """The items' ``id`` values when every item is a mapping with a distinct plain id."""
    keys: list[str] = []
    for item in items:
        key = item.get("id") if isinstance(item, dict) else None
        if not isinstance(key, str) or not _ID_TOKEN.fullmatch(key):
            return None
        keys.append(key)
    return keys if len(set(keys)) == len(keys) else None


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of ``value`` with their paths; empty containers are leaves; list items
    with distinct ids are keyed by id (``[AC-003]``), others by position (``[2]``)."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        keys = _id_keys(value)
        for i, item in enumerate(value):
            yield from flatten(item, f"{path}[{keys[i] if keys else i}]")
    else:
        yield path, value


def _envelope(m: Manifest) -> dict[str, Any]:
    return {
        "schema_version": m.version,
        "parents": [p.hex for p in m.parents],
        "links": [link.hex for link in m.links],
        "frozen_at": m.time,
        "tz": m.tz,
    }


def _compare(a: dict[str, Any], b: dict[str, Any], section: Section) -> list[FieldChange]:
    out: list[FieldChange] = []
    for path in sorted(a.keys() | b.keys(), key=_path_key):
        va, vb = a.get(path, _MISSING), b.get(path, _MISSING)
        if va is _MISSING:
            out.append(FieldChange(path, Change.ADDED, new=vb, section=section))
        elif vb is _MISSING:
            out.append(FieldChange(path, Change.REMOVED, old=va, section=section))
        elif va != vb or type(va) is not type(vb):
            out.append(FieldChange(path, Change.CHANGED, va, vb, section=section))
    return out


def diff_manifests(old: Manifest, new: Manifest, *, envelope: bool = True) -> list[FieldChange]:
    """Changes from ``old`` to ``new``: the body's in path order, then (unless
    ``envelope`` is false) the envelope's, under ``envelope.``."""
    out = _compare(dict(flatten(old.body)), dict(flatten(new.body)), "body")
    if envelope:
        a = dict(flatten(_envelope(old), "envelope"))
        b = dict(flatten(_envelope(new), "envelope"))
        out += _compare(a, b, "envelope")
    return out


_PATH_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[]+)")


def _path_key(path: str) -> list[tuple[int, int, str]]:
    """Path order: list positions numerically (``x[10]`` after ``x[9]``), ids and
    names as text."""
    parts: list[tuple[int, int, str]] = []
    for m in _PATH_TOKEN.finditer(path):
        index, name = m.group(1), m.group(2)
        if index is not None and index.isdigit():
            parts.append((1, int(index), ""))
        else:
            parts.append((0, 0, index if index is not None else name))
    return parts


# --- trees ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeChange:
    """One file (blob or symlink) added, removed or changed between two trees."""

    path: str
    change: Change
    old: TreeEntry | None = None
    new: TreeEntry | None = None

    def __str__(self) -> str:
        if self.change is Change.ADDED:
            assert self.new is not None
            return f"+ {self.path} ({self.new.mode.git} {self.new.oid.short()})"
        if self.change is Change.REMOVED:
            assert self.old is not None
            return f"- {self.path} ({self.old.mode.git} {self.old.oid.short()})"
        assert self.old is not None and self.new is not None
        old, new = self.old, self.new
        modes = f"{old.mode.git} -> {new.mode.git}, " if old.mode is not new.mode else ""
        return f"~ {self.path} ({modes}{old.oid.short()} -> {new.oid.short()})"


def _entries(repo: Repo, oid: ObjectId) -> dict[str, TreeEntry]:
    tree = repo.read_typed(oid, ObjectType.TREE)
    assert isinstance(tree, Tree)
    return {e.name: e for e in tree.entries}


def _all_files(repo: Repo, entry: TreeEntry, path: str) -> Iterator[tuple[str, TreeEntry]]:
    if entry.mode is not Mode.TREE:
        yield path, entry
        return
    for name, child in sorted(_entries(repo, entry.oid).items()):
        yield from _all_files(repo, child, f"{path}/{name}")


def diff_trees(repo: Repo, old: ObjectId, new: ObjectId, prefix: str = "") -> list[TreeChange]:
    """Files added, removed and changed from tree ``old`` to tree ``new``, in path
    order; subtrees with equal ids are not read."""
    if old == new:
        return []
    a, b = _entries(repo, old), _entries(repo, new)
    out: list[TreeChange] = []
    for name in sorted(a.keys() | b.keys()):
        ea, eb = a.get(name), b.get(name)
        path = prefix + name
        if ea is not None and eb is not None and ea.oid == eb.oid and ea.mode is eb.mode:
            continue
        if ea is not None and eb is not None and ea.mode is Mode.TREE and eb.mode is Mode.TREE:
            out += diff_trees(repo, ea.oid, eb.oid, path + "/")
            continue
        if ea is not None and eb is not None and Mode.TREE not in (ea.mode, eb.mode):
            out.append(TreeChange(path, Change.CHANGED, ea, eb))
            continue
        if ea is not None:
            out += [TreeChange(p, Change.REMOVED, old=e) for p, e in _all_files(repo, ea, path)]
        if eb is not None:
            out += [TreeChange(p, Change.ADDED, new=e) for p, e in _all_files(repo, eb, path)]
    return sorted(out, key=lambda c: c.path.split("/"))


# --- either -------------------------------------------------------------------------------


def _peel(repo: Repo, oid: ObjectId) -> tuple[ObjectId, ObjectType]:
    """Follow annotated tags to the object they name."""
    for _ in range(64):
        kind = repo.object_type(oid)
        if kind is not ObjectType.TAG:
            return oid, kind
        tag = repo.read_object(oid)
        assert isinstance(tag, Tag)
        oid = tag.object
    raise WrongObjectType(oid.hex, "manifest or tree", "tag")


def diff(
    repo: Repo, old: ObjectId, new: ObjectId, *, envelope: bool = True
) -> list[FieldChange] | list[TreeChange]:
    """Two manifests of the same kind field by field (:func:`diff_manifests`), or two
    trees path by path (:func:`diff_trees`); tags are peeled first."""
    a, kind_a = _peel(repo, old)
    b, kind_b = _peel(repo, new)
    if kind_a is ObjectType.TREE or kind_b is ObjectType.TREE:
        if kind_a is not kind_b:
            raise WrongObjectType(
                new.hex if kind_a is ObjectType.TREE else old.hex,
                "tree",
                (kind_b if kind_a is ObjectType.TREE else kind_a).value,
            )
        return diff_trees(repo, a, b)
    ma, mb = read_manifest(repo, a).manifest, read_manifest(repo, b).manifest
    if ma.kind is not mb.kind:
        raise WrongObjectType(new.hex, ma.kind.value, mb.kind.value)
    return diff_manifests(ma, mb, envelope=envelope)
