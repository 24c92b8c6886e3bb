"""Source records: the mirror's object model (steve.research.records)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import CorruptObject, MalformedObject
from steve.objects import cbor
from steve.objects.model import CHUNK_SIZE
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.research.records import (
    MIRROR_PREFIX,
    SourceRecord,
    lookup,
    mirrored,
    put_source,
    read_source,
    record_id,
    url_key,
)


def _record(url: str, content: bytes, **kw: object) -> SourceRecord:
    base: dict[str, object] = dict(
        url=url,
        final_url=url,
        status=200,
        media_type="text/html",
        content=_blob_id(content),
        size=len(content),
        fetched_at=1_700_000_000,
    )
    base.update(kw)
    return SourceRecord(**base)  # type: ignore[arg-type]


def _blob_id(content: bytes) -> ObjectId:
    import io

    from steve.objects.model import hash_object
    from steve.repo import write_blob_stream

    return write_blob_stream(io.BytesIO(content), lambda obj: hash_object(obj)[0])


def test_put_lookup_refresh_keeps_history(repo: Repo) -> None:
    url = "http://127.0.0.1:1/page#frag"
    first = _record(url, b"<p>one</p>", headers={"etag": '"1"'}, charset="utf-8")
    with repo.transaction() as tx:
        a = put_source(repo, tx, first, b"<p>one</p>", now=1_700_000_000)
    found = lookup(repo, "http://127.0.0.1:1/page")  # the fragment is not part of the key
    assert found is not None and found == (a, first)
    assert repo.read_blob(first.content) == b"<p>one</p>"
    second = _record(url, b"<p>two</p>", fetched_at=1_700_000_100)
    with repo.transaction() as tx:
        b = put_source(repo, tx, second, b"<p>two</p>", now=1_700_000_100)
    assert lookup(repo, url) == (b, second)
    assert read_source(repo, a) == first  # the old record stays, side by side
    log = repo.reflog(MIRROR_PREFIX + url_key(url))
    assert sorted(record_id(repo, e.new) for e in log if e.new) == sorted([a, b])
    assert [oid for oid, _ in mirrored(repo)] == [b]


def test_same_bytes_are_one_object_and_chunked_content(repo: Repo) -> None:
    big = bytes(range(256)) * (3 * CHUNK_SIZE // 256 + 7)
    r1 = _record("http://a.test/x", big)
    r2 = _record("http://b.test/y", big)
    with repo.transaction() as tx:
        put_source(repo, tx, r1, big, now=1)
        put_source(repo, tx, r2, big, now=1)
    assert r1.content == r2.content and repo.read_blob(r1.content) == big


def test_record_must_name_its_content(repo: Repo) -> None:
    wrong = _record("http://a.test/x", b"abc")
    with pytest.raises(ValueError), repo.transaction() as tx:
        put_source(repo, tx, wrong, b"abd", now=1)
    assert lookup(repo, "http://a.test/x") is None


def test_a_blob_that_is_not_a_record_is_corrupt(repo: Repo) -> None:
    oid = repo.write_named_blobs([("refs/x", cbor.encode({"type": "other"}))], message="t")[0]
    with pytest.raises(CorruptObject):
        read_source(repo, oid)


@given(
    url=st.text(min_size=1, max_size=60),
    status=st.integers(100, 599),
    redirects=st.lists(st.text(max_size=20), max_size=3),
    headers=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
    charset=st.none() | st.text(max_size=10),
)
def test_record_round_trips(
    url: str, status: int, redirects: list[str], headers: dict[str, str], charset: str | None
) -> None:
    rec = _record(
        url, b"x", status=status, redirects=tuple(redirects), headers=headers, charset=charset
    )
    assert SourceRecord.from_record(cbor.decode(cbor.encode(rec.to_record()))) == rec


@pytest.mark.parametrize(
    "bad", [{}, {"type": "research.source"}, {"type": "research.source", "url": 1}, [1]]
)
def test_malformed_records_are_refused(bad: object) -> None:
    with pytest.raises(MalformedObject):
        SourceRecord.from_record(bad)


def test_gc_keeps_what_the_mirror_holds(repo: Repo) -> None:
    """The mirror ref reaches the content and the record (a tree), so gc prunes
    neither, however old they are."""
    content = b"<p>kept</p>"
    rec = _record("http://a.test/kept", content)
    with repo.transaction() as tx:
        rec_id = put_source(repo, tx, rec, content, now=1)
    repo.gc(prune_before=2**40)  # everything unreachable would go
    assert repo.has_object(rec.content) and repo.has_object(rec_id)
    assert lookup(repo, "http://a.test/kept") == (rec_id, rec)


def test_the_ref_event_names_what_the_ref_holds(repo: Repo) -> None:
    """fsck --events reconciles each ref with its last ref.updated event: the event
    must name the mirror tree the ref holds (the tour's backup caught it naming the
    record)."""
    content = b"<p>evented</p>"
    rec = _record("http://a.test/ev", content)
    with repo.transaction() as tx:
        put_source(repo, tx, rec, content, now=1)
    name = MIRROR_PREFIX + url_key(rec.url)
    target = repo.refs.resolve(name)
    assert target is not None and target.target is not None
    updates = [
        cbor.decode(e.payload)
        for e in repo.pending_events()
        if e.type == "ref.updated" and cbor.decode(e.payload)["ref"] == name
    ]
    assert updates and updates[-1]["new"] == target.target.hex
