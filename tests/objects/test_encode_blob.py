"""``encode_blob`` (bulk ingest's direct encoding of an inline blob) must give exactly
the bytes of the general encoder, and refuse exactly what it refuses."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from steve.errors import MalformedObject
from steve.objects.model import (
    CHUNK_SIZE,
    Blob,
    decode_object,
    encode_blob,
    encode_object,
    hash_object,
    inline_blob_length,
)
from steve.objects.oid import ObjectId
from steve.repo import hash_only

# every CBOR length-header form and its edges
_EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, CHUNK_SIZE - 1, CHUNK_SIZE]


@given(st.binary(max_size=70_000))
@example(b"")
def test_encode_blob_equals_the_general_encoder(content: bytes) -> None:
    data = encode_blob(content)
    assert data == encode_object(Blob(content))
    assert inline_blob_length(data) == len(content)
    assert decode_object(data) == Blob(content)  # the strict decoder accepts it


@pytest.mark.parametrize("n", _EDGES)
def test_encode_blob_at_every_header_edge(n: int) -> None:
    content = bytes(range(256)) * (n // 256) + bytes(n % 256)
    assert encode_blob(content) == encode_object(Blob(content))
    assert hash_only(Blob(content)) == hash_object(Blob(content))[0]
    assert hash_only(Blob(content)) == ObjectId.of(encode_blob(content))


def test_encode_blob_refuses_what_the_general_encoder_refuses() -> None:
    too_big = bytes(CHUNK_SIZE + 1)
    for bad in (too_big, bytearray(b"x"), memoryview(b"x")):
        with pytest.raises(MalformedObject) as general:
            encode_object(Blob(bad))  # type: ignore[arg-type]
        with pytest.raises(MalformedObject) as direct:
            encode_blob(bad)  # type: ignore[arg-type]
        assert str(direct.value) == str(general.value)
