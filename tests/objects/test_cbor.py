"""The canonical CBOR codec: round trip, strict rejection, typed errors only.

A small independent reference encoder below writes RFC 8949 section 4.2.1
encodings by hand; it checks STEVE's encoder and produces every kind of
*non-canonical* encoding of the same value (wide heads, indefinite lengths,
unsorted or duplicated keys, trailing bytes), each of which must be rejected.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from steve.errors import MalformedObject
from steve.objects import cbor
from steve.objects.model import decode_object

INT_MIN = -(2**64)
INT_MAX = 2**64 - 1

# --- the data model as a strategy ------------------------------------------------------

ints = st.integers(min_value=INT_MIN, max_value=INT_MAX)
scalars = st.one_of(ints, st.binary(max_size=40), st.text(max_size=30), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(max_size=12), children, max_size=6),
    ),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (so True != 1 and b"" != "")."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


# --- a reference encoder that can also write non-canonical forms ------------------------

WIDTHS = {24: 1, 25: 2, 26: 4, 27: 8}
FMT = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}


def min_info(n: int) -> int:
    if n < 24:
        return n
    if n < 2**8:
        return 24
    if n < 2**16:
        return 25
    if n < 2**32:
        return 26
    return 27


def head(major: int, n: int, info: int | None = None) -> bytes:
    """A CBOR head; ``info`` forces a (possibly wider than needed) argument width."""
    info = min_info(n) if info is None else info
    if info < 24:
        assert n == info
        return bytes([(major << 5) | n])
    return bytes([(major << 5) | info]) + struct.pack(FMT[WIDTHS[info]], n)


def ref_encode(v: Any) -> bytes:
    """RFC 8949 core deterministic encoding, written independently of cbor2."""
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        raw = v.encode()
        return head(3, len(raw)) + raw
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(ref_encode(x) for x in v)
    assert isinstance(v, dict)
    pairs = sorted((ref_encode(k), ref_encode(x)) for k, x in v.items())
    return head(5, len(pairs)) + b"".join(k + x for k, x in pairs)


MUTATIONS = ["none", "none", "none", "wide", "indefinite", "shuffle", "duplicate"]


def variant(v: Any, draw: Any) -> bytes:
    """An encoding of ``v`` where each node may be written non-canonically."""
    how = draw(st.sampled_from(MUTATIONS))

    def hd(major: int, n: int) -> bytes:
        if how != "wide":
            return head(major, n)
        wider = [i for i in (24, 25, 26, 27) if i > min_info(n)]
        if not wider:
            return head(major, n)
        return head(major, n, draw(st.sampled_from(wider)))

    if v is None or isinstance(v, bool):
        return ref_encode(v)
    if isinstance(v, int):
        return hd(0, v) if v >= 0 else hd(1, -1 - v)
    if isinstance(v, bytes | str):
        raw = v.encode() if isinstance(v, str) else v
        major = 3 if isinstance(v, str) else 2
        if how == "indefinite":
            # split on a character boundary so each chunk of a text string is UTF-8
            k = draw(st.integers(0, len(v)))
            parts = [v[:k].encode(), v[k:].encode()] if isinstance(v, str) else [v[:k], v[k:]]
            chunks = b"".join(head(major, len(p)) + p for p in parts)
            return bytes([(major << 5) | 31]) + chunks + b"\xff"
        return hd(major, len(raw)) + raw
    if isinstance(v, list):
        items = b"".join(variant(x, draw) for x in v)
        if how == "indefinite":
            return b"\x9f" + items + b"\xff"
        return hd(4, len(v)) + items
    assert isinstance(v, dict)
    pairs = sorted((ref_encode(k), variant(x, draw)) for k, x in v.items())
    if how == "shuffle" and len(pairs) >= 2:
        order = draw(st.permutations(range(len(pairs))))
        if list(order) == sorted(order):
            order = list(reversed(order))
        pairs = [pairs[i] for i in order]
    if how == "duplicate" and pairs:
        i = draw(st.integers(0, len(pairs) - 1))
        pairs = [*pairs[: i + 1], pairs[i], *pairs[i + 1 :]]
    body = b"".join(k + x for k, x in pairs)
    if how == "indefinite":
        return b"\xbf" + body + b"\xff"
    return hd(5, len(pairs)) + body


# --- round trip ---------------------------------------------------------------------------


@given(values)
@example({"b": 1, "a": 2, "aa": 3, "": None})
@example([INT_MIN, INT_MAX, -1, 0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32])
@example({"é": 1, "z": 2, "zz": 3})  # multi-byte keys sort by their encoded bytes
def test_round_trip(value: Any) -> None:
    data = cbor.encode(value)
    assert data == ref_encode(value)  # the encoding is RFC 8949's deterministic one
    back = cbor.decode(data)
    assert same(back, value)
    assert cbor.encode(back) == data


@given(st.dictionaries(st.text(max_size=30), ints, min_size=2, max_size=12))
def test_map_keys_sorted_bytewise(d: dict[str, int]) -> None:
    data = cbor.encode(d)
    keys = [ref_encode(k) for k in d]
    pos = sorted(keys, key=lambda k: data.index(k + ref_encode(d[cbor.decode(k)])))
    assert pos == sorted(keys)


@given(st.data(), values)
def test_non_canonical_variants_rejected(data: st.DataObject, value: Any) -> None:
    encoded = variant(value, data.draw)
    canonical = cbor.encode(value)
    if encoded == canonical:
        # nothing was mutated: prove the trailing-bytes rule on this value instead
        encoded = canonical + data.draw(st.binary(min_size=1, max_size=3))
    with pytest.raises(MalformedObject):
        cbor.decode(encoded)


@pytest.mark.parametrize(
    ("name", "hex_bytes"),
    [
        ("non-shortest int 0x18 0x05", "1805"),
        ("non-shortest int 16 bit", "190005"),
        ("non-shortest int 32 bit", "1a00000005"),
        ("non-shortest int 64 bit", "1b0000000000000005"),
        ("non-shortest negative int", "3800"),
        ("non-shortest byte string length", "580161"),
        ("non-shortest text length", "780161"),
        ("non-shortest array length", "980100"),
        ("non-shortest map length", "b8016161 01".replace(" ", "")),
        ("indefinite byte string", "5f41614162ff"),
        ("indefinite text string", "7f61616162ff"),
        ("indefinite array", "9f0102ff"),
        ("indefinite map", "bf616101ff"),
        ("unsorted map keys", "a2616201616102"),
        ("longer key first", "a26261610161620 2".replace(" ", "")),
        ("duplicate map keys", "a2616101616101"),
        ("trailing bytes", "0100"),
        ("two values", "f6f6"),
        ("float16", "f93c00"),
        ("float32", "fa3f800000"),
        ("float64", "fb3ff0000000000000"),
        ("NaN", "f97e00"),
        ("bignum tag 2 of a small int", "c24105"),
        ("negative bignum tag 3", "c34105"),
        ("bignum tag 2 beyond 64 bits", "c249010000000000000000"),
        ("datetime tag 0", "c074323032302d30312d30315430303a30303a30305a"),
        ("epoch tag 1", "c100"),
        ("self-describe tag 55799", "d9d9f700"),
        ("arbitrary tag", "d8ff00"),
        ("set tag 258", "d9010281 01".replace(" ", "")),
        ("undefined", "f7"),
        ("simple value 0", "e0"),
        ("simple value 32", "f820"),
        ("break outside container", "ff"),
        ("integer map key", "a10102"),
        ("byte string map key", "a1416101"),
        ("array map key", "a1810000"),
        ("bool map key", "a1f501"),
        ("null map key", "a1f601"),
        ("invalid UTF-8 text", "61ff"),
        ("truncated array", "8201"),
        ("empty input", ""),
        ("reserved additional info 28", "1c"),
        ("huge declared length", "5bffffffffffffffff"),
    ],
)
def test_named_non_canonical_forms_rejected(name: str, hex_bytes: str) -> None:
    with pytest.raises(MalformedObject):
        cbor.decode(bytes.fromhex(hex_bytes))


def test_text_length_case_is_really_non_canonical() -> None:
    # guard against a typo in the table above: 0x78 0x01 'a' is "a" with a wide length
    assert cbor.encode("a") == b"\x61a"
    with pytest.raises(MalformedObject):
        cbor.decode(b"\x78\x01a")


def test_deep_nesting_rejected_both_ways() -> None:
    deep: Any = 0
    for _ in range(cbor.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(MalformedObject):
        cbor.encode(deep)
    with pytest.raises(MalformedObject):
        cbor.decode(b"\x81" * 200 + b"\x00")
    with pytest.raises(MalformedObject):
        cbor.decode(b"\x81" * 100_000 + b"\x00")


@pytest.mark.parametrize(
    "value",
    [1.5, float("nan"), 2**64, INT_MIN - 1, {1: 2}, {b"k": 1}, (1, 2), {1, 2}, bytearray(b"x")],
    ids=repr,
)
def test_encode_rejects_values_outside_the_model(value: Any) -> None:
    with pytest.raises(MalformedObject):
        cbor.encode(value)


def test_encode_rejects_lone_surrogate() -> None:
    with pytest.raises(MalformedObject):
        cbor.encode("\udc80")


# --- garbage only ever raises the typed error ----------------------------------------------


@given(st.binary(max_size=200))
@example(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff")
@example(b"\xd8\x1e\x82\x01\x00")  # rational 1/0
@example(b"\xd8\x23\x61\x28")  # regex "("
@example(b"\xd8\x1d\x05")  # shared reference to nothing
def test_garbage_only_raises_malformed(data: bytes) -> None:
    try:
        value = cbor.decode(data)
    except MalformedObject:
        return
    assert cbor.encode(value) == data  # accepted => it was canonical


@given(st.binary(max_size=200))
def test_garbage_objects_only_raise_malformed(data: bytes) -> None:
    try:
        decode_object(data)
    except MalformedObject:
        return


@given(values, st.data())
def test_mutated_encodings_only_raise_malformed(value: Any, data: st.DataObject) -> None:
    enc = bytearray(cbor.encode(value))
    op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    pos = data.draw(st.integers(0, len(enc) - (0 if op == "insert" else 1)))
    if op == "flip":
        enc[pos] ^= data.draw(st.integers(1, 255))
    elif op == "insert":
        enc[pos:pos] = bytes([data.draw(st.integers(0, 255))])
    else:
        del enc[pos]
    try:
        back = cbor.decode(bytes(enc))
    except MalformedObject:
        return
    assert cbor.encode(back) == bytes(enc)
