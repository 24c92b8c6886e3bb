"""Freezing manifests: validate a draft, canonicalise it, store it, return its id.

    >>> oid = freeze(repo, "design", draft, now=1700000000, tz=0)

What freeze owns (the draft may not set them): the parents (ids of the
manifests this one builds on), ``frozen_at`` (the envelope ``time`` and
``tz``, passed in by the caller; the CLI takes them from
``SOURCE_DATE_EPOCH`` when set) and the ``links`` (every object id the body
references, derived from the schema so fsck/gc/export can walk a manifest
without knowing its kind).  The body is the validated model with every
field present (defaults filled in), so two drafts that mean the same thing
freeze to the same bytes and the same id.

Nothing is stored unless the whole draft is valid, every referenced object
exists (with the right type where the schema says which), and the optional
ref moves by compare-and-swap in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import yaml

from steve.errors import InvalidInput, ManifestInvalid, SecretInDraft
from steve.objects import cbor
from steve.objects.cbor import MAX_DEPTH
from steve.objects.model import (
    TIME_MAX,
    TIME_MIN,
    TZ_MAX,
    Manifest,
    ObjectType,
    hash_object,
    object_size,
)
from steve.objects.oid import ObjectId
from steve.objects.schemas import OLDER_SCHEMAS, ManifestBody, schema_for
from steve.objects.schemas.common import PROVENANCE_ID_FIELDS, Problem, validate_body
from steve.objects.values import check_depth, load_json
from steve.porcelain.show import FrozenManifest, read_manifest
from steve.refs.names import check_ref_name
from steve.repo import Repo
from steve.store.base import ANY, Transaction, Unset

# Object types a referenced id must have, by schema field spec.
EXPECTED_TYPES: dict[tuple[ObjectType, str], ObjectType] = {
    (ObjectType.DESIGN, "research_questions.answered_by"): ObjectType.RESEARCH,
    (ObjectType.BUILD_RECEIPT, "plan"): ObjectType.PLAN,
    (ObjectType.TEST_CERTIFICATE, "builds"): ObjectType.BUILD_RECEIPT,
    (ObjectType.DEPLOY_RECEIPT, "certificate"): ObjectType.TEST_CERTIFICATE,
    **{
        (kind, spec): ObjectType.BLOB
        for kind in (
            ObjectType.DESIGN,
            ObjectType.RESEARCH,
            ObjectType.PLAN,
            ObjectType.BUILD_RECEIPT,
        )
        for spec in PROVENANCE_ID_FIELDS
    },
    **{
        (ObjectType.RESEARCH, spec): ObjectType.BLOB
        for spec in ("sources.content", "sources.record", "sources.text")
    },
    (ObjectType.PLAN, "research"): ObjectType.RESEARCH,
    (ObjectType.BUILD_RECEIPT, "generated.base"): ObjectType.TREE,
    (ObjectType.BUILD_RECEIPT, "generated.diff"): ObjectType.BLOB,
    (ObjectType.BUILD_RECEIPT, "generated.patch"): ObjectType.TREE,
    (ObjectType.BUILD_RECEIPT, "generated.result"): ObjectType.TREE,
}


# --- reading drafts ------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            line = key_node.start_mark.line + 1
            raise InvalidInput("duplicate key in draft", f"{key!r} repeated at line {line}")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidInput("duplicate key in draft", f"{key!r} repeated")
        out[key] = value
    return out


def load_draft(data: bytes, source: str = "-") -> dict[str, Any]:
    """Parse a draft: JSON when it starts with ``{``, otherwise YAML (safe subset)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("draft is not UTF-8", f"{source}: {exc}") from None
    try:
        if text.lstrip().startswith("{"):
            value = load_json(text, source, object_pairs_hook=_no_duplicates)
        else:
            value = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
            check_depth(value, source)
    except RecursionError:  # PyYAML's composer recurses per level
        raise InvalidInput(
            "document nested too deeply", f"{source}: limit {MAX_DEPTH} levels"
        ) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput("draft is not valid YAML or JSON", f"{source}: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("a draft must be a mapping", f"{source}: got {type(value).__name__}")
    return value


# --- building -------------------------------------------------------------------------


def body_value(body: ManifestBody) -> dict[str, Any]:
    """The CBOR-model dict stored as a manifest's body."""
    value: dict[str, Any] = body.model_dump(mode="python", by_alias=True)
    return value


def _check_time(now: int, tz: int) -> None:
    if type(now) is not int or not TIME_MIN <= now <= TIME_MAX:
        raise InvalidInput(
            "invalid frozen_at time", f"{now!r} is not unix seconds in {TIME_MIN}..{TIME_MAX}"
        )
    if type(tz) is not int or not -TZ_MAX <= tz <= TZ_MAX:
        raise InvalidInput("invalid time zone offset", f"{tz!r} minutes")


def build_manifest(
    repo: Repo,
    kind: ObjectType | str,
    draft: Mapping[str, Any],
    *,
    parents: Sequence[ObjectId] = (),
    amends: ObjectId | None = None,
    now: int,
    tz: int,
) -> Manifest:
    """Validate ``draft`` and everything it references; return the envelope (not stored)."""
    model = schema_for(kind)
    kind = ObjectType(model.KIND)
    _check_time(now, tz)
    if not isinstance(draft, Mapping):
        raise ManifestInvalid(kind.value, [("", "type: a manifest draft must be a mapping")])
    draft = dict(draft)
    problems: list[Problem] = []
    if "schema_version" in draft:
        version = draft.pop("schema_version")
        older = OLDER_SCHEMAS.get((kind, version)) if type(version) is int else None
        upgrade = None if older is None else getattr(older, "upgraded", None)
        if older is not None and upgrade is not None:
            # an older version's draft: validated as written, frozen as the current one
            draft = body_value(upgrade(validate_body(older, draft)))
        elif type(version) is not int or version != model.SCHEMA_VERSION:
            problems.append(
                ("schema_version", f"version: this STEVE writes {kind} v{model.SCHEMA_VERSION}")
            )
    if amends is not None:
        declared = draft.get("amends")
        if declared is not None and declared != amends.hex:
            problems.append(("amends", "conflict: differs from the amended revision"))
        draft["amends"] = amends.hex
    if problems:
        raise ManifestInvalid(kind.value, problems)
    body = validate_body(model, draft)
    if body.amends is not None:
        amends = ObjectId.from_hex(body.amends)
    parent_list = list(dict.fromkeys(parents))
    if amends is not None and amends not in parent_list:
        parent_list.append(amends)
    for i, p in enumerate(parent_list):
        info = repo.find_object(p)
        if info is None:
            problems.append((f"parents[{i}]", f"exists: no object {p.hex}"))
        elif not info.type.is_manifest:
            problems.append((f"parents[{i}]", f"parent_type: {p.short()} is a {info.type}"))
    links: set[ObjectId] = set()
    for spec, path, hex_id in body.referenced_ids():
        oid = ObjectId.from_hex(hex_id)
        links.add(oid)
        info = repo.find_object(oid)
        if info is None:
            problems.append((path, f"exists: no object {hex_id} in the repository"))
            continue
        want = kind if spec == "amends" else EXPECTED_TYPES.get((kind, spec))
        if want is not None and info.type is not want:
            problems.append((path, f"object_type: {oid.short()} is a {info.type}, not a {want}"))
    if problems:
        raise ManifestInvalid(kind.value, problems)
    value = body_value(body)
    refuse_secret_values(repo, kind.value, value)
    return Manifest(
        kind=kind,
        version=model.SCHEMA_VERSION,
        parents=tuple(parent_list),
        links=tuple(sorted(links)),
        time=now,
        tz=tz,
        body=value,
    )


def refuse_secret_values(repo: Repo, kind: str, body: Mapping[str, Any]) -> None:
    """Raise SecretInDraft if ``body`` holds the value of a secret in the vault: a
    manifest is an object, and no object may hold a secret (docs/secrets.md)."""
    values = [(r.name, r.data) for r in repo.list_secrets() if r.kind == "value"]
    if not values:
        return
    encoded = cbor.encode(dict(body))
    for name, data in values:
        if data in encoded:
            raise SecretInDraft(kind, name)


def store_manifest(
    repo: Repo,
    manifest: Manifest,
    *,
    ref: str | None = None,
    ref_old: ObjectId | Unset | None = ANY,
    message: str = "",
    tx: Transaction | None = None,
) -> ObjectId:
    """Store ``manifest`` and optionally move ``ref`` to it by compare-and-swap.

    ``ref_old`` is the value the ref must have (None: must not exist); by
    default the value read inside the same transaction.
    """
    oid, data = hash_object(manifest)
    if tx is None:
        with repo.transaction() as own:
            _store(repo, own, oid, data, manifest, ref, ref_old, message)
            own.emit("manifest.frozen", frozen_payload(manifest, oid, ref))
    else:
        _store(repo, tx, oid, data, manifest, ref, ref_old, message)
    return oid


def _store(
    repo: Repo,
    tx: Transaction,
    oid: ObjectId,
    data: bytes,
    manifest: Manifest,
    ref: str | None,
    ref_old: ObjectId | Unset | None,
    message: str,
) -> None:
    tx.put(oid, manifest.kind, object_size(manifest), data)
    if ref is not None:
        check_ref_name(ref)
        old = ref_old
        if isinstance(old, Unset):
            current = repo.refs.resolve(ref, tx)
            old = current.target if current is not None else None
        repo.refs.update(
            ref,
            oid,
            old,
            who=repo.identity,
            message=message or f"freeze {manifest.kind}",
            now=manifest.time,
            tx=tx,
        )


def freeze(
    repo: Repo,
    kind: ObjectType | str,
    draft: Mapping[str, Any],
    *,
    parents: Sequence[ObjectId] = (),
    amends: ObjectId | None = None,
    now: int,
    tz: int,
    ref: str | None = None,
) -> ObjectId:
    """Validate, canonicalise and store ``draft`` as a ``kind`` manifest; return its id.

    ``amends`` (a manifest of the same kind) is recorded in the body and
    added to the parents.  ``ref`` moves by compare-and-swap in the same
    transaction as the write.  Raises ManifestInvalid (nothing stored).
    """
    manifest = build_manifest(repo, kind, draft, parents=parents, amends=amends, now=now, tz=tz)
    return store_manifest(repo, manifest, ref=ref)


def freeze_many(
    repo: Repo,
    kind: ObjectType | str,
    drafts: Iterable[Mapping[str, Any]],
    *,
    parents: Sequence[ObjectId] = (),
    now: int,
    tz: int,
) -> Iterator[ObjectId]:
    """Freeze a stream of drafts through one batch writer, yielding each id in order.

    An id is yielded only after the batch holding its manifest has committed
    (so a caller that prints it prints a durable id).  A bad draft (or a bad
    line of ``drafts``) raises after the drafts before it are committed and
    yielded; nothing of the bad one is stored.
    """
    done: list[ObjectId] = []  # added since the last yield

    def committed() -> Iterator[ObjectId]:
        ids = list(done)
        done.clear()
        yield from ids

    with repo.writer() as writer:
        try:
            for draft in drafts:
                manifest = build_manifest(repo, kind, draft, parents=parents, now=now, tz=tz)
                oid, data = hash_object(manifest)
                writer.emit("manifest.frozen", frozen_payload(manifest, oid, None))  # same batch
                writer.add_encoded(oid, manifest.kind, object_size(manifest), data)
                done.append(oid)
                if writer.pending == 0:  # this add filled and committed a batch
                    yield from committed()
        except (ManifestInvalid, InvalidInput):
            writer.flush()
            yield from committed()
            raise
    yield from committed()


def frozen_payload(manifest: Manifest, oid: ObjectId, ref: str | None) -> dict[str, object]:
    """The ``manifest.frozen`` event payload (ids and names only)."""
    return {"kind": manifest.kind.value, "id": oid.hex, "ref": ref}


__all__ = [
    "FrozenManifest",
    "body_value",
    "build_manifest",
    "freeze",
    "freeze_many",
    "load_draft",
    "read_manifest",
    "store_manifest",
]
