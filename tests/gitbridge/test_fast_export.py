"""The fast paths of the first export (issue 13, goal 2) give what the plain ones give.

- manifests and their attachments are read ahead in ``IN (...)`` batches and
  decoded once: the same commits, the same pack, as reading each object when
  it is needed, whatever the history (batches, shared, large, missing and
  damaged objects);
- the pack index is built by hand: dulwich's bytes;
- small objects are stored, not deflated: ``zlib.compress(data, 0)``'s bytes,
  and git inflates them (``git fsck --strict``);
- attachments quote names only for what they yield: the old walk's result.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dulwich.pack import write_pack_index
from hypothesis import given, settings
from hypothesis import strategies as st

from steve.errors import CorruptObject, MalformedObject, ObjectNotFound, WrongObjectType
from steve.gitbridge import convert, export_git
from steve.gitbridge.convert import ToGit
from steve.gitbridge.layout import RESERVED, attachments, quote_component
from steve.gitbridge.pack import STORED, PackWriter, entry_header, stored, write_index
from steve.objects.model import (
    Blob,
    Manifest,
    Mode,
    ObjectType,
    Tree,
    TreeEntry,
    decode_object_trusted,
    encode_object,
)
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.events.conftest import raw_connect
from tests.gitbridge.helpers import LARGE, output_tree, write_manifest
from tests.gitenv import Git

# --- the pack index, stored blocks, entry headers ------------------------------------------

entry = st.tuples(
    st.binary(min_size=20, max_size=20),
    st.one_of(st.integers(0, (1 << 31) - 1), st.integers(1 << 31, 1 << 40)),
    st.integers(0, (1 << 32) - 1),
)


@given(st.lists(entry, max_size=60, unique_by=lambda e: e[0]), st.binary(min_size=20, max_size=20))
def test_the_pack_index_is_dulwichs(entries: list[tuple[bytes, int, int]], checksum: bytes) -> None:
    entries.sort()
    mine, theirs = io.BytesIO(), io.BytesIO()
    assert write_index(mine, entries, checksum) == write_pack_index(
        theirs, entries, checksum, version=2
    )
    assert mine.getvalue() == theirs.getvalue()


@given(st.binary(max_size=4 * STORED))
def test_a_stored_block_is_zlibs_level_0(data: bytes) -> None:
    assert stored(data) == zlib.compress(data, 0)
    assert zlib.decompress(stored(data)) == data


def test_stored_blocks_at_their_limits() -> None:
    for n in (0, 1, STORED - 1, STORED, 16 << 10, 0xFFFF):
        data = bytes(range(256)) * (n // 256 + 1)
        assert zlib.decompress(stored(data[:n])) == data[:n]
    with pytest.raises(ValueError):
        stored(bytes(0x10000))


@given(st.sampled_from([1, 2, 3, 4]), st.integers(0, 5000))
@settings(max_examples=200)
def test_entry_headers_of_every_size(tmp_path_factory: Any, type_num: int, size: int) -> None:
    """What PackWriter.add writes: the header for the size, then a stream that
    inflates to the content (stored below STORED bytes, deflated above)."""
    data = bytes((i * 7) & 0xFF for i in range(size))
    with PackWriter(tmp_path_factory.mktemp("pack"), None) as pack:
        pack.add(type_num, data)
        assert pack._file is not None
        pack._file.seek(12)
        written = pack._file.read()
        pack.abort()
    head = entry_header(type_num, size)
    assert written.startswith(head)
    assert zlib.decompress(written[len(head) :]) == data


# --- decoding read-ahead objects ----------------------------------------------------------

oids = st.binary(min_size=32, max_size=32).map(ObjectId)
entry_names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=6,
).filter(lambda n: n not in (".", "..", ".steve"))
trees = st.dictionaries(entry_names, st.tuples(st.sampled_from(list(Mode)), oids), max_size=5).map(
    lambda d: Tree.from_entries([TreeEntry(n, m, o) for n, (m, o) in d.items()])
)
objects = st.one_of(st.binary(max_size=300).map(Blob), trees)


def _outcome(decode: Any, *args: Any) -> object:
    try:
        return decode(*args)
    except MalformedObject:
        return MalformedObject


@given(objects, st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3))
@settings(max_examples=300)
def test_read_ahead_decoding_is_the_trusted_decoders(
    obj: Blob | Tree, damage: list[tuple[int, int]]
) -> None:
    """Canonical or damaged bytes, typed right or wrong: the same object or the same
    refusal as :func:`decode_object_trusted`."""
    data = bytearray(encode_object(obj))
    for at, value in damage:
        if at < len(data):
            data[at] = value
    raw = bytes(data)
    for kind in (ObjectType.BLOB, ObjectType.TREE, ObjectType.DESIGN):
        assert _outcome(convert._decode, kind, raw) == _outcome(decode_object_trusted, raw)


# --- attachments ----------------------------------------------------------------------------

_HEX_ID = re.compile(r"[0-9a-f]{64}")


def _reference_quote(name: str, top: bool = False) -> str:
    """quote_component before its fast path."""
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch == "%" or ch == "/" or ord(ch) < 0x20 or ch == "\x7f" or (i == 0 and ch == "."):
            out.extend(f"%{b:02X}" for b in ch.encode())
        else:
            out.append(ch)
    text = "".join(out)
    if not text:
        return "%"
    if top and text in RESERVED:
        return text.replace(".", "%2E")
    return text


def _reference_walk(
    value: Any, path: tuple[str, ...], links: frozenset[str]
) -> Iterator[tuple[tuple[str, ...], ObjectId]]:
    """attachments' walk before it quoted only what it yields."""
    if isinstance(value, dict):
        for key in sorted(value):
            if isinstance(key, str):
                yield from _reference_walk(
                    value[key], (*path, _reference_quote(key, not path)), links
                )
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _reference_walk(item, (*path, str(i)), links)
    elif isinstance(value, str) and value in links and _HEX_ID.fullmatch(value) and path:
        yield path, ObjectId.from_hex(value)


@given(st.text(max_size=12), st.booleans())
def test_quoting_is_the_reference(name: str, top: bool) -> None:
    assert quote_component(name, top) == _reference_quote(name, top)
    for special in ("manifest.json", "manifest.cbor", ".git", "a/b", "%", "", "x\x7f"):
        assert quote_component(special, top) == _reference_quote(special, top)


LINKED = [ObjectId.of(b"%d" % i) for i in range(4)]
keys = st.sampled_from(["a", "manifest.json", ".hidden", "x/y", "%", "logs", "b\x01", ""])
leaves = st.one_of(
    st.sampled_from([o.hex for o in LINKED]),
    st.sampled_from([ObjectId.of(b"unlinked").hex, "text", "ab" * 32]),
    st.integers(),
    st.booleans(),
    st.none(),
)
bodies = st.dictionaries(
    keys,
    st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)
        ),
        max_leaves=12,
    ),
    max_size=5,
)


@given(bodies, st.sets(st.sampled_from(LINKED)))
def test_attachments_are_the_reference_walks(body: dict[str, Any], links: set[ObjectId]) -> None:
    m = Manifest(ObjectType.BUILD_RECEIPT, 1, (), tuple(sorted(links)), 1_700_000_000, 0, body)
    hexes = frozenset(link.hex for link in links)
    expected = list(_reference_walk(body, (), hexes)) if links else []
    assert list(attachments(m)) == expected


# --- whole exports: read ahead or one object at a time -------------------------------------


def _history(repo: Repo, count: int) -> ObjectId:
    """``count`` receipts in a chain (a merge every 7): a log per receipt, an output tree
    shared by every third, a large log now and then, a link to the previous receipt."""
    shared = output_tree(repo)
    big = repo.write_blob(LARGE)
    ids: list[ObjectId] = []
    for i in range(count):
        log = repo.write_blob(b"log of step %d\n" % i)
        out = shared if i % 3 else output_tree(repo, f"-{i}")
        body: dict[str, Any] = {"node": f"n{i}", "exit_status": 0, "logs": [log.hex]}
        body["outputs"] = {"dist": out.hex, "manifest.json": log.hex}
        links = [log, out]
        if i % 50 == 7:
            body["logs"].append(big.hex)
            links.append(big)
        if ids:
            body["previous"] = ids[-1].hex
            links.append(ids[-1])
        parents = ids[-1:] + ([ids[-7]] if i % 7 == 6 and i > 7 else [])
        ids.append(
            write_manifest(
                repo,
                ObjectType.BUILD_RECEIPT,
                f"n{i}",
                parents,
                time=1_700_000_000 + i,
                body=body,
                links=links,
            )
        )
    repo.update_ref("refs/heads/main", ids[-1])
    return ids[-1]


def _one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ToGit, "prefetch", lambda self, manifests: None)


@pytest.mark.parametrize("batch", [1, 5, 256])
def test_read_ahead_exports_what_reading_one_at_a_time_exports(
    steve_repo: Repo, tmp_path: Path, git: Git, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    _history(steve_repo, 40)
    monkeypatch.setattr("steve.gitbridge.export.COMMIT_BATCH", batch)
    monkeypatch.setattr(convert, "PREFETCH_OBJECTS", 64)  # the budget cuts batches short
    fast = export_git(steve_repo, tmp_path / "fast.git", ["main"], bare=True)
    with monkeypatch.context() as m:
        _one_at_a_time(m)
        steve_repo.delete_derived("git-map", [k for k, _ in steve_repo.iter_derived("git-map")])
        slow = export_git(steve_repo, tmp_path / "slow.git", ["main"], bare=True)
    assert fast.refs[0].new == slow.refs[0].new
    assert (fast.commits, fast.objects, fast.pack) == (slow.commits, slow.objects, slow.pack)
    git(tmp_path / "fast.git", "fsck", "--full", "--strict")


def _damage(repo: Repo, oid: ObjectId, data: bytes | None) -> None:
    assert repo.key is not None and repo.steve_dir is not None
    conn = raw_connect(repo.steve_dir / "steve.db", repo.key)
    if data is None:
        conn.execute("DELETE FROM objects WHERE oid = ?", (oid.raw,))
    else:
        conn.execute("UPDATE objects SET data = ? WHERE oid = ?", (data, oid.raw))
    conn.close()


@pytest.mark.parametrize(
    ("what", "error"),
    [("garbage", CorruptObject), ("blob-as-tree", WrongObjectType), ("missing", ObjectNotFound)],
)
def test_a_damaged_attachment_fails_the_export_as_before(
    steve_repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str, error: type
) -> None:
    """Read ahead or not, a damaged or missing attachment raises the same error."""
    tip = _history(steve_repo, 12)
    victim = steve_repo.write_blob(b"victim\n")
    parent = steve_repo.read_object(tip)
    assert isinstance(parent, Manifest)
    tip = write_manifest(
        steve_repo,
        ObjectType.BUILD_RECEIPT,
        "last",
        [tip],
        time=1_700_001_000,
        body={"node": "last", "exit_status": 0, "logs": [victim.hex]},
        links=[victim],
    )
    steve_repo.update_ref("refs/heads/main", tip)
    if what == "garbage":
        _damage(steve_repo, victim, b"garbage")
    elif what == "blob-as-tree":
        _damage(steve_repo, victim, encode_object(Tree.from_entries([])))
    else:
        _damage(steve_repo, victim, None)
    outcomes = []
    for read_ahead in (True, False):
        with monkeypatch.context() as m:
            if not read_ahead:
                _one_at_a_time(m)
            with pytest.raises(error) as caught:
                export_git(steve_repo, tmp_path / f"out-{read_ahead}.git", ["main"], bare=True)
            outcomes.append((type(caught.value), str(caught.value)))
    assert outcomes[0] == outcomes[1]


def test_read_ahead_stays_within_its_byte_budget(
    steve_repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manifests with many large attachments: what one batch reads ahead is bounded
    by the byte budget plus one query's worth, whatever the batch holds."""
    budget, query = 200_000, 4
    monkeypatch.setattr(convert, "PREFETCH_BYTES", budget)
    monkeypatch.setattr(convert, "PREFETCH_QUERY", query)
    parents: list[ObjectId] = []
    for i in range(6):
        blobs = [steve_repo.write_blob(bytes([i, j]) * 20_000) for j in range(8)]
        parents = [
            write_manifest(
                steve_repo,
                ObjectType.BUILD_RECEIPT,
                f"n{i}",
                parents,
                time=1_700_000_000 + i,
                body={"node": f"n{i}", "exit_status": 0, "logs": [b.hex for b in blobs]},
                links=blobs,
            )
        ]
    steve_repo.update_ref("refs/heads/main", parents[0])
    held: list[int] = []
    prefetch = ToGit.prefetch

    def spy(self: ToGit, manifests: list[ObjectId]) -> None:
        prefetch(self, manifests)
        held.append(sum(len(data) for _, data, _ in self._ahead.values()))

    monkeypatch.setattr(ToGit, "prefetch", spy)
    report = export_git(steve_repo, tmp_path / "out.git", ["main"], bare=True)
    assert report.commits == 6 and held
    assert max(held) <= budget + query * convert.PREFETCH_INLINE
    assert max(held) >= budget  # the budget, not the batch, stopped it
