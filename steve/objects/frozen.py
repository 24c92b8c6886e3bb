"""A frozen manifest as people and exports see it (``cat-manifest``, ``manifest.json``).

Kept in the objects layer so the git bridge and the porcelain render the
same dictionary and cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steve.objects.model import Manifest
from steve.objects.oid import ObjectId


@dataclass(frozen=True, slots=True)
class FrozenManifest:
    oid: ObjectId
    manifest: Manifest

    def to_dict(self) -> dict[str, Any]:
        """What ``cat-manifest`` prints: envelope fields plus the body, ids as hex."""
        m = self.manifest
        return {
            "id": self.oid.hex,
            "kind": m.kind.value,
            "schema_version": m.version,
            "parents": [p.hex for p in m.parents],
            "links": [link.hex for link in m.links],
            "frozen_at": m.time,
            "tz": m.tz,
            "body": m.body,
        }
