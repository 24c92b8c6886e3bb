"""Signatures kept in a repository: signed tags, image signatures, key rotations and
supersession chains, judged against the keys the verifier trusts.

Signed records (:mod:`steve.trust.records`) are blobs, each named by a lightweight
tag so that ``gc`` keeps them and ``export-git --all`` carries them (git tags may
point at blobs):

==========================================  =============================================
``refs/tags/trust/images/<64 hex>``         the signature record of image ``sha256:<hex>``
``refs/tags/trust/rotations/<old key hex>`` the rotation away from a key
``refs/tags/trust/supersessions/<old id>``  the record saying what replaces object ``<id>``
``refs/tags/trust/attestations/<id>``       the DSSE attestation of a receipt/certificate
``refs/tags/trust/sbom/<id>``               its CycloneDX SBOM (``sbom/images/<hex>``: an image's)
==========================================  =============================================

The verifier's trust roots are the keys it names (``--key``) or, by default, the
key pinned in ``.steve/config`` (``[events] public_key``, the same key that signs
event checkpoints); rotation records found in the repository extend them
(:class:`~steve.trust.records.Keyring`).  A repository with no pinned key has no
trust root: nothing it holds can be checked against it.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from steve.errors import (
    CorruptObject,
    ImageSignatureInvalid,
    ImageUnsigned,
    MalformedObject,
    ObjectNotFound,
    SignatureInvalid,
    SupersessionInvalid,
    TagNotSigned,
    WrongObjectType,
)
from steve.objects.model import Tag
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.trust.keys import SigningKey
from steve.trust.records import (
    Keyring,
    RecordKind,
    SignedRecord,
    Supersession,
    SupersessionType,
    Verdict,
    decode_record,
    image_record,
    rotation_of,
    supersession_of,
    supersession_record,
)

if TYPE_CHECKING:  # the schemas load pydantic (~0.2 s): steve verify needs a keyring only
    from steve.objects.schemas.plan import Grant, PlanManifest

ATTESTATIONS_PREFIX = "refs/tags/trust/attestations/"
IMAGES_PREFIX = "refs/tags/trust/images/"
ROTATIONS_PREFIX = "refs/tags/trust/rotations/"
SUPERSESSIONS_PREFIX = "refs/tags/trust/supersessions/"
UNSIGNED_IMAGE = "unsigned_image"
"""The plan grant that lets a node run an image without a trusted signature."""


def pinned_key(repo: Repo) -> bytes | None:
    """The key pinned in the repository's config (None: no trust root)."""
    return None if repo.config is None else repo.config.events_public_key


def keyring(repo: Repo, roots: Sequence[bytes] = ()) -> Keyring:
    """The keys a verifier trusts: ``roots`` (default: the pinned key) and the keys the
    repository's valid rotation records reach from them."""
    chosen = set(roots)
    if not chosen:
        pinned = pinned_key(repo)
        if pinned is not None:
            chosen.add(pinned)
    ring = Keyring(chosen)
    for ref in repo.list_refs(ROTATIONS_PREFIX):
        if ref.target is None:
            continue
        try:
            ring.add_rotation(read_record(repo, ref.target))
        except (MalformedObject, ValueError):
            continue  # an invalid rotation vouches for nothing
    return ring


def read_record(repo: Repo, oid: ObjectId) -> SignedRecord:
    """The signed record stored as blob ``oid`` (MalformedObject if it is not one, or
    cannot be read)."""
    try:
        data = repo.read_blob(oid)
    except (ObjectNotFound, CorruptObject, WrongObjectType) as exc:
        raise MalformedObject(f"signed record {oid.short()}: {exc.message}") from exc
    return decode_record(data)


def _store(repo: Repo, ref: str, record: SignedRecord, message: str) -> ObjectId:
    oid = repo.write_blob(record.encode())
    current = repo.refs.resolve(ref)
    old = None if current is None else current.target
    if old != oid:
        repo.update_ref(ref, oid, old, message=message)
    return oid


# --- images -------------------------------------------------------------------------


def image_hex(image: str) -> str:
    """The 64 hex digits of a pinned image (``[name@]sha256:<hex>``)."""
    return image.rpartition("@")[2].removeprefix("sha256:")


def sign_image(
    repo: Repo, image: str, keys: Sequence[SigningKey], *, now: int | None = None
) -> ObjectId:
    """Record signatures by ``keys`` over image ``sha256:<hex>``; an image signed before
    keeps its signatures (co-signing).  Returns the record's blob id."""
    image_id = "sha256:" + image_hex(image)
    ref = IMAGES_PREFIX + image_hex(image)
    current = repo.refs.resolve(ref)
    stamp = int(_time.time()) if now is None else now
    record = image_record(image_id, stamp, keys)
    if current is not None and current.target is not None:
        try:
            old = read_record(repo, current.target)
        except MalformedObject:
            old = None  # a damaged record is replaced, not co-signed
        intact = (
            old is not None
            and old.kind is RecordKind.IMAGE
            and old.body.get("image") == image_id
            and all(c.valid for c in old.judge(Keyring()).checks)
        )
        if intact and old is not None:
            record = old.cosigned(keys)
    return _store(repo, ref, record, f"sign image {image_id}")


def image_verdict(repo: Repo, image: str, ring: Keyring) -> Verdict | None:
    """The image's signatures judged by ``ring``; None when it has no signature record."""
    ref = repo.refs.resolve(IMAGES_PREFIX + image_hex(image))
    if ref is None or ref.target is None:
        return None
    try:
        record = read_record(repo, ref.target)
    except MalformedObject as exc:
        return Verdict((), broken=f"the signature record is damaged: {exc.detail or exc}")
    if record.kind is not RecordKind.IMAGE or record.body.get("image") != (
        "sha256:" + image_hex(image)
    ):
        return Verdict((), broken="the record does not sign this image")
    return record.judge(ring)


def check_plan_images(
    repo: Repo, plan: PlanManifest, node_ids: Sequence[str]
) -> dict[str, Grant]:
    """Refuse (ImageUnsigned, ImageSignatureInvalid) a node whose image has no valid
    signature by a trusted key, unless the plan grants it ``unsigned_image`` with a
    reason; returns the nodes that run on that grant (their receipts record it).
    Without a trust root (no pinned key) nothing is checked."""
    ring = keyring(repo)
    if not ring.roots:
        return {}
    nodes = {n.id: n for n in plan.nodes}
    relied: dict[str, Grant] = {}
    for nid in node_ids:
        node = nodes[nid]
        verdict = image_verdict(repo, node.image, ring)
        if verdict is not None and verdict.ok:
            continue
        grant = plan.grants_for(nid).get(UNSIGNED_IMAGE)
        if grant is not None:
            relied[nid] = grant
        elif verdict is None:
            raise ImageUnsigned(node.image, nid)
        else:
            raise ImageSignatureInvalid(node.image, nid, "; ".join(verdict.problems()))
    return relied


# --- tags ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TagVerdict:
    name: str
    tag: ObjectId
    target: ObjectId
    verdict: Verdict


def verify_tag(repo: Repo, name: str, ring: Keyring, required: Sequence[bytes] = ()) -> TagVerdict:
    """Check the signatures of tag ``name`` (TagNotSigned, SignatureInvalid)."""
    ref = repo.refs.resolve(f"refs/tags/{name}")
    if ref is None or ref.target is None:
        raise ObjectNotFound(f"refs/tags/{name}")
    obj = repo.read_object(ref.target)
    if not isinstance(obj, Tag) or not obj.signatures:
        raise TagNotSigned(name)
    verdict = ring.judge_bytes(obj.signed_bytes(), obj.signatures, obj.time, required)
    if not verdict.ok:
        raise SignatureInvalid(f"tag {name}", "; ".join(verdict.problems()))
    return TagVerdict(name, ref.target, obj.object, verdict)


# --- rotations ----------------------------------------------------------------------


def record_rotation(repo: Repo, record: SignedRecord) -> ObjectId:
    """Keep a rotation record (both signatures must verify) in the repository."""
    rotation = rotation_of(record)
    return _store(repo, ROTATIONS_PREFIX + rotation.old.hex(), record, "key rotation")


# --- supersessions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainLink:
    record: ObjectId
    supersession: Supersession
    verdict: Verdict


def supersede(
    repo: Repo,
    old: ObjectId,
    new: ObjectId,
    *,
    kind: SupersessionType,
    reason: str,
    keys: Sequence[SigningKey],
    now: int | None = None,
) -> ObjectId:
    """Record that ``new`` replaces ``old`` and why, signed by ``keys``; the epoch is one
    more than the record that made ``old`` (1 when ``old`` replaced nothing)."""
    for oid in (old, new):
        if not repo.has_object(oid):
            raise ObjectNotFound(oid.hex)
    if old == new:
        raise SupersessionInvalid(old.hex, "an object cannot replace itself")
    ref = SUPERSESSIONS_PREFIX + old.hex
    if repo.refs.resolve(ref) is not None:
        raise SupersessionInvalid(old.hex, "it is already superseded; supersede its successor")
    previous = _made_by(repo, old)
    epoch = 1 if previous is None else supersession_of(read_record(repo, previous)).epoch + 1
    stamp = int(_time.time()) if now is None else now
    record = supersession_record(
        old, new, epoch=epoch, kind=kind, reason=reason, previous=previous, time=stamp, keys=keys
    )
    oid = repo.write_blob(record.encode())
    repo.update_ref(ref, oid, None, message=f"supersede {old.short()} by {new.short()}")
    return oid


def _made_by(repo: Repo, oid: ObjectId) -> ObjectId | None:
    """The supersession record whose ``by`` is ``oid``, if any."""
    for ref in repo.list_refs(SUPERSESSIONS_PREFIX):
        if ref.target is None:
            continue
        try:
            s = supersession_of(read_record(repo, ref.target))
        except (MalformedObject, ValueError):
            continue
        if s.by == oid:
            return ref.target
    return None


def supersession_chain(repo: Repo, start: ObjectId, ring: Keyring) -> list[ChainLink]:
    """The amendment chain from ``start`` (the first object) forward, each link judged;
    SupersessionInvalid when a link is malformed, does not follow the one before
    (epoch, ``previous``) or is not validly signed by a trusted key."""
    links: list[ChainLink] = []
    current = start
    seen = {start}
    while True:
        ref = repo.refs.resolve(SUPERSESSIONS_PREFIX + current.hex)
        if ref is None or ref.target is None:
            return links
        try:
            record = read_record(repo, ref.target)
            s = supersession_of(record)
        except (MalformedObject, ValueError) as exc:
            raise SupersessionInvalid(current.hex, str(exc)) from exc
        expected_prev = links[-1].record if links else None
        if s.supersedes != current:
            raise SupersessionInvalid(current.hex, "the record supersedes another object")
        if links and (s.epoch != links[-1].supersession.epoch + 1 or s.previous != expected_prev):
            raise SupersessionInvalid(current.hex, f"epoch {s.epoch} does not follow the chain")
        verdict = record.judge(ring)
        if not verdict.ok:
            raise SupersessionInvalid(current.hex, "; ".join(verdict.problems()))
        links.append(ChainLink(ref.target, s, verdict))
        if s.by in seen:
            raise SupersessionInvalid(s.by.hex, "the chain loops")
        seen.add(s.by)
        current = s.by


__all__ = [
    "ATTESTATIONS_PREFIX",
    "IMAGES_PREFIX",
    "ROTATIONS_PREFIX",
    "SUPERSESSIONS_PREFIX",
    "UNSIGNED_IMAGE",
    "ChainLink",
    "TagVerdict",
    "check_plan_images",
    "image_hex",
    "image_verdict",
    "keyring",
    "pinned_key",
    "read_record",
    "record_rotation",
    "sign_image",
    "supersede",
    "supersession_chain",
    "verify_tag",
]
