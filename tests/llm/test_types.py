"""The canonical request and response: round trips, strictness, stable hashing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import MalformedObject
from steve.llm import record
from steve.llm.types import (
    Message,
    Request,
    Response,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from steve.objects import cbor

text = st.text(max_size=40)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    text,
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
json_objects = st.dictionaries(text, json_values, max_size=5)

blocks = st.one_of(
    st.builds(TextBlock, text),
    st.builds(ToolUseBlock.of, text, text, json_objects),
    st.builds(ToolResultBlock, text, text, st.booleans()),
)
messages = st.builds(
    Message, st.sampled_from(["user", "assistant"]), st.lists(blocks, max_size=3).map(tuple)
)
requests = st.builds(
    Request,
    provider=st.sampled_from(["anthropic", "openai", "scripted"]),
    model=text,
    messages=st.lists(messages, min_size=1, max_size=3).map(tuple),
    system=text,
    tools=st.lists(st.builds(Tool.of, text, text, json_objects), max_size=2).map(tuple),
    max_tokens=st.integers(1, 1 << 20),
    temperature_milli=st.one_of(st.none(), st.integers(0, 2000)),
    stop=st.lists(text, max_size=2).map(tuple),
)
responses = st.builds(
    Response,
    id=text,
    model=text,
    content=st.lists(blocks, max_size=3).map(tuple),
    stop_reason=st.one_of(st.none(), text),
    usage=st.builds(Usage, st.integers(0, 10**9), st.integers(0, 10**9)),
)


@given(requests)
def test_request_round_trips_through_its_canonical_form(req: Request) -> None:
    data = req.canonical()
    assert Request.from_canonical(data) == req
    assert cbor.encode(cbor.decode(data)) == data


@given(responses)
def test_response_round_trips_through_its_canonical_form(resp: Response) -> None:
    assert Response.from_canonical(resp.canonical()) == resp


@given(json_objects, st.randoms())
def test_request_id_is_stable_under_dict_ordering(schema: dict[str, object], rnd: object) -> None:
    """Tool schemas and tool inputs given with their keys in any order hash the same."""
    import random

    assert isinstance(rnd, random.Random)

    def shuffled(value: object) -> object:
        if isinstance(value, dict):
            items = list(value.items())
            rnd.shuffle(items)
            return {k: shuffled(v) for k, v in items}
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    def make(s: dict[str, object]) -> Request:
        return Request(
            "anthropic",
            "m",
            (Message("assistant", (ToolUseBlock.of("t1", "f", s),)), Message.user("go")),
            tools=(Tool.of("f", "does f", s),),
        )

    other = shuffled(schema)
    assert isinstance(other, dict)
    assert record.request_oid(make(schema)) == record.request_oid(make(other))


@given(requests, requests)
def test_different_requests_have_different_ids(a: Request, b: Request) -> None:
    assert (a == b) == (record.request_oid(a) == record.request_oid(b))


def test_every_field_changes_the_request_id() -> None:
    base = Request.simple("anthropic", "m", "hi", system="s")
    variants = [
        Request.simple("openai", "m", "hi", system="s"),
        Request.simple("anthropic", "m2", "hi", system="s"),
        Request.simple("anthropic", "m", "hi!", system="s"),
        Request.simple("anthropic", "m", "hi", system="s2"),
        Request.simple("anthropic", "m", "hi", system="s", max_tokens=7),
        Request("anthropic", "m", (Message.user("hi"),), "s", temperature_milli=0),
        Request("anthropic", "m", (Message.user("hi"),), "s", stop=("x",)),
        Request("anthropic", "m", (Message.user("hi"),), "s", tools=(Tool.of("t", "", {}),)),
    ]
    ids = {record.request_oid(r) for r in [base, *variants]}
    assert len(ids) == len(variants) + 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.update(extra=1),
        lambda v: v.update(v=2),
        lambda v: v.update(kind="other"),
        lambda v: v["parameters"].update(max_tokens="10"),
        lambda v: v["messages"][0].update(role="system"),
        lambda v: v["messages"][0]["content"].append({"type": "image"}),
        lambda v: v.update(messages=[]),
    ],
)
def test_a_malformed_request_value_is_refused(mutate: object) -> None:
    value = Request.simple("anthropic", "m", "hi").to_value()
    assert callable(mutate)
    mutate(value)
    with pytest.raises(MalformedObject):
        Request.from_value(value)


def test_request_bounds_are_checked() -> None:
    with pytest.raises(MalformedObject):
        Request("a", "m", ())
    with pytest.raises(MalformedObject):
        Request.simple("a", "m", "x", max_tokens=0)
    with pytest.raises(MalformedObject):
        Request("a", "m", (Message.user("x"),), temperature_milli=2001)
    with pytest.raises(MalformedObject):
        ToolUseBlock.of("i", "n", {"x": float("nan")})
