"""``steve verify REV``: verify the whole closure of an object by hash.

Starting at the object ``REV`` names, every reachable object (tag targets,
tree entries, chunks of a chunked blob, manifest parents and links) is read
once and checked:

* **corrupt**: its bytes do not hash to its id, are not the canonical
  encoding of a STEVE object, or disagree with the index (type, size); a
  chunk is not an inline blob of the length its index says;
* **missing**: it is referenced but not in the store;
* **bad-type**: it is referenced where another type is required;
* **invalid**: a manifest whose schema version is unknown, whose body does
  not validate against its schema (steve.objects.schemas) or is not in the
  normalised form freeze writes, or whose links differ from the ids its body
  references; a research manifest with a citation that does not check out
  against the mirrored bytes (steve.research.cite: each excerpt re-found at
  its locator in the re-extracted source text);
* **bad-signature**: a signed tag with a signature that does not verify (or,
  given a keyring with roots, none by a trusted key), or, for the root, a
  stored attestation (``refs/tags/trust/attestations/<root>``) that no trusted
  key signed (docs/trust.md).

The walk holds the set of visited ids and a stack of pending references,
never object bodies, so memory grows with the closure's id count only.
The object walker and per-object check are fsck's (:mod:`steve.store.maint`).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import blake3

from steve.errors import ManifestInvalid, VerifyFailed
from steve.objects.fastcheck import BLOB_TAIL, BlobFrames, tree_children
from steve.objects.model import (
    Blob,
    ChunkedBlob,
    Manifest,
    Mode,
    ObjectType,
    Tag,
    Tree,
    tree_entries,
)
from steve.objects.oid import PARALLEL_HASH_MIN, ObjectId, digest
from steve.repo import Repo
from steve.store.base import ObjectRow
from steve.store.maint import INLINE_MAX, SCAN_PAGE, TYPES, check_object, expected_types

if TYPE_CHECKING:  # the trust code (cryptography) loads only when a signature is met
    from steve.progress import Progress
    from steve.trust.records import Keyring


class VerifyKind(enum.StrEnum):
    CORRUPT = "corrupt"
    MISSING = "missing"
    BAD_TYPE = "bad-type"
    INVALID = "invalid"
    SIGNATURE = "bad-signature"


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    kind: VerifyKind
    oid: ObjectId
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.oid.hex}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    root: ObjectId
    objects: int = 0
    bytes: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, kind: VerifyKind) -> int:
        return sum(1 for p in self.problems if p.kind is kind)

    def raise_for_problems(self, rev: str) -> None:
        if self.problems:
            raise VerifyFailed(
                rev,
                self.count(VerifyKind.CORRUPT),
                self.count(VerifyKind.MISSING),
                self.count(VerifyKind.INVALID)
                + self.count(VerifyKind.BAD_TYPE)
                + self.count(VerifyKind.SIGNATURE),
            )


# A pending reference: (id, allowed types or None for any, label, expected chunk length);
# a tree entry's label is (entry name, tree id) or, from a tree checked on the fast
# path, that tree's raw id alone, worded only if a problem needs it
_Ref = tuple[
    ObjectId, tuple[ObjectType, ...] | None, str | tuple[str, ObjectId] | bytes, int | None
]
assert INLINE_MAX < PARALLEL_HASH_MIN  # the scan hashes rows with blake3 directly


def _label(label: str | tuple[str, ObjectId]) -> str:
    if isinstance(label, str):
        return label
    return f"entry {label[0]!r} of tree {label[1].short()}"


def check_manifest(obj: Manifest) -> str | None:
    """Why ``obj`` is not a valid manifest of its kind and schema version, or None."""
    # imported here: the schemas load pydantic (~0.1 s), which a closure without
    # manifests never needs
    from steve.objects.schemas import SCHEMAS, schema_for_version
    from steve.objects.schemas.common import validate_body
    from steve.porcelain.freeze import body_value

    current = SCHEMAS.get(obj.kind)
    if current is None:
        return f"no schema for kind {obj.kind}"
    model = schema_for_version(obj.kind, obj.version)  # older versions stay valid
    if model is None:
        return (
            f"schema version {obj.version} of {obj.kind} is unknown "
            f"(knows {current.SCHEMA_VERSION})"
        )
    try:
        body = validate_body(model, obj.body)
    except ManifestInvalid as exc:
        shown = "; ".join(f"{path or '(root)'}: {rule}" for path, rule in exc.problems[:5])
        return f"body does not validate: {shown}"  # one line per verify problem
    if body_value(body) != obj.body:
        return "body is not in the normalised form freeze writes"
    referenced = {ObjectId.from_hex(hex_id) for _, _, hex_id in body.referenced_ids()}
    if referenced != set(obj.links):
        return "links differ from the ids the body references"
    return None


BATCH = 256
"""References resolved per batched lookup."""
SCAN_FRACTION = 4
"""Blobs still to check are found by one pass over the whole store when they are
at least a quarter of it (a sequential read costs a fraction of a lookup)."""


def check_tag_signatures(tag: Tag, ring: Keyring | None) -> str | None:
    """Why the signed ``tag``'s signatures do not verify (None: they do, or it is not
    signed); with a keyring that has roots, one must also be by a trusted key."""
    if not tag.signatures:
        return None
    if ring is None or not ring.roots:
        from steve.trust.keys import verify_signature

        message = tag.signed_bytes()
        bad = [e for e in tag.signatures if not verify_signature(e.key, e.sig, message)]
        return "; ".join(f"key {e.key.hex()[:16]}: does not verify" for e in bad) or None
    verdict = ring.judge_bytes(tag.signed_bytes(), tag.signatures, tag.time)
    return "; ".join(verdict.problems()) or None


def check_attestation(repo: Repo, root: ObjectId, ring: Keyring | None) -> str | None:
    """Why the stored attestation of ``root`` does not verify with the keyring's trusted
    keys (None: it does, there is none, or there is no trust root)."""
    if ring is None or not ring.roots:
        return None
    from steve.porcelain.trust import ATTESTATIONS_PREFIX

    ref = repo.refs.resolve(ATTESTATIONS_PREFIX + root.hex)
    if ref is None or ref.target is None:
        return None
    from steve.trust.dsse import parse_envelope

    try:
        envelope = parse_envelope(repo.read_blob(ref.target))
    except ValueError as exc:
        return f"attestation {ref.target.short()}: {exc}"
    if not envelope.verified_by(sorted(ring.trusted())):
        return f"attestation {ref.target.short()}: no valid signature by a trusted key"
    return None


def _entry_names(repo: Repo, tree: bytes) -> dict[bytes, str]:
    """The name of the first entry of the (already verified) tree ``tree`` for each id
    it holds; empty if it cannot be read now."""
    found = repo.read_with_info(ObjectId.trusted(tree))
    entries = tree_entries(found[2]) if found is not None else None
    return {raw: name for name, _, raw in reversed(entries or ())}


_NAMED_TREES = 16
"""Trees whose entry names verify keeps at hand for wording problems."""


def iter_verify(
    repo: Repo, root: ObjectId, ring: Keyring | None = None
) -> Iterator[VerifyProblem | tuple[int, int]]:
    """Yield each problem as found and, between them, ``(objects, bytes)``: how many
    objects (and how many stored bytes) were checked since the last such count.

    References to trees, tags and manifests are followed in batches of
    :data:`BATCH` lookups; references that can only be blobs (tree files,
    chunks) are set aside and checked together at the end of each round,
    by one sequential scan when they are a large part of the store.  Every
    reference is checked exactly once, and one never found is missing.  Signed tags
    and the root's stored attestation are judged by ``ring`` (see :func:`verify`).

    The common objects take strict fast paths that work on raw ids: a sound tree
    (:func:`steve.objects.fastcheck.tree_children`) sets its entries aside by id
    with only the tree's id as their label, worded (the tree read again for the
    entry's name) if a problem needs it; a sound inline blob met by the scan is
    counted without building any object."""
    why_attest = check_attestation(repo, root, ring)
    if why_attest is not None:
        yield VerifyProblem(VerifyKind.SIGNATURE, root, why_attest)
    # What is already pushed, per expectation.  A reference is checked unless an
    # earlier one to the same id expected a subset of its types (that check covers
    # it); one that expects other types is checked again (a tree named as a file is
    # reported) and marked in ``again``, so the object is counted once.
    seen: set[bytes] = set()  # expected to be a blob (tree files, chunks)
    seen_tree: set[bytes] = set()  # expected to be a tree (subtrees)
    seen_other: dict[bytes, list[frozenset[ObjectType]]] = {root.raw: [frozenset(ObjectType)]}
    again: set[tuple[bytes, tuple[ObjectType, ...] | None]] = set()
    stack: list[_Ref] = [(root, None, "the root", None)]
    # set aside, blob-only references: a full reference, or for an entry of a tree
    # checked on the fast path only that tree's raw id
    blobs: dict[bytes, _Ref | bytes] = {}
    only_blob, only_tree = (ObjectType.BLOB,), (ObjectType.TREE,)
    trusted = ObjectId.trusted

    names: dict[bytes, dict[bytes, str]] = {}  # see _entry_names

    def label(ref: _Ref) -> str:
        text = ref[2]
        if not isinstance(text, bytes):
            return _label(text)
        # an entry of a tree checked on the fast path: its name from the tree, read
        # again (problems are rare; a few trees' names are kept for the next ones)
        by_id = names.get(text)
        if by_id is None:
            if len(names) >= _NAMED_TREES:
                names.clear()
            by_id = names[text] = _entry_names(repo, text)
        owner = trusted(text)
        name = by_id.get(ref[0].raw)
        return f"an entry of tree {owner.short()}" if name is None else _label((name, owner))

    def push_entries(oid: ObjectId, entries: Iterable[tuple[str, Mode, bytes]]) -> None:
        for name, mode, raw in entries:
            if mode is Mode.TREE:
                if raw not in seen_tree:
                    met(raw, only_tree, seen, seen_tree)
                    stack.append((trusted(raw), only_tree, (name, oid), None))
            elif raw not in seen:
                met(raw, only_blob, seen_tree, seen)
                blobs[raw] = (trusted(raw), only_blob, (name, oid), None)

    def met(
        raw: bytes, types: tuple[ObjectType, ...], other: set[bytes], mine: set[bytes]
    ) -> None:
        """Mark ``raw`` pushed as a blob or a tree (``mine``); a check again if the
        other one, or another expectation, pushed it before."""
        if raw in other or raw in seen_other:
            again.add((raw, types))
        mine.add(raw)

    def covered(raw: bytes, types: tuple[ObjectType, ...]) -> bool:
        """Push ``raw`` under ``types`` (parents, links, tag targets): False when an
        earlier reference expected a subset of them."""
        wanted = frozenset(types)
        earlier = seen_other.get(raw)
        if earlier is not None and any(e <= wanted for e in earlier):
            return False
        if (raw in seen and ObjectType.BLOB in wanted) or (
            raw in seen_tree and ObjectType.TREE in wanted
        ):
            return False
        if earlier is not None or raw in seen or raw in seen_tree:
            again.add((raw, types))
        seen_other.setdefault(raw, []).append(wanted)
        return True

    def push_children(oid: ObjectId, subtrees: tuple[bytes, ...], files: tuple[bytes, ...]) -> bool:
        """Set aside the entries of a tree checked on the fast path (False: they need
        the ordered, entry by entry way: one id is both a subtree and a file)."""
        new = dict.fromkeys(files, oid.raw)
        if subtrees:
            if not new.keys().isdisjoint(subtrees):
                return False
            for raw in subtrees:
                if raw not in seen_tree:
                    met(raw, only_tree, seen, seen_tree)
                    stack.append((trusted(raw), only_tree, oid.raw, None))
        if not seen.isdisjoint(new):
            for raw in seen.intersection(new):
                del new[raw]
        for other in (seen_tree, seen_other.keys()):
            if not other.isdisjoint(new):
                again.update((raw, only_blob) for raw in other & new.keys())
        seen.update(new)
        blobs.update(new)
        return True

    def counted(ref: _Ref, size: int) -> tuple[int, int]:
        """One object checked, or none if another reference counted it."""
        if again and (ref[0].raw, ref[1]) in again:
            return 0, 0
        return 1, size

    def check(ref: _Ref, row: ObjectRow) -> Iterator[VerifyProblem | tuple[int, int]]:
        oid, allowed, _, chunk_len = ref
        _, type_name, size, data = row
        stored_type = TYPES.get(type_name)
        if stored_type is None:
            yield VerifyProblem(VerifyKind.CORRUPT, oid, f"indexed with unknown type {type_name!r}")
            return
        if data is None:
            found = repo.read_with_info(oid)
            if found is None:  # deleted under us
                yield VerifyProblem(VerifyKind.MISSING, oid, f"{label(ref)} is not in the store")
                return
            stored_type, size, data = found
        if (  # a sound tree: exactly what the general path accepts without a word
            stored_type is ObjectType.TREE
            and (allowed is None or stored_type in allowed)
            and chunk_len is None
            and size == len(data)
            and digest(data) == oid.raw
        ):
            children = tree_children(data)
            if children is not None and push_children(oid, *children):
                yield counted(ref, len(data))
                return
            entries = tree_entries(data)
            if entries is not None:
                yield counted(ref, len(data))
                push_entries(oid, entries)
                return
        ref_label = label(ref)
        if allowed is not None and stored_type not in allowed:
            yield VerifyProblem(VerifyKind.BAD_TYPE, oid, f"{ref_label} is a {stored_type}")
        obj, problems = check_object(oid, data, stored_type, size)
        for p in problems:
            yield VerifyProblem(VerifyKind.CORRUPT, oid, p.detail)
        yield counted(ref, len(data))
        if obj is None:
            return
        if chunk_len is not None and (not isinstance(obj, Blob) or len(obj.data) != chunk_len):
            yield VerifyProblem(
                VerifyKind.CORRUPT, oid, f"{ref_label} is not an inline blob of {chunk_len} bytes"
            )
        if isinstance(obj, Blob):
            return
        if isinstance(obj, Manifest):
            why = check_manifest(obj)
            if why is not None:
                yield VerifyProblem(VerifyKind.INVALID, oid, why)
            elif obj.kind is ObjectType.RESEARCH:  # every citation, from the mirrored bytes
                from steve.research.cite import manifest_citation_problems

                for detail in manifest_citation_problems(repo, obj):
                    yield VerifyProblem(VerifyKind.INVALID, oid, detail)
        if isinstance(obj, Tag):
            why = check_tag_signatures(obj, ring)
            if why is not None:
                yield VerifyProblem(VerifyKind.SIGNATURE, oid, why)
        if isinstance(obj, Tree):  # without a label per entry
            push_entries(oid, ((e.name, e.mode, e.oid.raw) for e in obj.entries))
            return
        lengths = dict(obj.chunks) if isinstance(obj, ChunkedBlob) else None
        owner = f" of {obj.type} {oid.short()}"
        for child, types, child_label in expected_types(obj):
            raw = child.raw
            if types == only_blob:
                if raw in seen:
                    continue
                met(raw, types, seen_tree, seen)
            elif types == only_tree:
                if raw in seen_tree:
                    continue
                met(raw, types, seen, seen_tree)
            elif not covered(raw, types):
                continue
            pending = (child, types, child_label + owner, lengths[child] if lengths else None)
            if types == only_blob:
                blobs[raw] = pending
            else:
                stack.append(pending)

    def lookup(refs: list[_Ref]) -> Iterator[VerifyProblem | tuple[int, int]]:
        rows = {row[0]: row for row in repo.lookup_objects([r[0] for r in refs], INLINE_MAX)}
        for ref in refs:
            row = rows.get(ref[0].raw)
            if row is None:
                yield VerifyProblem(VerifyKind.MISSING, ref[0], f"{label(ref)} is not in the store")
            else:
                yield from check(ref, row)

    def full_ref(raw: bytes, pending: _Ref | bytes) -> _Ref:
        if isinstance(pending, bytes):  # an entry of a tree checked on the fast path
            return trusted(raw), only_blob, pending, None
        return pending

    def scan() -> Iterator[VerifyProblem | tuple[int, int]]:
        """Check the set-aside blob references against one pass over the store."""
        pop, b3 = blobs.pop, blake3.blake3
        frames = BlobFrames()
        after = 0
        while blobs:
            after_next, rows = repo.scan_objects(after, SCAN_PAGE, INLINE_MAX)
            if after_next == after:
                break
            after = after_next
            objects = stored = 0
            for row in rows:
                raw, type_name, size, data = row
                pending = pop(raw, None)
                if pending is None:
                    continue
                if (  # a sound inline blob: exactly what check() accepts without a word
                    type_name == "blob"
                    and data is not None
                    and (type(pending) is bytes or pending[3] is None)
                ):
                    frame = frames[size]
                    if (
                        len(data) == frame[1]
                        and data.startswith(frame[0])
                        and data.endswith(BLOB_TAIL)
                        and b3(data).digest() == raw  # = digest(): data <= INLINE_MAX
                    ):
                        if not again or (raw, only_blob) not in again:
                            objects += 1
                            stored += frame[1]
                        continue
                yield from check(full_ref(raw, pending), row)
            if objects:
                yield objects, stored

    while stack or blobs:
        while stack:
            batch = stack[-BATCH:]
            del stack[-BATCH:]
            yield from lookup(batch[::-1])
        if len(blobs) * SCAN_FRACTION >= repo.count_estimate():
            yield from scan()
        while blobs:  # what the scan did not meet (or all of them, for a few)
            keys = list(itertools.islice(blobs, BATCH))
            yield from lookup([full_ref(k, blobs.pop(k)) for k in keys])


def verify(
    repo: Repo,
    rev: str | ObjectId,
    ring: Keyring | None = None,
    *,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the closure of ``rev`` (see the module docstring), signatures judged by
    ``ring`` (None: only whether they verify); never raises for damage, the report
    lists it (use :meth:`VerifyReport.raise_for_problems`).  ``progress`` hears one
    phase "verify" counting the objects checked (the closure's size is not known
    in advance)."""
    root = rev if isinstance(rev, ObjectId) else repo.rev_parse(rev)
    report = VerifyReport(root)
    if progress is not None:
        progress.start("verify", None, unit="objects")
    for item in iter_verify(repo, root, ring):
        if isinstance(item, VerifyProblem):
            report.problems.append(item)
        else:
            report.objects += item[0]
            report.bytes += item[1]
            if progress is not None:
                progress.advance(item[0])
    if progress is not None:
        progress.finish()
    return report


__all__ = [
    "VerifyKind",
    "VerifyProblem",
    "VerifyReport",
    "check_attestation",
    "check_manifest",
    "check_tag_signatures",
    "iter_verify",
    "verify",
]
