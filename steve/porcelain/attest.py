"""``steve attest REV``: SLSA provenance for a build receipt or a test certificate.

The attestation is an in-toto Statement v1 whose predicate is SLSA Provenance v1,
serialised as JSON and wrapped in a DSSE envelope signed by the signing identity
(:mod:`steve.trust.dsse`):

* **subjects**: the receipt or certificate itself (``steve:<id>``; its STEVE id
  *is* the BLAKE3 of its stored bytes) and every file of its artifact set (the
  output trees of the receipt, or of every receipt the certificate names), each
  with ``sha256`` and ``blake3`` of its content;
* **buildDefinition**: ``buildType`` :data:`BUILD_TYPE_STEP` or
  :data:`BUILD_TYPE_CERTIFICATE` (documented in docs/trust.md),
  ``externalParameters`` (plan, node, command, image, inputs),
  ``internalParameters`` (action key, work directory, timeout, container policy,
  the names of the environment variables), ``resolvedDependencies`` (the image
  by digest, every input by its STEVE id, the plan, and the SBOM);
* **runDetails**: ``builder.id`` :data:`BUILDER_ID`, ``metadata`` (invocation id,
  start and finish times), ``byproducts`` (the log objects).

The SBOM (CycloneDX JSON, :mod:`steve.trust.sbom`) and the envelope are blobs,
named by ``refs/tags/trust/sbom/<id>`` and ``refs/tags/trust/attestations/<id>``
(``<id>`` the receipt's or certificate's), so ``gc`` keeps them and
``export-git --all`` carries them.  Everything in the statement comes from the
stored records, so attesting twice yields the same bytes.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from steve import __version__
from steve.errors import (
    AttestationInvalid,
    AttestationMalformed,
    CorruptObject,
    MalformedObject,
    NotAttestable,
    ObjectNotFound,
    SbomFailed,
)
from steve.objects.model import Mode, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import BuildReceipt
from steve.porcelain.records import read_certificate, read_receipt
from steve.porcelain.trust import ATTESTATIONS_PREFIX
from steve.repo import Repo
from steve.trust.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, parse_envelope, sign_envelope
from steve.trust.keys import SigningKey
from steve.trust.sbom import SBOM_MEDIA_TYPE, FileDigest, ImageInfo, make_sbom

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE_STEP = "urn:steve:build-type:container-step:v1"
BUILD_TYPE_CERTIFICATE = "urn:steve:build-type:test-certificate:v1"
BUILDER_ID = "urn:steve:builder:local-container-engine"
SBOM_PREFIX = "refs/tags/trust/sbom/"


@dataclass(frozen=True, slots=True)
class Attestation:
    subject: ObjectId  # the receipt or certificate attested
    kind: ObjectType
    envelope: ObjectId  # blob: the DSSE envelope (JSON)
    sbom: ObjectId  # blob: the CycloneDX SBOM (JSON)
    ref: str
    data: bytes  # the envelope's bytes
    subjects: int  # how many subjects the statement names


def _rfc3339(t: int) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digests(chunks: Iterator[bytes]) -> tuple[int, str, str]:
    sha, b3, size = hashlib.sha256(), blake3.blake3(), 0
    for chunk in chunks:
        sha.update(chunk)
        b3.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest(), b3.hexdigest()


def artifact_files(repo: Repo, outputs: dict[str, str], prefix: str = "") -> list[FileDigest]:
    """Every file of the output trees (or blobs) ``outputs``, under ``prefix``
    (SbomFailed when one is missing or damaged in the store)."""
    try:
        return _artifact_files(repo, outputs, prefix)
    except (ObjectNotFound, CorruptObject, MalformedObject) as exc:
        raise SbomFailed(prefix.rstrip("/") or "outputs", f"{exc.message}: {exc.detail}") from exc


def _artifact_files(repo: Repo, outputs: dict[str, str], prefix: str) -> list[FileDigest]:
    files: list[FileDigest] = []
    for name, hex_id in sorted(outputs.items()):
        oid = ObjectId.from_hex(hex_id)
        if repo.object_type(oid) is ObjectType.BLOB:
            size, sha, b3 = _digests(repo.iter_content(oid))
            files.append(FileDigest(f"{prefix}{name}", size, sha, b3))
            continue
        for entry in repo.ls_tree(oid, recursive=True, prefix=f"{prefix}{name}/"):
            if entry.type is ObjectType.BLOB and entry.mode is not Mode.SYMLINK:
                size, sha, b3 = _digests(repo.iter_content(entry.oid))
                files.append(FileDigest(entry.path, size, sha, b3))
    return files


def _object_subject(repo: Repo, oid: ObjectId, kind: ObjectType) -> dict[str, Any]:
    raw = repo.read_raw(oid)
    return {
        "name": f"steve:{kind.value}:{oid.hex}",
        "digest": {"sha256": hashlib.sha256(raw).hexdigest(), "blake3": oid.hex},
    }


def _file_subject(f: FileDigest) -> dict[str, Any]:
    return {"name": f.path, "digest": {"sha256": f.sha256, "blake3": f.blake3}}


def _image_dependency(image: str) -> dict[str, Any]:
    digest = image.rpartition("@")[2]
    return {
        "name": "image",
        "uri": f"docker-image:{image}",
        "digest": {"sha256": digest.removeprefix("sha256:")},
    }


def _steve_dependency(name: str, hex_id: str) -> dict[str, Any]:
    return {"name": name, "uri": f"steve:{hex_id}", "digest": {"steve": hex_id}}


def _sbom_dependency(oid: ObjectId, data: bytes) -> dict[str, Any]:
    return {
        "name": "sbom",
        "uri": f"steve:{oid.hex}",
        "mediaType": SBOM_MEDIA_TYPE,
        "digest": {
            "sha256": hashlib.sha256(data).hexdigest(),
            "blake3": blake3.blake3(data).hexdigest(),
        },
    }


def _step_parts(receipt: BuildReceipt) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    external = {
        "plan": receipt.plan,
        "node": receipt.node,
        "command": list(receipt.command),
        "image": receipt.image,
        "inputs": dict(sorted(receipt.inputs.items())),
        "declaredOutputs": list(receipt.declared_outputs),
    }
    internal = {
        "actionKey": receipt.action_key,
        "workdir": receipt.workdir,
        "timeoutMs": receipt.timeout_ms,
        "policy": None if receipt.policy is None else receipt.policy.model_dump(mode="json"),
        "grants": [g.model_dump(mode="json") for g in receipt.grants],
        "envNames": sorted(receipt.env),  # names only: values may be sensitive
        "exitStatus": receipt.exit_status,
    }
    deps = [_image_dependency(receipt.image), _steve_dependency("plan", receipt.plan)]
    deps += [_steve_dependency(f"input:{n}", i) for n, i in sorted(receipt.inputs.items())]
    return external, internal, deps


def statement_for(repo: Repo, oid: ObjectId) -> tuple[dict[str, Any], bytes]:
    """(in-toto statement without its SBOM dependency, SBOM bytes) for the receipt or
    certificate ``oid`` (NotAttestable for any other object)."""
    kind = repo.object_type(oid)
    subjects = [_object_subject(repo, oid, kind)]
    images: list[str] = []
    if kind is ObjectType.BUILD_RECEIPT:
        receipt = read_receipt(repo, oid)
        files = artifact_files(repo, receipt.outputs)
        external, internal, deps = _step_parts(receipt)
        images.append(receipt.image)
        build_type = BUILD_TYPE_STEP
        started, finished = receipt.started_at, receipt.finished_at
        byproducts = [
            {"name": f"log:{ref.stream}", "uri": f"steve:{ref.blob}", "digest": {"steve": ref.blob}}
            for ref in receipt.logs
        ]
    elif kind is ObjectType.TEST_CERTIFICATE:
        cert = read_certificate(repo, oid)
        receipts = list(dict.fromkeys([*cert.builds, *(r.receipt for r in cert.results)]))
        files, deps = [], []
        started = finished = repo.read_object(oid).time  # type: ignore[union-attr]
        for hex_id in receipts:
            receipt = read_receipt(repo, ObjectId.from_hex(hex_id))
            files += artifact_files(repo, receipt.outputs, prefix=f"{receipt.node}/")
            deps.append(_steve_dependency(f"receipt:{receipt.node}", hex_id))
            if receipt.image not in images:
                images.append(receipt.image)
                deps.append(_image_dependency(receipt.image))
            started = min(started, receipt.started_at)
        external = {
            "verdict": cert.verdict,
            "builds": list(cert.builds),
            "results": [
                {"node": r.node, "receipt": r.receipt, "status": r.status} for r in cert.results
            ],
        }
        internal = {"policy": cert.policy.model_dump(mode="json")}
        build_type = BUILD_TYPE_CERTIFICATE
        byproducts = [_steve_dependency("evidence", e) for e in cert.evidence]
    else:
        raise NotAttestable(oid.hex, kind.value)
    subjects += [_file_subject(f) for f in sorted(files, key=lambda f: f.path)]
    deps += _image_sbom_dependencies(repo, images)
    sbom = make_sbom(f"steve:{oid.hex}", files, time=finished, kind="artifacts", images=images)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PROVENANCE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"steve": __version__}},
                "metadata": {
                    "invocationId": f"steve:{oid.hex}",
                    "startedOn": _rfc3339(started),
                    "finishedOn": _rfc3339(finished),
                },
                "byproducts": byproducts,
            },
        },
    }
    return statement, sbom


def image_sbom_ref(image: str) -> str:
    return f"{SBOM_PREFIX}images/{image.rpartition('@')[2].removeprefix('sha256:')}"


def _dockerfile_base(context: Path) -> str:
    """What the Dockerfile in ``context`` starts its last stage ``FROM``."""
    base = "unknown"
    try:
        text = (context / "Dockerfile").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return base
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            base = next((w for w in words[1:] if not w.startswith("--")), base)
    return base


def context_files(context: Path) -> list[FileDigest]:
    """Every regular file of a build context (symlinks are not followed)."""
    files: list[FileDigest] = []
    for path in sorted(context.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as fh:
            size, sha, b3 = _digests(iter(lambda: fh.read(1 << 20), b""))
        files.append(FileDigest(path.relative_to(context).as_posix(), size, sha, b3))
    return files


def record_image_sbom(
    repo: Repo, image: str, tags: Sequence[str], context: Path, *, now: int
) -> ObjectId:
    """Store the SBOM of an image STEVE built from ``context`` (its id, its base, the
    context's files) under ``refs/tags/trust/sbom/images/<hex>``; returns the blob id."""
    info = ImageInfo(image, _dockerfile_base(context), tuple(tags))
    sbom = make_sbom(
        f"docker-image:{image}", context_files(context), time=now, kind="image", image=info
    )
    return _store_blob_ref(repo, image_sbom_ref(image), sbom, f"sbom image {image}")


def _image_sbom_dependencies(repo: Repo, images: Sequence[str]) -> list[dict[str, Any]]:
    deps = []
    for image in images:
        ref = repo.refs.resolve(image_sbom_ref(image))
        if ref is not None and ref.target is not None:
            dep = _sbom_dependency(ref.target, repo.read_blob(ref.target))
            dep["name"] = f"sbom:{image}"
            deps.append(dep)
    return deps


def _store_blob_ref(repo: Repo, ref: str, data: bytes, message: str) -> ObjectId:
    oid = repo.write_blob(data)
    current = repo.refs.resolve(ref)
    old = None if current is None else current.target
    if old != oid:
        repo.update_ref(ref, oid, old, message=message)
    return oid


def attest(repo: Repo, rev: str | ObjectId, keys: Sequence[SigningKey]) -> Attestation:
    """Write the signed attestation of ``rev`` (see the module docstring): the SBOM and
    the envelope, and their refs, in one transaction."""
    oid = rev if isinstance(rev, ObjectId) else repo.rev_parse(rev)
    kind = repo.object_type(oid)
    statement, sbom = statement_for(repo, oid)
    sbom_id = Repo.hash_stream(io.BytesIO(sbom))
    statement["predicate"]["buildDefinition"]["resolvedDependencies"].append(
        _sbom_dependency(sbom_id, sbom)
    )
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    data = sign_envelope(payload, IN_TOTO_PAYLOAD_TYPE, keys).to_json()
    ref = ATTESTATIONS_PREFIX + oid.hex
    _, blob = repo.write_named_blobs(
        [(SBOM_PREFIX + oid.hex, sbom), (ref, data)], message=f"attest {oid.short()}"
    )
    return Attestation(oid, kind, blob, sbom_id, ref, data, len(statement["subject"]))


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    statement: dict[str, Any]
    keys: tuple[bytes, ...]  # the keys whose signature verified


def verify_attestation(
    data: bytes, keys: Sequence[bytes], *, source: str = "attestation"
) -> VerifiedAttestation:
    """Verify a DSSE envelope offline with ``keys`` (every key must have signed) and
    return its in-toto statement.  AttestationMalformed, AttestationInvalid."""
    try:
        envelope: Envelope = parse_envelope(data)
    except ValueError as exc:
        raise AttestationMalformed(source, str(exc)) from exc
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise AttestationMalformed(source, f"payloadType is {envelope.payload_type!r}")
    if not envelope.signatures:
        raise AttestationInvalid(source, "the envelope has no signature")
    verified = envelope.verified_by(keys)
    missing = [k for k in keys if k not in verified]
    if not keys or missing:
        shown = ", ".join(k.hex()[:16] for k in missing) or "no key given"
        raise AttestationInvalid(source, f"no valid signature by {shown}")
    try:
        statement = json.loads(envelope.payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AttestationMalformed(source, f"the payload is not JSON: {exc}") from exc
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise AttestationMalformed(source, "the payload is not an in-toto Statement v1")
    return VerifiedAttestation(statement, tuple(verified))


__all__ = [
    "ATTESTATIONS_PREFIX",
    "BUILDER_ID",
    "BUILD_TYPE_CERTIFICATE",
    "BUILD_TYPE_STEP",
    "PROVENANCE_TYPE",
    "SBOM_PREFIX",
    "STATEMENT_TYPE",
    "Attestation",
    "VerifiedAttestation",
    "artifact_files",
    "attest",
    "context_files",
    "image_sbom_ref",
    "record_image_sbom",
    "statement_for",
    "verify_attestation",
]
