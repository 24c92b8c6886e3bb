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
turns them into one :class:`~steve.errors.ManifestInvalid`.  When fields fail,
the cross-field rules still run, on a salvaged body (every field that parsed,
broken ones as None), so one round reports everything; a rule on an unknown
field or enum value says which known name is near (``did you mean``), and an
integer time says it is unix seconds.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

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
TIME_DESCRIPTION = "unix time, seconds"
Timestamp = Annotated[int, Field(ge=0, le=MAX_INT, description=TIME_DESCRIPTION)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=100_000)]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]

Problem = tuple[str, str]


def _is_none(value: object) -> bool:
    return value is None


def Absent(description: str) -> Any:  # noqa: N802 (a Field factory, used like Field)
    """A field that is None by default and then *absent* from the stored body, so a body
    written before the field existed keeps its bytes and its id."""
    return Field(default=None, description=description, exclude_if=_is_none)


def _is_empty(value: object) -> bool:
    return not value


def OmitEmpty(factory: Any, description: str) -> Any:  # noqa: N802 (a Field factory)
    """A collection field that is empty by default and then *absent* from the stored
    body, so a body written before the field existed keeps its bytes and its id."""
    return Field(default_factory=factory, description=description, exclude_if=_is_empty)


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


class ModelExchange(Strict):
    """One request to a language model and its answer, each a blob of canonical CBOR
    (redacted before it was stored; see docs/llm.md)."""

    request: Oid = Field(description="blob id of the request")
    response: Oid = Field(description="blob id of the response")


class ModelProvenance(Strict):
    """The model exchanges a record came from, in order (repair rounds included)."""

    provider: Name
    model: Name
    exchanges: list[ModelExchange] = Field(min_length=1)


PROVENANCE_ID_FIELDS = ("provenance.exchanges.request", "provenance.exchanges.response")


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
        if value is None:  # a field that did not parse (see validate_body)
            continue
        if value in seen:
            out.append((f"{field}[{i}].{attr}", f"unique: {value!r} is used more than once"))
        seen.add(value)
    return out


def validate_body(model: type[ManifestBody], draft: Mapping[str, Any]) -> ManifestBody:
    """Validate ``draft`` against ``model`` (fields, then cross-field rules).

    Field errors do not hide cross-field errors: the rules also run on what
    parsed (:func:`salvage`), and report paths no field error names.
    """
    kind = model.KIND
    if not isinstance(draft, Mapping):
        raise ManifestInvalid(kind, [("", "type: a manifest draft must be a mapping")])
    try:
        body = model.model_validate(dict(draft))
    except ValidationError as exc:
        problems = [
            (format_loc(tuple(err["loc"])), explain(model, err))
            for err in exc.errors(include_url=False)
        ]
        named = {path for path, _ in problems}
        cross = [p for p in _cross_problems(salvage(model, draft)) if p[0] not in named]
        raise ManifestInvalid(kind, problems + cross) from None
    cross = body.problems()
    if cross:
        raise ManifestInvalid(kind, cross)
    return body


# --- explaining field errors ---------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    """``T`` from ``Annotated[T, ...]`` and from ``T | None``."""
    if get_origin(tp) is Annotated:
        return _unwrap(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        rest = [a for a in get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return _unwrap(rest[0])
    return tp


def _model_of(tp: Any) -> type[Strict] | None:
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, Strict) else None


def _item_of(tp: Any) -> Any:
    tp = _unwrap(tp)
    return get_args(tp)[0] if get_origin(tp) is list else None


def _field_named(model: type[Strict], name: str) -> FieldInfo | None:
    for attr, info in model.model_fields.items():
        if name in (attr, info.alias):
            return info
    return None


def _field_at(model: type[Strict], loc: tuple[int | str, ...]) -> FieldInfo | None:
    """The field a pydantic ``loc`` ends at (None past a list index or a dict key)."""
    tp: Any = model
    info: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            tp, info = _item_of(tp), None
            continue
        sub = _model_of(tp)
        info = None if sub is None else _field_named(sub, part)
        if info is None:
            return None
        tp = info.annotation
    return info


def _is_time(info: FieldInfo | None) -> bool:
    if info is None:
        return False
    if info.description == TIME_DESCRIPTION:
        return True
    return any(
        isinstance(m, FieldInfo) and m.description == TIME_DESCRIPTION
        for arg in get_args(info.annotation)
        for m in get_args(arg)[1:]
    )


def _as_unix(value: Any) -> int | None:
    """Unix seconds for a date, a datetime or an RFC 3339 string (UTC when naive)."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return int(value.timestamp())
    return None


def _near(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""


def explain(model: type[Strict], err: ErrorDetails) -> str:
    """One field error as ``type: message`` plus what helps fix it."""
    loc = tuple(err["loc"])
    rule = f"{err['type']}: {err['msg']}"
    if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
        parent = _parent_model(model, loc[:-1])
        if parent is not None:
            names = [info.alias or name for name, info in parent.model_fields.items()]
            rule += _near(loc[-1], names)
    elif err["type"] == "literal_error" and isinstance(err["input"], str):
        expected = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        rule += _near(err["input"], expected)
    elif _is_time(_field_at(model, loc)) and err["type"].startswith("int_"):
        seconds = _as_unix(err["input"])
        rule += ": a time is an integer of unix seconds"
        if seconds is not None:
            rule += f" ({err['input']} UTC: write {seconds})"
    return rule


def _parent_model(model: type[Strict], loc: tuple[int | str, ...]) -> type[Strict] | None:
    """The model whose fields a key at ``loc + (key,)`` would be among."""
    if not loc:
        return model
    above = _field_at(model, loc[:-1]) if isinstance(loc[-1], int) else _field_at(model, loc)
    if above is None:
        return None
    return _model_of(_item_of(above.annotation) if isinstance(loc[-1], int) else above.annotation)


# --- salvaging what parsed -----------------------------------------------------------

_ADAPTERS: dict[tuple[type[Strict], str], TypeAdapter[Any]] = {}


def _adapter(model: type[Strict], name: str, info: FieldInfo) -> TypeAdapter[Any]:
    key = (model, name)
    if key not in _ADAPTERS:
        tp = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        _ADAPTERS[key] = TypeAdapter(tp)
    return _ADAPTERS[key]


def salvage(model: type[Strict], raw: Any) -> Any:
    """An instance of ``model`` built from what in ``raw`` parses; broken fields are None.

    List items keep their positions (a broken item is salvaged field by
    field), so cross-field rules name the same paths as in the draft.  The
    result is for checking rules only: it is never stored.
    """
    data = raw if isinstance(raw, Mapping) else {}
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in data:
            values[name] = _salvage_value(model, name, info, data[key])
        elif info.is_required():
            values[name] = None
        else:
            values[name] = info.get_default(call_default_factory=True)
    return model.model_construct(**values)


def _salvage_value(model: type[Strict], name: str, info: FieldInfo, raw: Any) -> Any:
    try:
        return _adapter(model, name, info).validate_python(raw)
    except ValidationError:
        pass
    sub = _model_of(info.annotation)
    if sub is not None and isinstance(raw, Mapping):
        return salvage(sub, raw)
    item = _item_of(info.annotation)
    if item is not None and isinstance(raw, list):
        return [_salvage_item(item, x) for x in raw]
    return None


def _salvage_item(tp: Any, raw: Any) -> Any:
    sub = _model_of(tp)
    if sub is not None:
        return salvage(sub, raw)
    try:
        return TypeAdapter(tp).validate_python(raw)
    except ValidationError:
        return None


def _cross_problems(partial: ManifestBody) -> list[Problem]:
    """The cross-field rules on a salvaged body; none when a rule needs a broken field."""
    try:
        return partial.problems()
    except (TypeError, AttributeError, ValidationError):  # a rule read a field that is None
        return []
