"""Typed errors only, whatever the input: fixtures, budget scopes, stored exchanges."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from steve.errors import BadBudgetScope, BadFixture, MalformedObject
from steve.llm.budget import check_scope
from steve.llm.scripted import parse_fixture
from steve.llm.types import Request, Response
from steve.objects import cbor

yaml_like = st.one_of(
    st.text(max_size=200),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=10,
    ).map(lambda v: __import__("json").dumps(v)),
)


@given(yaml_like)
@example("answers: [{text: 1}]")
@example("- {text: hi, usage: {input_tokens: -1, output_tokens: 0}}")
@example("- {tool_use: {name: f, input: [1]}}")
def test_a_fixture_parses_or_is_refused_with_bad_fixture(text: str) -> None:
    try:
        answers = parse_fixture(text, "<t>")
    except BadFixture:
        return
    assert all(a.text or a.tool_use for a in answers)


@given(st.text(max_size=40))
@example("stage:plan")
@example("run:")
def test_a_budget_scope_is_valid_or_refused(text: str) -> None:
    try:
        scope = check_scope(text)
    except BadBudgetScope:
        return
    assert check_scope(scope) == scope  # canonical form is stable
    assert scope.split(":")[0] in ("project", "run", "stage", "node")


@given(st.binary(max_size=200))
def test_garbage_is_never_a_request_or_response(data: bytes) -> None:
    for kind in (Request, Response):
        with pytest.raises(MalformedObject):
            kind.from_canonical(data)


@given(st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=5), max_size=8))
def test_a_wrong_map_is_a_malformed_request(value: dict[str, object]) -> None:
    data = (
        cbor.encode(value)
        if all(abs(v) < 2**63 for v in value.values() if isinstance(v, int))
        else b""
    )
    with pytest.raises(MalformedObject):
        Request.from_canonical(data)


SECRET = 'p"a\\ss\nw0rd'


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    return []


json_with_secret = st.recursive(
    st.one_of(
        st.integers(),
        st.booleans(),
        st.none(),
        st.builds(lambda a, b: a + SECRET + b, st.text(max_size=5), st.text(max_size=5)),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.text(max_size=5), st.builds(lambda a: a + SECRET, st.text(max_size=3))),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


@given(json_with_secret)
def test_no_secret_survives_in_any_json_string(value: object) -> None:
    import json

    from steve.llm.session import redact_json
    from tests.llm.conftest import make_redactor

    redactor = make_redactor({"ODD": SECRET.encode()})
    text = json.dumps(value, ensure_ascii=False)
    out = redact_json(redactor, text)
    assert all(SECRET not in s for s in _strings(json.loads(out)))
    assert json.dumps(SECRET)[1:-1] not in out and SECRET not in out
