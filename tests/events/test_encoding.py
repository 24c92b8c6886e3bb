"""The event log's hand-built encodings equal the canonical CBOR they stand for."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import InvalidEvent
from steve.events.model import encode_payload
from steve.objects import cbor

scalars = st.one_of(
    st.text(max_size=40),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.booleans(),
    st.none(),
    st.integers(-(2**64), 2**64 - 1),
    st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -1, -24, -25, -257]),
)
keys = st.one_of(st.text(max_size=30), st.sampled_from(["a", "b", "aa", "é", "ab", "z" * 24]))


@given(st.dictionaries(keys, scalars, max_size=12))
def test_flat_payloads_encode_as_canonical_cbor(value: dict[str, Any]) -> None:
    data = encode_payload(value)
    assert data == cbor.encode(value) == cbor2.dumps(value, canonical=True)
    assert cbor.decode(data) == value


@given(
    st.dictionaries(
        keys,
        st.recursive(
            scalars,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        ),
        max_size=6,
    )
)
def test_nested_payloads_take_the_general_encoder(value: dict[str, Any]) -> None:
    assert encode_payload(value) == cbor.encode(value)


@pytest.mark.parametrize(
    "bad",
    [{"k": "\ud800"}, {"\udfff": 1}, {"k": 2**64}, {"k": -(2**64) - 1}, {1: "int key"}, []],
)
def test_bad_payloads_are_invalid_events(bad: Any) -> None:
    with pytest.raises(InvalidEvent):
        encode_payload(bad)
