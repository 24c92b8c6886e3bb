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
  references;
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
from collections.abc import Iterator
from dataclasses import dataclass, field

from steve.errors import ManifestInvalid, VerifyFailed
from steve.objects.model import Blob, ChunkedBlob, Manifest, ObjectType, Tag
from steve.objects.oid import ObjectId
from steve.objects.schemas import SCHEMAS, schema_for_version
from steve.objects.schemas.common import validate_body
from steve.porcelain.freeze import body_value
from steve.porcelain.trust import ATTESTATIONS_PREFIX
from steve.repo import Repo
from steve.store.maint import check_object, expected_types
from steve.trust.dsse import parse_envelope
from steve.trust.keys import verify_signature
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


# A pending reference: (id, allowed types or None for any, label, expected chunk length)
_Ref = tuple[ObjectId, tuple[ObjectType, ...] | None, str, int | None]


def check_manifest(obj: Manifest) -> str | None:
    """Why ``obj`` is not a valid manifest of its kind and schema version, or None."""
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


def check_tag_signatures(tag: Tag, ring: Keyring | None) -> str | None:
    """Why the signed ``tag``'s signatures do not verify (None: they do, or it is not
    signed); with a keyring that has roots, one must also be by a trusted key."""
    if not tag.signatures:
        return None
    if ring is None or not ring.roots:
        message = tag.signed_bytes()
        bad = [e for e in tag.signatures if not verify_signature(e.key, e.sig, message)]
        return "; ".join(f"key {e.key.hex()[:16]}: does not verify" for e in bad) or None
    verdict = ring.judge_bytes(tag.signed_bytes(), tag.signatures, tag.time)
    return "; ".join(verdict.problems()) or None


def check_attestation(repo: Repo, root: ObjectId, ring: Keyring | None) -> str | None:
    """Why the stored attestation of ``root`` does not verify with the keyring's trusted
    keys (None: it does, there is none, or there is no trust root)."""
    ref = repo.refs.resolve(ATTESTATIONS_PREFIX + root.hex)
    if ref is None or ref.target is None or ring is None or not ring.roots:
        return None
    try:
        envelope = parse_envelope(repo.read_blob(ref.target))
    except ValueError as exc:
        return f"attestation {ref.target.short()}: {exc}"
    if not envelope.verified_by(sorted(ring.trusted())):
        return f"attestation {ref.target.short()}: no valid signature by a trusted key"
    return None


def iter_verify(
    repo: Repo, root: ObjectId, ring: Keyring | None = None
) -> Iterator[VerifyProblem | tuple[ObjectId, int]]:
    """Yield each problem as found and ``(id, stored size)`` for each object checked."""
    why_attest = check_attestation(repo, root, ring)
    if why_attest is not None:
        yield VerifyProblem(VerifyKind.SIGNATURE, root, why_attest)
    seen: set[bytes] = {root.raw}
    stack: list[_Ref] = [(root, None, "the root", None)]
    while stack:
        oid, allowed, label, chunk_len = stack.pop()
        found = repo.read_with_info(oid)
        if found is None:
            yield VerifyProblem(VerifyKind.MISSING, oid, f"{label} is not in the store")
            continue
        stored_type, size, data = found
        if allowed is not None and stored_type not in allowed:
            yield VerifyProblem(VerifyKind.BAD_TYPE, oid, f"{label} is a {stored_type}")
        obj, problems = check_object(oid, data, stored_type, size)
        for p in problems:
            yield VerifyProblem(VerifyKind.CORRUPT, oid, p.detail)
        yield oid, len(data)
        if obj is None:
            continue
        if chunk_len is not None and (not isinstance(obj, Blob) or len(obj.data) != chunk_len):
            yield VerifyProblem(
                VerifyKind.CORRUPT, oid, f"{label} is not an inline blob of {chunk_len} bytes"
            )
        if isinstance(obj, Manifest):
            why = check_manifest(obj)
            if why is not None:
                yield VerifyProblem(VerifyKind.INVALID, oid, why)
        if isinstance(obj, Tag):
            why = check_tag_signatures(obj, ring)
            if why is not None:
                yield VerifyProblem(VerifyKind.SIGNATURE, oid, why)
        lengths = dict(obj.chunks) if isinstance(obj, ChunkedBlob) else {}
        for ref, types, ref_label in expected_types(obj):
            if ref.raw in seen:
                continue
            seen.add(ref.raw)
            stack.append((ref, types, f"{ref_label} of {obj.type} {oid.short()}", lengths.get(ref)))


def verify(repo: Repo, rev: str | ObjectId, ring: Keyring | None = None) -> VerifyReport:
    """Verify the closure of ``rev`` (see the module docstring), signatures judged by
    ``ring`` (None: only whether they verify); never raises for damage, the report
    lists it (use :meth:`VerifyReport.raise_for_problems`)."""
    root = rev if isinstance(rev, ObjectId) else repo.rev_parse(rev)
    report = VerifyReport(root)
    for item in iter_verify(repo, root, ring):
        if isinstance(item, VerifyProblem):
            report.problems.append(item)
        else:
            report.objects += 1
            report.bytes += item[1]
    return report


__all__ = [
    "VerifyKind",
    "VerifyProblem",
    "VerifyReport",
    "check_manifest",
    "iter_verify",
    "verify",
]
