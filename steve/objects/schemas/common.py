"""Shared pieces of the manifest schemas: strict base model, id types, error mapping.

Every schema is a frozen pydantic model that forbids unknown fields and
coerces nothing (``strict=True``): ``"1"`` is not an integer, ``1.0`` is not
an integer, ``true`` is not ``1``.  Floats appear nowhere; quantities are
integers in stated units (milliseconds, bytes, percent*100).  Object ids in a
body are 64 lowercase hex digits.

Validation has two layers: pydantic checks each field's type and format,
then :meth:`ManifestBody.problems` checks the rules that span fields (unique
ids, axioms point at hard constraints, the plan is an acyclic DAG, ...).
Both report ``(field path, rule)`` pairs, e.g. ``("constraints[2].hard",
"bool_type: Input should be a valid boolean")``, and :func:`validate_body`
turns them into one :class:`~steve.errors.ManifestInvalid`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from steve.errors import ManifestInvalid

OID_PATTERN = r"^[0-9a-f]{64}$"
DIGEST_PATTERN = r"^([a-z0-9][a-z0-9._/:-]*@)?sha256:[0-9a-f]{64}$"
MAX_INT = 2**63 - 1

Oid = Annotated[str, Field(pattern=OID_PATTERN, description="object id: 64 lowercase hex")]
IMAGE_FORMS = (
    "sha256:<64 hex> (the image id, see `steve image ls`) or name@sha256:<64 hex> "
    "(a name for people, the same id)"
)
_DIGEST = re.compile(DIGEST_PATTERN)


def _pinned_image(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "{value} is not a pinned image; give {forms}",
            {"value": repr(value[:200]), "forms": IMAGE_FORMS},
        )
    return value


ImageDigest = Annotated[
    str,
    Field(
        max_length=400,
        description="container image pinned by digest: [name@]sha256:<64 hex>",
        json_schema_extra={"pattern": DIGEST_PATTERN},
    ),
    AfterValidator(_pinned_image),
]
Timestamp = Annotated[int, Field(ge=0, le=MAX_INT, description="unix time, seconds")]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=100_000)]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]

Problem = tuple[str, str]


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, (list, tuple)):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


class Strict(BaseModel):
    """Base of every schema model: frozen, strict, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _utf8_only(cls, value: Any) -> Any:
        if _has_surrogate(value):
            raise ValueError("text must be valid Unicode (no lone surrogates)")
        return value


class ManifestBody(Strict):
    """Base of the six manifest bodies."""

    KIND: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1
    # Fields (dotted through nested models/lists) whose values are object ids.
    ID_FIELDS: ClassVar[tuple[str, ...]] = ()

    amends: Oid | None = Field(
        default=None, description="id of the manifest this one amends (set by freeze --amends)"
    )

    def problems(self) -> list[Problem]:
        """Cross-field rule violations as (field path, rule); empty when valid."""
        return []

    def referenced_ids(self) -> Iterator[tuple[str, str, str]]:
        """Every (field spec, field path, hex id) the body refers to (``amends`` included)."""
        if self.amends is not None:
            yield "amends", "amends", self.amends
        for spec in self.ID_FIELDS:
            for path, hex_id in _walk(self, spec.split("."), ""):
                yield spec, path, hex_id


def _walk(value: Any, parts: list[str], path: str) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, parts, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _walk(value[key], parts, f"{path}.{key}")
        return
    if not parts:
        if isinstance(value, str):
            yield path, value
        return
    head, rest = parts[0], parts[1:]
    yield from _walk(getattr(value, head), rest, f"{path}.{head}" if path else head)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """pydantic's loc tuple as a field path: ``constraints[2].hard``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def duplicates(values: list[str]) -> set[str]:
    seen: set[str] = set()
    dup: set[str] = set()
    for v in values:
        if v in seen:
            dup.add(v)
        seen.add(v)
    return dup


def unique_ids(items: list[Any], field: str, attr: str = "id") -> list[Problem]:
    """Problems for repeated ``attr`` values among ``items`` (reported at each repeat)."""
    seen: set[str] = set()
    out: list[Problem] = []
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            out.append((f"{field}[{i}].{attr}", f"unique: {value!r} is used more than once"))
        seen.add(value)
    return out


def validate_body(model: type[ManifestBody], draft: Mapping[str, Any]) -> ManifestBody:
    """Validate ``draft`` against ``model`` (fields, then cross-field rules)."""
    kind = model.KIND
    if not isinstance(draft, Mapping):
        raise ManifestInvalid(kind, [("", "type: a manifest draft must be a mapping")])
    try:
        body = model.model_validate(dict(draft))
    except ValidationError as exc:
        problems = [
            (format_loc(tuple(err["loc"])), f"{err['type']}: {err['msg']}")
            for err in exc.errors(include_url=False)
        ]
        raise ManifestInvalid(kind, problems) from None
    cross = body.problems()
    if cross:
        raise ManifestInvalid(kind, cross)
    return body
