"""Manifest schemas (pydantic; imported only by commands that need them).

``SCHEMAS`` maps each manifest kind to its body model; :func:`validate`
checks a draft and returns the model, raising
:class:`~steve.errors.ManifestInvalid` with (field path, rule) pairs.

Freeze writes the current version of each kind; older versions stay
readable: :func:`schema_for_version` gives the model a stored manifest was
written with (``OLDER_SCHEMAS``), and :func:`read_body` validates a stored
body with it and returns the current model (an older body upgraded, e.g. a
v1 build receipt's unlabelled logs labelled stdout and stderr).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from steve.errors import InvalidInput, ManifestInvalid
from steve.objects.model import ObjectType
from steve.objects.schemas.common import ManifestBody, validate_body
from steve.objects.schemas.design import DesignManifest
from steve.objects.schemas.plan import PlanManifest
from steve.objects.schemas.receipts import (
    BuildReceipt,
    BuildReceiptV1,
    DeployReceipt,
    DeployReceiptV1,
    TestCertificate,
)
from steve.objects.schemas.research import ResearchManifest, ResearchManifestV1

SCHEMAS: dict[ObjectType, type[ManifestBody]] = {
    ObjectType.DESIGN: DesignManifest,
    ObjectType.RESEARCH: ResearchManifest,
    ObjectType.PLAN: PlanManifest,
    ObjectType.BUILD_RECEIPT: BuildReceipt,
    ObjectType.TEST_CERTIFICATE: TestCertificate,
    ObjectType.DEPLOY_RECEIPT: DeployReceipt,
}


# Versions older than SCHEMAS' that stored manifests may still have (read only).
OLDER_SCHEMAS: dict[tuple[ObjectType, int], type[ManifestBody]] = {
    (ObjectType.BUILD_RECEIPT, 1): BuildReceiptV1,
    (ObjectType.DEPLOY_RECEIPT, 1): DeployReceiptV1,
    (ObjectType.RESEARCH, 1): ResearchManifestV1,
}


def schema_for_version(kind: ObjectType | str, version: int) -> type[ManifestBody] | None:
    """The model of ``kind`` at schema ``version`` (None: a version STEVE never wrote)."""
    model = schema_for(kind)
    if version == model.SCHEMA_VERSION:
        return model
    return OLDER_SCHEMAS.get((ObjectType(model.KIND), version))


def read_body(kind: ObjectType | str, version: int, body: Mapping[str, Any]) -> ManifestBody:
    """A stored body as the current model of its kind (validated with the model of its
    version, then upgraded)."""
    model = schema_for_version(kind, version)
    if model is None:
        current = schema_for(kind)
        raise ManifestInvalid(
            current.KIND,
            [("schema_version", f"version: v{version} unknown (knows v{current.SCHEMA_VERSION})")],
        )
    value = validate_body(model, body)
    if isinstance(value, BuildReceiptV1 | DeployReceiptV1 | ResearchManifestV1):
        return value.upgraded()
    return value


def schema_for(kind: ObjectType | str) -> type[ManifestBody]:
    try:
        return SCHEMAS[ObjectType(kind)]
    except (ValueError, KeyError):
        names = ", ".join(k.value for k in SCHEMAS)
        raise InvalidInput("unknown manifest kind", f"{kind!r} (known: {names})") from None


def validate(kind: ObjectType | str, draft: Mapping[str, Any]) -> ManifestBody:
    return validate_body(schema_for(kind), draft)


def json_schema(kind: ObjectType | str) -> str:
    """The JSON Schema of a kind's draft (pydantic's), as stable, sorted JSON."""
    model = schema_for(kind)
    schema = model.model_json_schema(by_alias=True)
    schema["$id"] = f"steve:{model.KIND}/v{model.SCHEMA_VERSION}"
    return json.dumps(schema, indent=2, sort_keys=True)


__all__ = [
    "OLDER_SCHEMAS",
    "SCHEMAS",
    "BuildReceipt",
    "BuildReceiptV1",
    "DeployReceipt",
    "DeployReceiptV1",
    "DesignManifest",
    "ManifestBody",
    "PlanManifest",
    "ResearchManifest",
    "ResearchManifestV1",
    "TestCertificate",
    "json_schema",
    "read_body",
    "schema_for",
    "schema_for_version",
    "validate",
]
