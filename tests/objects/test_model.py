"""The object model: ids, blob chunking threshold, trees, tags, manifests, schemas."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import MalformedObject
from steve.objects import cbor
from steve.objects.model import (
    CHUNK_SIZE,
    MANIFEST_TYPES,
    TIME_MAX,
    TIME_MIN,
    TZ_MAX,
    Blob,
    ChunkedBlob,
    Manifest,
    Mode,
    ObjectType,
    Person,
    StoredObject,
    Tag,
    Tree,
    TreeEntry,
    decode_object,
    encode_object,
    hash_object,
)
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.conftest import PASSPHRASE, make_fast_kdf

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TIMES = st.integers(TIME_MIN, TIME_MAX)  # the documented range of object times
TZS = st.integers(-TZ_MAX, TZ_MAX)
oids = st.binary(min_size=32, max_size=32).map(ObjectId)
names = st.text(min_size=1, max_size=20).filter(
    lambda s: "/" not in s and "\x00" not in s and s not in (".", "..", ".steve")
)
json_like = st.recursive(
    st.one_of(st.integers(-(2**64), 2**64 - 1), st.text(max_size=10), st.booleans(), st.none()),
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)
    ),
    max_leaves=12,
)

blobs = st.binary(max_size=300).map(Blob)
trees = st.lists(
    st.builds(TreeEntry, names, st.sampled_from(list(Mode)), oids),
    max_size=8,
    unique_by=lambda e: e.name,
).map(Tree.from_entries)
persons = st.builds(Person, st.text(max_size=20), st.text(max_size=20))
tags = st.builds(
    Tag,
    object=oids,
    object_type=st.sampled_from(list(ObjectType)),
    name=st.text(max_size=20),
    tagger=persons,
    time=TIMES,
    tz=TZS,
    message=st.text(max_size=100),
)
manifests = st.builds(
    Manifest,
    kind=st.sampled_from(MANIFEST_TYPES),
    version=st.integers(1, 5),
    parents=st.lists(oids, unique=True, max_size=3).map(tuple),
    links=st.lists(oids, unique=True, max_size=3).map(lambda xs: tuple(sorted(xs))),
    time=TIMES,
    tz=TZS,
    body=st.dictionaries(st.text(max_size=8), json_like, max_size=5),
)
objects = st.one_of(blobs, trees, tags, manifests)


# --- ids -------------------------------------------------------------------------------


@given(st.binary(max_size=2000))
def test_object_id_is_blake3_of_bytes(data: bytes) -> None:
    oid = ObjectId.of(data)
    assert oid.raw == blake3.blake3(data).digest()
    assert oid.hex == blake3.blake3(data).hexdigest()
    assert ObjectId.from_hex(oid.hex) == oid


@given(objects)
def test_hash_object_is_blake3_of_canonical_encoding(obj: StoredObject) -> None:
    oid, data = hash_object(obj)
    assert data == encode_object(obj)
    assert oid.raw == blake3.blake3(data).digest()


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repo, Repo]]:
    path = tmp_path_factory.mktemp("ids")
    disk = Repo.init(path, passphrase=PASSPHRASE, kdf=make_fast_kdf())
    try:
        yield Repo.memory(), disk
    finally:
        disk.close()


@given(objects)
def test_same_id_in_memory_and_sqlcipher(two_stores: tuple[Repo, Repo], obj: StoredObject) -> None:
    mem, disk = two_stores
    a = mem.write(obj)
    b = disk.write(obj)
    assert a == b == hash_object(obj)[0]
    raw = disk.read_raw(b)
    assert raw == mem.read_raw(a)
    assert ObjectId.of(raw) == b  # `cat-file --raw ID | b3sum` prints ID
    assert disk.read_object(b) == obj


def test_large_blob_same_id_in_both_backends(two_stores: tuple[Repo, Repo]) -> None:
    mem, disk = two_stores
    data = os.urandom(2 * CHUNK_SIZE + 17)
    a, b = mem.write_blob(data), disk.write_blob(data)
    assert a == b == Repo.hash_stream(io.BytesIO(data))
    assert disk.read_blob(b) == data
    assert ObjectId.of(disk.read_raw(b)) == b


# --- blobs -----------------------------------------------------------------------------


def test_blob_of_exactly_one_chunk_is_inline(mem_repo: Repo) -> None:
    data = os.urandom(CHUNK_SIZE)
    oid = mem_repo.write_blob(data)
    obj = mem_repo.read_object(oid)
    assert isinstance(obj, Blob)
    assert obj.data == data
    assert mem_repo.object_info(oid).size == CHUNK_SIZE
    assert mem_repo.backend.count() == 1


def test_blob_one_byte_over_is_chunked(mem_repo: Repo) -> None:
    data = os.urandom(CHUNK_SIZE + 1)
    oid = mem_repo.write_blob(data)
    obj = mem_repo.read_object(oid)
    assert isinstance(obj, ChunkedBlob)
    assert obj.size == CHUNK_SIZE + 1
    assert [n for _, n in obj.chunks] == [CHUNK_SIZE, 1]
    assert mem_repo.object_info(oid).size == CHUNK_SIZE + 1
    assert mem_repo.read_blob(oid) == data
    assert mem_repo.write_stream(io.BytesIO(data)) == oid


def test_inline_blob_larger_than_a_chunk_cannot_be_encoded() -> None:
    with pytest.raises(MalformedObject):
        encode_object(Blob(b"x" * (CHUNK_SIZE + 1)))
    value = {"type": "blob", "v": 1, "data": b"x" * (CHUNK_SIZE + 1)}
    with pytest.raises(MalformedObject):
        decode_object(cbor.encode(value))


@pytest.mark.parametrize(
    ("size", "lengths"),
    [
        (CHUNK_SIZE, [CHUNK_SIZE]),  # fits inline: must not be chunked
        (CHUNK_SIZE + 2, [CHUNK_SIZE, 1]),  # lengths do not add up
        (CHUNK_SIZE + 1, [1, CHUNK_SIZE]),  # short chunk not last
        (CHUNK_SIZE + 1, [CHUNK_SIZE, 0, 1]),  # empty chunk
        (CHUNK_SIZE + 1, []),
    ],
)
def test_bad_chunk_layouts_rejected(size: int, lengths: list[int]) -> None:
    chunks = tuple((ObjectId.of(bytes([i])), n) for i, n in enumerate(lengths))
    with pytest.raises(MalformedObject):
        encode_object(ChunkedBlob(size, chunks))
    value = {"type": "blob", "v": 1, "size": size, "chunks": [[o.raw, n] for o, n in chunks]}
    with pytest.raises(MalformedObject):
        decode_object(cbor.encode(value))


# --- trees -----------------------------------------------------------------------------


def _entry(name: str, mode: Mode = Mode.FILE) -> TreeEntry:
    return TreeEntry(name, mode, ObjectId.of(name.encode()))


def test_tree_entries_sorted_by_utf8_bytes() -> None:
    tree = Tree.from_entries([_entry("b"), _entry("a.txt"), _entry("é"), _entry("Z"), _entry("a")])
    assert [e.name for e in tree] == ["Z", "a", "a.txt", "b", "é"]
    assert decode_object(encode_object(tree)) == tree


@given(st.lists(st.builds(_entry, names), unique_by=lambda e: e.name, max_size=10))
def test_tree_order_independent_of_input_order(entries: list[TreeEntry]) -> None:
    a = Tree.from_entries(entries)
    b = Tree.from_entries(list(reversed(entries)))
    assert hash_object(a) == hash_object(b)
    assert [e.name.encode() for e in a] == sorted(e.name.encode() for e in entries)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "/", "a\x00b", ".steve"])
def test_tree_rejects_bad_names(bad: str) -> None:
    with pytest.raises(MalformedObject):
        Tree.from_entries([_entry(bad)])
    value = {"type": "tree", "v": 1, "entries": [[bad, int(Mode.FILE), bytes(32)]]}
    with pytest.raises(MalformedObject):
        decode_object(cbor.encode(value))


def test_tree_rejects_duplicates_and_unsorted() -> None:
    with pytest.raises(MalformedObject):
        Tree.from_entries([_entry("a"), _entry("a", Mode.EXECUTABLE)])
    unsorted = Tree((_entry("b"), _entry("a")))
    with pytest.raises(MalformedObject):
        encode_object(unsorted)
    for names_ in (["b", "a"], ["a", "a"]):
        value = {
            "type": "tree",
            "v": 1,
            "entries": [[n, int(Mode.FILE), bytes(32)] for n in names_],
        }
        with pytest.raises(MalformedObject):
            decode_object(cbor.encode(value))


@pytest.mark.parametrize(
    "entry",
    [
        ["a", 0o100600, bytes(32)],  # unknown mode
        ["a", int(Mode.FILE), bytes(31)],  # short id
        ["a", int(Mode.FILE)],  # missing id
        [b"a", int(Mode.FILE), bytes(32)],  # name not text
        ["a", "100644", bytes(32)],  # mode not int
    ],
)
def test_tree_rejects_bad_entries(entry: list[Any]) -> None:
    with pytest.raises(MalformedObject):
        decode_object(cbor.encode({"type": "tree", "v": 1, "entries": [entry]}))


# --- round trips and schema checks -----------------------------------------------------


@given(objects)
def test_object_round_trip(obj: StoredObject) -> None:
    data = encode_object(obj)
    back = decode_object(data)
    assert back == obj
    assert type(back) is type(obj)
    assert encode_object(back) == data


def _values() -> dict[str, dict[str, Any]]:
    oid = ObjectId.of(b"x")
    tag = Tag(oid, ObjectType.BLOB, "v1", Person("A", "a@x"), 1_700_000_000, 60, "release\n")
    manifest = Manifest(ObjectType.PLAN, 1, (oid,), (), 1_700_000_000, 0, {"goal": "x"})
    chunked = ChunkedBlob(CHUNK_SIZE + 1, ((oid, CHUNK_SIZE), (ObjectId.of(b"y"), 1)))
    return {
        "blob": Blob(b"hi").to_value(),
        "chunked": chunked.to_value(),
        "tree": Tree.from_entries([_entry("a")]).to_value(),
        "tag": tag.to_value(),
        "manifest": manifest.to_value(),
    }


@pytest.mark.parametrize("kind", ["blob", "chunked", "tree", "tag", "manifest"])
def test_valid_envelopes_decode(kind: str) -> None:
    value = _values()[kind]
    data = cbor.encode(value)
    assert encode_object(decode_object(data)) == data


@pytest.mark.parametrize("kind", ["blob", "chunked", "tree", "tag", "manifest"])
def test_extra_field_rejected(kind: str) -> None:
    value = {**_values()[kind], "extra": 1}
    with pytest.raises(MalformedObject, match="fields differ"):
        decode_object(cbor.encode(value))


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("blob", "data"),
        ("chunked", "chunks"),
        ("chunked", "size"),
        ("tree", "entries"),
        ("tag", "tagger"),
        ("tag", "message"),
        ("tag", "object"),
        ("manifest", "body"),
        ("manifest", "parents"),
        ("manifest", "links"),
        ("manifest", "tz"),
        ("blob", "v"),
        ("tree", "type"),
    ],
)
def test_missing_field_rejected(kind: str, field: str) -> None:
    value = dict(_values()[kind])
    del value[field]
    with pytest.raises(MalformedObject):
        decode_object(cbor.encode(value))


@pytest.mark.parametrize(
    ("kind", "field", "bad"),
    [
        ("blob", "v", 2),
        ("tree", "v", 2),
        ("tag", "v", 2),
        ("manifest", "v", 0),
        ("blob", "type", "blobby"),
        ("blob", "data", "text, not bytes"),
        ("tag", "object_type", "nope"),
        ("tag", "time", "yesterday"),
        ("tag", "tagger", {"name": "A"}),
        ("tag", "tagger", {"name": "A", "email": "a@x", "extra": ""}),
        ("manifest", "body", []),
        ("manifest", "parents", [b"short"]),
        ("manifest", "links", [bytes(32), bytes(32)]),  # not unique
        ("manifest", "links", [b"\x01" * 32, b"\x00" * 32]),  # not sorted
        ("manifest", "parents", [bytes(32), bytes(32)]),  # not unique
    ],
)
def test_wrong_field_values_rejected(kind: str, field: str, bad: Any) -> None:
    value = {**_values()[kind], field: bad}
    with pytest.raises(MalformedObject):
        decode_object(cbor.encode(value))


@pytest.mark.parametrize("top", [[], "blob", 1, None, b"\xa0"])
def test_non_map_objects_rejected(top: Any) -> None:
    with pytest.raises(MalformedObject):
        decode_object(cbor.encode(top))


@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from([t.value for t in ObjectType])},
        optional={
            "v": st.integers(-2, 3),
            "data": st.binary(max_size=8),
            "size": st.integers(0, 3 * CHUNK_SIZE),
            "chunks": st.lists(
                st.lists(st.one_of(st.binary(min_size=32, max_size=32), st.integers(0, 9)))
            ),
            "entries": st.lists(st.lists(st.one_of(st.text(max_size=3), INT64))),
            "parents": st.lists(st.binary(min_size=31, max_size=33), max_size=2),
            "links": st.lists(st.binary(min_size=32, max_size=32), max_size=2),
            "time": INT64,
            "tz": st.integers(-100, 100),
            "body": json_like,
            "object": st.binary(min_size=32, max_size=32),
            "object_type": st.text(max_size=6),
            "tag": st.text(max_size=5),
            "tagger": json_like,
            "message": st.text(max_size=5),
        },
    )
)
def test_near_valid_envelopes_decode_canonically_or_raise_malformed(value: dict[str, Any]) -> None:
    """Anything accepted must re-encode to the very same bytes (one object, one id)."""
    data = cbor.encode(value)
    try:
        obj = decode_object(data)
    except MalformedObject:
        return
    assert encode_object(obj) == data


def test_tag_and_manifest_through_repo(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path, passphrase=PASSPHRASE, kdf=make_fast_kdf())
    try:
        blob = repo.write_blob(b"payload")
        tag_id = repo.create_tag("v1", blob, message="first release", now=1_700_000_000, tz=0)
        tag = repo.read_object(tag_id)
        assert isinstance(tag, Tag)
        assert (tag.object, tag.object_type, tag.name, tag.message) == (
            blob,
            ObjectType.BLOB,
            "v1",
            "first release",
        )
        m = Manifest(ObjectType.DESIGN, 1, (), (blob,), 1_700_000_000, 0, {"title": "t"})
        mid = repo.write(m)
        assert repo.read_object(mid) == m
        child = Manifest(ObjectType.RESEARCH, 1, (mid,), (), 1_700_000_001, 0, {})
        cid = repo.write(child)
        assert repo.manifest_parents(cid) == (mid,)
        assert repo.fsck().ok
    finally:
        repo.close()
