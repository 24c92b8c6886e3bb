"""CycloneDX SBOMs (JSON, spec 1.6) through ``cyclonedx-python-lib``.

One SBOM describes one subject: the artifact set of a build receipt or a test
certificate (every output file, with its SHA-256 and BLAKE3), or an image STEVE
built (its id, the base it came ``FROM`` and the files of its build context).
The bytes are reproducible: the serial number is a UUID5 of the subject, the
timestamp the subject's own time, so the same subject always yields the same
SBOM (and the same object id).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.output.json import JsonV1Dot6

SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
_NAMESPACE = uuid.UUID("5b7f7f3e-2f0e-5d4c-9c1e-5354455645f1")  # STEVE's UUID5 namespace


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One file of an artifact set: its path, size and content digests (hex)."""

    path: str
    size: int
    sha256: str
    blake3: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    id: str  # sha256:<hex>
    base: str  # what the Dockerfile starts FROM ("scratch", a pinned image, ...)
    tags: tuple[str, ...] = ()


def make_sbom(
    subject: str,
    files: Sequence[FileDigest],
    *,
    time: int,
    kind: str,
    image: ImageInfo | None = None,
    images: Sequence[str] = (),
) -> bytes:
    """The SBOM of ``subject`` (a ``steve:<id>`` or ``docker-image:sha256:<hex>`` name) as
    CycloneDX JSON bytes.  ``kind``: ``artifacts`` or ``image``; ``images``: the
    pinned images the artifacts were built in (components of type container)."""
    root = Component(
        name=subject,
        type=ComponentType.CONTAINER if image is not None else ComponentType.APPLICATION,
        bom_ref=subject,
        properties=[Property(name="steve:sbom-kind", value=kind)],
    )
    if image is not None:
        root.hashes.add(HashType(alg=HashAlgorithm.SHA_256, content=_hex(image.id)))
        root.properties.add(Property(name="steve:image-base", value=image.base))
        for tag in image.tags:
            root.properties.add(Property(name="steve:image-tag", value=tag))
    # in the library's own order (containers before files, then by name), so building
    # its sorted sets costs one comparison per component, not n log n expensive ones
    children: list[Component] = [
        Component(
            name=ref,
            type=ComponentType.CONTAINER,
            bom_ref=f"image:{_hex(ref)}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=_hex(ref))],
        )
        for ref in sorted(set(images))
    ]
    if image is not None and image.base != "scratch":
        children.append(
            Component(name=image.base, type=ComponentType.CONTAINER, bom_ref="base:" + image.base)
        )
    children += [
        Component(
            name=f.path,
            type=ComponentType.FILE,
            bom_ref=f"file:{f.path}",
            hashes=[
                HashType(alg=HashAlgorithm.SHA_256, content=f.sha256),
                HashType(alg=HashAlgorithm.BLAKE3, content=f.blake3),
            ],
            properties=[Property(name="steve:size", value=str(f.size))],
        )
        for f in sorted(files, key=lambda f: f.path)
    ]
    # the sets are built in one go (adding one by one re-sorts, which dominated the time)
    bom = Bom(
        serial_number=uuid.uuid5(_NAMESPACE, subject),
        components=children,
        dependencies=[
            Dependency(
                ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in children]
            ),
            *(Dependency(ref=c.bom_ref) for c in children),  # else the library adds them one
        ],  # by one at output, comparing each against the root's (quadratic in the files)
    )
    bom.metadata.timestamp = datetime.datetime.fromtimestamp(time, datetime.UTC)
    bom.metadata.component = root
    text: str = JsonV1Dot6(bom).output_as_string(indent=None, sort_keys=True)
    return text.encode()


def _hex(image: str) -> str:
    return image.rpartition("@")[2].removeprefix("sha256:")


__all__ = ["SBOM_MEDIA_TYPE", "FileDigest", "ImageInfo", "make_sbom"]
