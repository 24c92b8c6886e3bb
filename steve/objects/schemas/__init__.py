"""Manifest schemas (pydantic; imported only by commands that need them).

``SCHEMAS`` maps each manifest kind to its body model; :func:`validate`
checks a draft and returns the model, raising
:class:`~steve.errors.ManifestInvalid` with (field path, rule) pairs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from steve.errors import InvalidInput
from steve.objects.model import ObjectType
from steve.objects.schemas.common import ManifestBody, validate_body
from steve.objects.schemas.design import DesignManifest
from steve.objects.schemas.plan import PlanManifest
from steve.objects.schemas.receipts import BuildReceipt, DeployReceipt, TestCertificate
from steve.objects.schemas.research import ResearchManifest

SCHEMAS: dict[ObjectType, type[ManifestBody]] = {
    ObjectType.DESIGN: DesignManifest,
    ObjectType.RESEARCH: ResearchManifest,
    ObjectType.PLAN: PlanManifest,
    ObjectType.BUILD_RECEIPT: BuildReceipt,
    ObjectType.TEST_CERTIFICATE: TestCertificate,
    ObjectType.DEPLOY_RECEIPT: DeployReceipt,
}


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
    "SCHEMAS",
    "BuildReceipt",
    "DeployReceipt",
    "DesignManifest",
    "ManifestBody",
    "PlanManifest",
    "ResearchManifest",
    "TestCertificate",
    "json_schema",
    "schema_for",
    "validate",
]
