"""Field-level diff of two manifests of one kind (``steve diff REV1 REV2``).

Both manifests are flattened to ``path -> leaf`` maps (paths like
``constraints[2].hard``; envelope fields under ``envelope.``, e.g.
``envelope.parents[0]``), then compared path by path.  Lists compare by
position.  This is how a user sees why an amendment or a cache miss
happened.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from steve.errors import WrongObjectType
from steve.objects.model import Manifest
from steve.objects.oid import ObjectId
from steve.porcelain.show import read_manifest
from steve.repo import Repo

_MISSING = object()


class Change(enum.StrEnum):
    ADDED = "+"
    REMOVED = "-"
    CHANGED = "~"


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    change: Change
    old: Any = None
    new: Any = None

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


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of ``value`` with their paths; empty containers are leaves."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from flatten(item, f"{path}[{i}]")
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


def diff_manifests(old: Manifest, new: Manifest) -> list[FieldChange]:
    """Changes from ``old`` to ``new``, in path order (envelope first)."""
    a = dict(flatten(_envelope(old), "envelope"))
    a.update(flatten(old.body))
    b = dict(flatten(_envelope(new), "envelope"))
    b.update(flatten(new.body))
    out: list[FieldChange] = []
    for path in sorted(a.keys() | b.keys(), key=_path_key):
        va, vb = a.get(path, _MISSING), b.get(path, _MISSING)
        if va is _MISSING:
            out.append(FieldChange(path, Change.ADDED, new=vb))
        elif vb is _MISSING:
            out.append(FieldChange(path, Change.REMOVED, old=va))
        elif va != vb or type(va) is not type(vb):
            out.append(FieldChange(path, Change.CHANGED, va, vb))
    return out


def _path_key(path: str) -> tuple[int, list[Any]]:
    """Envelope first; list indexes numerically (``x[10]`` after ``x[9]``)."""
    parts: list[Any] = []
    for token in path.replace("[", ".[").split("."):
        if token.startswith("[") and token.endswith("]") and token[1:-1].isdigit():
            parts.append((1, int(token[1:-1])))
        else:
            parts.append((0, token))
    return (0 if path.startswith("envelope") else 1, parts)


def diff(repo: Repo, old: ObjectId, new: ObjectId) -> list[FieldChange]:
    """Field-level diff of two manifests of the same kind."""
    a, b = read_manifest(repo, old).manifest, read_manifest(repo, new).manifest
    if a.kind is not b.kind:
        raise WrongObjectType(new.hex, a.kind.value, b.kind.value)
    return diff_manifests(a, b)
