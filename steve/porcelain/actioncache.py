"""The action cache: action key -> the successful build receipt that produced it.

A step's *action key* is BLAKE3-256 over the canonical CBOR of everything
that decides what the step computes::

    {"v": 1, "image": "sha256:<64 hex>", "command": [...], "env": {...},
     "inputs": {name: <id bytes>}, "outputs": [declared paths],
     "workdir": "/work", "timeout_ms": N | None, "policy": {canonical policy}}

plus ``"secrets": {name: version}`` when the step is given vault secrets:
their names and versions, never their values, so a rotated secret (a new
version) runs the step again and a key reveals nothing of a value.

The image is its bare id (a ``name@`` prefix does not change the image).
Two steps with the same key run the same command on the same bytes under
the same policy, so a successful receipt for the key can stand in for
running it again (F-BUILD-007).  Only successful receipts are cached.

A ``generate`` node's receipt is cached under its *generate key* (the
model request and the base step, :func:`steve.porcelain.generate.generate_key`),
which its ``generated.key`` records, so the same request on the same input
asks the model once.

The map lives in the encrypted database as derived data (space
``action-cache``): it can be dropped at any time and never keeps objects
alive.  :func:`lookup` checks an entry before trusting it, like fsck: the
receipt must exist, be a successful ``build_receipt`` for this very key,
and every output it names must still be in the store.  An entry that fails
these checks is ignored and reported as stale (:func:`check` lists them all,
:func:`forget` drops them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import blake3

from steve.exec import StepSpec
from steve.objects import cbor
from steve.objects.oid import OID_BYTES, ObjectId
from steve.porcelain.records import find_receipt
from steve.repo import Repo

SPACE = "action-cache"
KEY_VERSION = 1


def bare_image(image: str) -> str:
    """``sha256:<id>`` of an image reference ``[name@]sha256:<id>``."""
    return image.rsplit("@", 1)[-1]


def key_material(spec: StepSpec) -> dict[str, Any]:
    """The CBOR value an action key hashes (see the module docstring)."""
    timeout_ms = None if spec.timeout_s is None else round(spec.timeout_s * 1000)
    material: dict[str, Any] = {
        "v": KEY_VERSION,
        "image": bare_image(spec.image),
        "command": list(spec.command),
        "env": dict(spec.env),
        "inputs": {name: oid.raw for name, oid in spec.inputs.items()},
        "outputs": list(spec.outputs),
        "workdir": spec.workdir,
        "timeout_ms": timeout_ms,
        "policy": spec.policy.canonical(),
    }
    if spec.secret_versions:  # name -> version, never a value: a rotated secret re-runs
        material["secrets"] = dict(sorted(spec.secret_versions.items()))
    return material


def action_key(spec: StepSpec) -> ObjectId:
    """The action key of ``spec``: BLAKE3-256 of :func:`key_material`'s canonical CBOR."""
    return ObjectId(blake3.blake3(cbor.encode(key_material(spec))).digest())


@dataclass(frozen=True, slots=True)
class CachedAction:
    """A usable cache entry: the receipt and the outputs it recorded."""

    key: ObjectId
    receipt: ObjectId
    outputs: dict[str, ObjectId]


@dataclass(frozen=True, slots=True)
class StaleEntry:
    """A cache entry that cannot be trusted, and why (``key``: the raw stored key)."""

    key: bytes
    receipt: ObjectId | None
    reason: str

    @property
    def key_hex(self) -> str:
        return self.key.hex()


def _validate(repo: Repo, key: ObjectId, value: bytes) -> CachedAction | StaleEntry:
    if len(value) != OID_BYTES:
        return StaleEntry(key.raw, None, f"entry of {len(value)} bytes is not an object id")
    receipt = ObjectId(value)
    body = find_receipt(repo, receipt)
    if body is None:
        return StaleEntry(key.raw, receipt, "the receipt is missing or not a build receipt")
    generated = body.generated is not None and body.generated.key == key.hex
    if body.action_key != key.hex and not generated:
        return StaleEntry(key.raw, receipt, "the receipt records a different action key")
    if body.exit_status != 0 or body.failure is not None:
        return StaleEntry(key.raw, receipt, "the receipt records a failed step")
    outputs: dict[str, ObjectId] = {}
    for name, hex_id in body.outputs.items():
        oid = ObjectId.from_hex(hex_id)
        if not repo.has_object(oid):
            return StaleEntry(key.raw, receipt, f"output {name!r} ({oid.short()}) is missing")
        outputs[name] = oid
    return CachedAction(key, receipt, outputs)


def lookup(repo: Repo, key: ObjectId) -> CachedAction | StaleEntry | None:
    """The usable entry for ``key``, a StaleEntry if it exists but cannot be trusted,
    or None if there is no entry."""
    value = repo.get_derived(SPACE, key.raw)
    if value is None:
        return None
    return _validate(repo, key, value)


def record(repo: Repo, key: ObjectId, receipt: ObjectId) -> None:
    """Remember that ``receipt`` (successful) is the result of action ``key``."""
    repo.put_derived(SPACE, [(key.raw, receipt.raw)])


def check(repo: Repo) -> list[StaleEntry]:
    """Every entry that :func:`lookup` would ignore (the cache's fsck)."""
    out: list[StaleEntry] = []
    for raw_key, value in repo.iter_derived(SPACE):
        if len(raw_key) != OID_BYTES:
            out.append(StaleEntry(raw_key, None, f"key of {len(raw_key)} bytes"))
            continue
        found = _validate(repo, ObjectId(raw_key), value)
        if isinstance(found, StaleEntry):
            out.append(found)
    return out


def forget(repo: Repo, keys: Iterable[bytes]) -> None:
    """Drop entries by raw key (e.g. ``[e.key for e in check(repo)]``)."""
    repo.delete_derived(SPACE, list(keys))
