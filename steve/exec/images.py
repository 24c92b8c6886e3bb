"""Local images without a registry: import a rootfs tarball, build a context, look up.

Nothing is ever pulled.  A built or imported image is pinned by its id
(``sha256:<64 hex>``, the digest of its config) and its rootfs diff ids are
recorded with it; steps refer to images by id only, a name alone is refused
(:class:`~steve.errors.ImageNotPinned`).  ``name@sha256:<id>`` is the same pin
with a name for people: it resolves to the image with that id.  ``docker import`` ids are not
reproducible (the engine stamps a creation time), so pin what you get.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors

from steve.errors import ImageBuildFailed, ImageNotFound, ImageNotPinned, InvalidInput
from steve.exec.base import engine_call

if TYPE_CHECKING:
    from steve.exec.engine import Engine

IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
# [name@]sha256:<64 hex> as plans accept it (steve.objects.schemas.common.DIGEST_PATTERN)
PINNED_REF = re.compile(r"^(?:[a-z0-9][a-z0-9._/:-]*@)?sha256:[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A local image: id (pin this), tags, rootfs diff ids, size, creation time."""

    id: str
    tags: tuple[str, ...]
    diff_ids: tuple[str, ...]
    size: int
    created: str
    repo_digests: tuple[str, ...] = ()

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> ImageRecord:
        rootfs = attrs.get("RootFS") or {}
        return cls(
            id=str(attrs["Id"]),
            tags=tuple(str(t) for t in attrs.get("RepoTags") or ()),
            diff_ids=tuple(str(d) for d in rootfs.get("Layers") or ()),
            size=int(attrs.get("Size") or 0),
            created=str(attrs.get("Created", "")),
            repo_digests=tuple(str(d) for d in attrs.get("RepoDigests") or ()),
        )


def check_pinned(ref: str) -> str:
    """``ref`` if it is pinned (``[name@]sha256:<64 hex>``); else ImageNotPinned."""
    if not PINNED_REF.fullmatch(ref):
        raise ImageNotPinned(ref)
    return ref


class Images:
    """The engine's local images (``engine.images``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, ref: str) -> ImageRecord:
        """The image pinned by ``ref``: ``sha256:<id>`` (its id) or ``name@sha256:<hex>``.

        ``name@sha256:<hex>`` resolves to the local image whose id is ``sha256:<hex>``
        (the form plans use: a name for people, the id as the pin), else to the image
        whose repository digests hold ``ref`` (an image that came from a registry).
        A name alone raises ImageNotPinned, an absent image ImageNotFound."""
        check_pinned(ref)
        name, _, digest = ref.rpartition("@")
        record = self._inspect(digest)
        if record is not None and record.id == digest:
            return record
        if name:
            record = self._inspect(ref)
            if record is not None and ref in record.repo_digests:
                return record
        # the engine also resolves id prefixes and names; a pin must be exact
        raise ImageNotFound(ref)

    def _inspect(self, ref: str) -> ImageRecord | None:
        with engine_call(self._engine.where, "inspect image"):
            try:
                attrs = self._engine.api.inspect_image(ref)  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                return None
        return ImageRecord.from_attrs(attrs)

    def list(self) -> list[ImageRecord]:
        """Every local image, newest first."""
        with engine_call(self._engine.where, "list images"):
            summaries = self._engine.api.images()
            inspect = self._engine.api.inspect_image
            records = [inspect(s["Id"]) for s in summaries]  # type: ignore[no-untyped-call]
        out = [ImageRecord.from_attrs(a) for a in records]
        return sorted(out, key=lambda r: (r.created, r.id), reverse=True)

    def import_tarball(self, tarball: Path, name: str) -> ImageRecord:
        """Import a rootfs tarball (like ``docker import``) as ``name``; returns its record."""
        repository, tag = _split_name(name)
        if not tarball.is_file():
            raise InvalidInput("cannot read tarball", f"{tarball} is not a file")
        with engine_call(self._engine.where, "import image"):
            raw: Any = self._engine.api.import_image_from_file(
                str(tarball), repository=repository, tag=tag
            )
        image_id = None
        for doc in _json_lines(raw):
            if "error" in doc or "errorDetail" in doc:
                raise ImageBuildFailed(str(tarball), str(doc.get("error") or doc))
            status = str(doc.get("status", ""))
            if IMAGE_ID.fullmatch(status):
                image_id = status
        if image_id is None:
            raise ImageBuildFailed(str(tarball), "the engine reported no image id")
        return self.get(image_id)

    def build(self, context: Path, tag: str | None = None) -> ImageRecord:
        """Build the Dockerfile in ``context`` offline (no pulls, RUN without network)."""
        if not (context / "Dockerfile").is_file():
            raise InvalidInput("not a build context", f"{context} has no Dockerfile")
        if tag is not None:
            _split_name(tag)
        image_id = None
        with engine_call(self._engine.where, "build image"):
            stream = self._engine.api.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                network_mode="none",
                decode=True,
            )
            for doc in stream:
                if "error" in doc or "errorDetail" in doc:
                    raise ImageBuildFailed(str(context), str(doc.get("error") or doc).strip())
                aux = doc.get("aux")
                if isinstance(aux, dict) and IMAGE_ID.fullmatch(str(aux.get("ID", ""))):
                    image_id = str(aux["ID"])
        if image_id is None:
            raise ImageBuildFailed(str(context), "the engine reported no image id")
        return self.get(image_id)


_NAME = re.compile(r"^[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")


def _split_name(name: str) -> tuple[str, str]:
    if not _NAME.fullmatch(name) or "@" in name:
        raise InvalidInput("invalid image name", f"{name!r} (lowercase name[:tag])")
    repository, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "")
    return repository, tag or "latest"


def _json_lines(raw: Any) -> list[dict[str, Any]]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    out: list[dict[str, Any]] = []
    if isinstance(text, str):
        for line in text.splitlines():
            line = line.strip()
            if line:
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(doc, dict):
                    out.append(doc)
        return out
    for item in text:
        out.extend(_json_lines(item))
    return out
