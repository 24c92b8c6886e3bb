"""The fast paths of ``verify`` and ``fsck`` (issue 13) find exactly what the slow
ones find.

verify resolves references in batches and checks blob references with one
sequential scan when they are a large part of the store; fsck scans every
object once and settles references from the objects it scanned last.  Each
test below runs both ways over the same damaged real SQLCipher repository
(bytes changed, a row deleted, a wrong type, a short chunk, all behind
STEVE's back) and expects the same problems; the inline-blob fast decoder
is checked against the strict decoder by hypothesis.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steve.errors import MalformedObject
from steve.objects.fastcheck import BLOB_TAIL, blob_frame, tree_children
from steve.objects.model import (
    CHUNK_SIZE,
    Blob,
    ChunkedBlob,
    Mode,
    Tree,
    TreeEntry,
    decode_inline_blob,
    decode_object,
    encode_object,
    inline_blob_length,
    tree_entries,
)
from steve.objects.oid import ObjectId
from steve.porcelain import verify as verify_module
from steve.porcelain.verify import verify
from steve.repo import Repo
from steve.store import maint
from tests.events.conftest import raw_connect

# --- the inline blob decoder --------------------------------------------------------------


@given(st.binary(max_size=70_000))
@settings(max_examples=60, deadline=None)
def test_fast_blob_decoder_accepts_every_canonical_blob(content: bytes) -> None:
    data = encode_object(Blob(content))
    assert inline_blob_length(data) == len(content)
    assert decode_inline_blob(data) == Blob(content) == decode_object(data)


@pytest.mark.parametrize("n", [0, 23, 24, 255, 256, 65_535, 65_536, CHUNK_SIZE])
def test_fast_blob_decoder_at_every_header_boundary(n: int) -> None:
    content = os.urandom(n)
    assert decode_inline_blob(encode_object(Blob(content))) == Blob(content)


def _strict(data: bytes) -> object:
    try:
        return decode_object(data)
    except MalformedObject:
        return None


@given(
    st.binary(max_size=300),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    st.integers(-3, 3),
)
@settings(max_examples=400, deadline=None)
def test_fast_blob_decoder_never_accepts_what_the_strict_one_refuses(
    content: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(encode_object(Blob(content)))
    for at, value in edits:
        if at < len(data):
            data[at] = value
    if cut < 0:
        del data[cut:]
    elif cut > 0:
        data += bytes(cut)
    fast = decode_inline_blob(bytes(data))
    if fast is not None:
        assert _strict(bytes(data)) == fast


def test_fast_blob_decoder_refuses_non_shortest_lengths() -> None:
    canonical = encode_object(Blob(b"abcde"))
    long_form = canonical.replace(b"\x45abcde", b"\x58\x05abcde")
    assert long_form != canonical
    assert decode_inline_blob(long_form) is None
    with pytest.raises(MalformedObject):
        decode_object(long_form)
    too_big = encode_object(Blob(b"x" * CHUNK_SIZE)).replace(b"\x5a\x00\x10\x00\x00", b"", 1)
    assert decode_inline_blob(too_big) is None


_names = st.text(min_size=1, max_size=30).filter(
    lambda n: n not in (".", "..", ".steve") and "/" not in n and "\x00" not in n
)
_trees = st.dictionaries(
    _names, st.tuples(st.sampled_from(list(Mode)), st.binary(min_size=32, max_size=32)), max_size=30
).map(lambda d: Tree.from_entries([TreeEntry(n, m, ObjectId(r)) for n, (m, r) in d.items()]))


@given(_trees)
@settings(max_examples=100, deadline=None)
def test_fast_tree_decoder_reads_every_canonical_tree(tree: Tree) -> None:
    assert tree_entries(encode_object(tree)) == [(e.name, e.mode, e.oid.raw) for e in tree]


@given(_trees, st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4))
@settings(max_examples=400, deadline=None)
def test_fast_tree_decoder_never_accepts_what_the_strict_one_refuses(
    tree: Tree, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(encode_object(tree))
    for at, value in edits:
        if at < len(data):
            data[at] = value
    fast = tree_entries(bytes(data))
    if fast is not None:
        strict = _strict(bytes(data))
        assert isinstance(strict, Tree)
        assert fast == [(e.name, e.mode, e.oid.raw) for e in strict]


# --- the C-level fast checks (steve.objects.fastcheck) ------------------------------------


def _children(tree: Tree) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    return (
        tuple(e.oid.raw for e in tree if e.mode is Mode.TREE),
        tuple(e.oid.raw for e in tree if e.mode is not Mode.TREE),
    )


@given(_trees)
@settings(max_examples=150, deadline=None)
def test_tree_children_reads_every_canonical_tree_with_short_names(tree: Tree) -> None:
    fast = tree_children(encode_object(tree))
    if all(len(e.name.encode()) <= 23 for e in tree):
        assert fast == _children(tree)
    else:  # a longer name: the byte-by-byte decoder's business
        assert fast is None


_short_names = st.text(min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..", ".steve") and "/" not in n and "\x00" not in n
)
_short_trees = st.dictionaries(
    _short_names,
    st.tuples(st.sampled_from(list(Mode)), st.sampled_from([b"\x00" * 32, b"\xff" * 32])),
    max_size=12,
).map(lambda d: Tree.from_entries([TreeEntry(n, m, ObjectId(r)) for n, (m, r) in d.items()]))


@given(
    st.one_of(_trees, _short_trees),
    st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)), max_size=4),
    st.integers(-40, 40),
)
@settings(max_examples=1500, deadline=None)
def test_tree_children_never_accepts_what_the_strict_decoder_refuses(
    tree: Tree, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(encode_object(tree))
    for at, value in edits:
        if at < len(data):
            data[at] = value
    if cut < 0:
        del data[len(data) + cut : len(data) + cut + 1]  # one byte gone, somewhere
    elif cut > 0:
        data[min(cut * 7, len(data)) : min(cut * 7, len(data))] = bytes([cut])  # one inserted
    fast = tree_children(bytes(data))
    if fast is not None:
        strict = _strict(bytes(data))
        assert isinstance(strict, Tree)
        assert fast == _children(strict)
        assert tree_entries(bytes(data)) is not None


def _raw_tree(*entries: tuple[bytes, int, bytes], count: int | None = None) -> bytes:
    """A tree's bytes put together by hand: names as given (any bytes), in the order given."""
    out = bytearray(b"\xa3\x61v\x01\x64type\x64tree\x67entries")
    n = len(entries) if count is None else count
    out += bytes([0x80 + n]) if n < 24 else bytes([0x98, n])
    for name, mode, raw in entries:
        out += b"\x83" + (bytes([0x60 + len(name)]) if len(name) < 24 else bytes([0x78, len(name)]))
        out += name + b"\x19" + mode.to_bytes(2, "big") + b"\x58\x20" + raw
    return bytes(out)


_ID_A, _ID_B = b"\x01" * 32, b"\x02" * 32


@pytest.mark.parametrize(
    "data",
    [
        _raw_tree((b"b", Mode.FILE, _ID_A), (b"a", Mode.FILE, _ID_B)),  # unsorted
        _raw_tree((b"a", Mode.FILE, _ID_A), (b"a", Mode.TREE, _ID_B)),  # a name twice
        _raw_tree((b".", Mode.FILE, _ID_A)),
        _raw_tree((b"..", Mode.TREE, _ID_A)),
        _raw_tree((b".steve", Mode.TREE, _ID_A)),
        _raw_tree((b"a/b", Mode.FILE, _ID_A)),
        _raw_tree((b"a\x00", Mode.FILE, _ID_A)),
        _raw_tree((b"\xff", Mode.FILE, _ID_A)),  # not UTF-8
        _raw_tree((b"a\xc3", Mode.FILE, _ID_A), (b"\xa9", Mode.FILE, _ID_B)),  # split character
        _raw_tree((b"\xed\xa0\x80", Mode.FILE, _ID_A)),  # a surrogate
        _raw_tree((b"a", 0o100600, _ID_A)),  # unknown mode
        _raw_tree((b"a", Mode.FILE, _ID_A), count=2),  # fewer entries than the count
        _raw_tree((b"a", Mode.FILE, _ID_A), (b"b", Mode.FILE, _ID_B), count=1),
        _raw_tree((b"a", Mode.FILE, _ID_A)) + b"\x00",  # trailing bytes
        _raw_tree((b"a", Mode.FILE, _ID_A))[:-1],  # short id
        _raw_tree((b"a", Mode.FILE, _ID_A)).replace(b"\x83\x61a", b"\x83\x78\x01a"),  # long form
        _raw_tree((b"a", Mode.FILE, _ID_A)).replace(b"entries\x81", b"entries\x98\x01"),
        _raw_tree((b"a", Mode.FILE, _ID_A)).replace(b"\x19\x81\xa4", b"\x1a\x00\x00\x81\xa4"),
        _raw_tree(),  # fine: empty (checked below)
    ],
)
def test_tree_children_refuses_non_canonical_trees(data: bytes) -> None:
    fast = tree_children(data)
    if data == encode_object(Tree(())):
        assert fast == ((), ())
        return
    assert fast is None
    with pytest.raises(MalformedObject):
        decode_object(data)


def test_tree_children_leaves_long_names_to_the_byte_by_byte_decoder() -> None:
    tree = Tree.from_entries([TreeEntry("n" * 24, Mode.FILE, ObjectId(_ID_A))])
    assert tree_children(encode_object(tree)) is None
    assert tree_entries(encode_object(tree)) == [("n" * 24, Mode.FILE, _ID_A)]


def _framed(data: bytes, size: int) -> bool:
    frame = blob_frame(size)
    return (
        frame is not None
        and len(data) == frame[1]
        and data.startswith(frame[0])
        and data.endswith(BLOB_TAIL)
    )


@pytest.mark.parametrize("n", [0, 1, 23, 24, 255, 256, 65_535, 65_536, CHUNK_SIZE])
def test_blob_frame_at_every_header_boundary(n: int) -> None:
    data = encode_object(Blob(os.urandom(n)))
    assert _framed(data, n)
    assert not _framed(data, n + 1) and not _framed(data, n - 1)
    assert blob_frame(CHUNK_SIZE + 1) is None and blob_frame(-1) is None


@given(
    st.binary(max_size=300),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    st.integers(-3, 3),
    st.integers(-2, 2),
)
@settings(max_examples=400, deadline=None)
def test_blob_frame_agrees_with_the_blob_decoder(
    content: bytes, edits: list[tuple[int, int]], cut: int, skew: int
) -> None:
    data = bytearray(encode_object(Blob(content)))
    for at, value in edits:
        if at < len(data):
            data[at] = value
    if cut < 0:
        del data[cut:]
    elif cut > 0:
        data += bytes(cut)
    size = len(content) + skew  # the size the index claims
    framed = _framed(bytes(data), size)
    assert framed == (inline_blob_length(bytes(data)) == size)
    if framed:
        assert _strict(bytes(data)) == Blob(bytes(data)[len(data) - 10 - size : len(data) - 10])


# --- verify and fsck over a damaged store -------------------------------------------------


def _damaged(repo: Repo, files: int = 60, unrelated: int = 40) -> tuple[ObjectId, dict[str, str]]:
    """A tree with damage of every kind, plus unrelated objects; the damaged ids."""
    with repo.writer() as w:
        blobs = [w.add(Blob(b"file %d\n" % i)) for i in range(files)]
        for i in range(unrelated):
            w.add(Blob(b"other %d\n" % i))
        sub = w.add(Tree.from_entries([TreeEntry("x", Mode.FILE, blobs[0])]))
        short = w.add(Blob(b"abc"))
        tail = w.add(Blob(b"xyz"))
        chunked = w.add(ChunkedBlob(CHUNK_SIZE + 3, ((short, CHUNK_SIZE), (tail, 3))))
        entries = [TreeEntry(f"f{i:03d}", Mode.FILE, b) for i, b in enumerate(blobs)]
        entries += [
            TreeEntry("sub", Mode.TREE, sub),
            TreeEntry("not-a-blob", Mode.FILE, sub),  # a tree where a blob must be
            TreeEntry("big", Mode.FILE, chunked),
        ]
        top = w.add(Tree.from_entries(entries))
    assert repo.key is not None and repo.steve_dir is not None
    conn = raw_connect(repo.steve_dir / "steve.db", repo.key)
    conn.execute("UPDATE objects SET data = ? WHERE oid = ?", (b"garbage", blobs[3].raw))
    conn.execute("DELETE FROM objects WHERE oid = ?", (blobs[7].raw,))
    conn.close()
    return top, {
        "changed": blobs[3].hex,
        "deleted": blobs[7].hex,
        "tree": sub.hex,
        "chunk": short.hex,
        "chunked": chunked.hex,
    }


def _verify_problems(repo: Repo, top: ObjectId) -> tuple[set[str], int]:
    report = verify(repo, top)
    return {f"{p.kind.value} {p.oid.hex}" for p in report.problems}, report.objects


@pytest.mark.parametrize("scan", [True, False], ids=["scan", "lookups"])
def test_verify_finds_every_problem_on_either_path(
    repo: Repo, scan: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    top, ids = _damaged(repo)
    expected = {
        f"corrupt {ids['changed']}",
        f"missing {ids['deleted']}",
        f"bad-type {ids['tree']}",
        f"corrupt {ids['chunk']}",  # verify names the short chunk
    }
    # a huge fraction forces the scan; zero never satisfies it (lookups only)
    monkeypatch.setattr(verify_module, "SCAN_FRACTION", 1_000_000 if scan else 0)
    monkeypatch.setattr(verify_module, "BATCH", 7)  # many small batches
    problems, objects = _verify_problems(repo, top)
    assert problems == expected
    assert objects == 59 + 1 + 1 + 1 + 2  # files (one missing), sub, top, chunked, 2 chunks


def test_verify_words_problems_alike_with_or_without_the_fast_tree_check(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    top, ids = _damaged(repo)
    reports = []
    for fast in (True, False):
        if not fast:  # every tree entry by entry, each reference with its label at hand
            monkeypatch.setattr(verify_module, "tree_children", lambda data: None)
        report = verify(repo, top)
        reports.append(([str(p) for p in report.problems], report.objects, report.bytes))
    assert reports[0] == reports[1]
    problems = reports[0][0]
    assert f"missing {ids['deleted']}: entry 'f007' of tree {top.short()} is not in the store" in (
        problems
    )
    assert f"bad-type {ids['tree']}: entry 'not-a-blob' of tree {top.short()} is a tree" in problems


def test_verify_names_every_missing_entry_of_a_fast_checked_tree(repo: Repo) -> None:
    absent = [ObjectId(bytes([i % 256, i // 256]) + bytes(30)) for i in range(300)]
    with repo.writer() as w:
        top = w.add(
            Tree.from_entries([TreeEntry(f"e{i:03d}", Mode.FILE, o) for i, o in enumerate(absent)])
        )
    assert verify_module.tree_children(repo.read_raw(top)) is not None
    report = verify(repo, top)
    assert sorted(str(p) for p in report.problems) == sorted(
        f"missing {o.hex}: entry 'e{i:03d}' of tree {top.short()} is not in the store"
        for i, o in enumerate(absent)
    )


def test_verify_takes_the_ordered_way_for_an_id_both_subtree_and_file(repo: Repo) -> None:
    with repo.writer() as w:
        blob = w.add(Blob(b"x"))
        sub = w.add(Tree.from_entries([TreeEntry("x", Mode.FILE, blob)]))
        long_name = w.add(Tree.from_entries([TreeEntry("n" * 40, Mode.FILE, blob)]))
        top = w.add(
            Tree.from_entries(
                [
                    TreeEntry("a", Mode.TREE, sub),
                    TreeEntry("b", Mode.FILE, sub),  # the id met first as a subtree
                    TreeEntry("c", Mode.TREE, long_name),  # a name too long for the fast check
                ]
            )
        )
    assert verify_module.tree_children(repo.read_raw(top)) is not None
    report = verify(repo, top)
    # each reference is checked against what it expects: "b" expects a blob
    assert [str(p) for p in report.problems] == [
        f"bad-type {sub.hex}: entry 'b' of tree {top.short()} is a tree"
    ]


@pytest.mark.parametrize("tree_first", [True, False])
def test_verify_checks_an_id_against_every_kind_of_reference_to_it(
    repo: Repo, tree_first: bool
) -> None:
    """One tree names an id as a subtree, another as a file: whichever verify meets
    first, the reference that expects the wrong type is reported (as fsck does)."""
    with repo.writer() as w:
        blob = w.add(Blob(b"x"))
        sub = w.add(Tree.from_entries([TreeEntry("x", Mode.FILE, blob)]))
        as_tree = w.add(Tree.from_entries([TreeEntry("t", Mode.TREE, sub)]))
        as_file = w.add(Tree.from_entries([TreeEntry("f", Mode.FILE, sub)]))
        first, second = (as_tree, as_file) if tree_first else (as_file, as_tree)
        top = w.add(
            Tree.from_entries([TreeEntry("a", Mode.TREE, first), TreeEntry("b", Mode.TREE, second)])
        )
    report = verify(repo, top)
    assert [str(p) for p in report.problems] == [
        f"bad-type {sub.hex}: entry 'f' of tree {as_file.short()} is a tree"
    ]
    assert report.objects == 5  # each object counted once: blob, sub, as_tree, as_file, top
    assert not maint.fsck(repo.backend).ok


def test_verify_paths_agree_on_a_sound_closure(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    tree_dir = repo.root / "work" if repo.root else None
    assert tree_dir is not None
    (tree_dir / "d").mkdir(parents=True)
    for i in range(30):
        (tree_dir / "d" / f"{i}.txt").write_bytes(b"%d" % i)
    (tree_dir / "big.bin").write_bytes(os.urandom(2 * CHUNK_SIZE + 1))
    root = repo.write_tree(tree_dir)
    results = []
    for fraction in (1_000_000, 0):
        monkeypatch.setattr(verify_module, "SCAN_FRACTION", fraction)
        report = verify(repo, root)
        assert report.ok, report.problems
        results.append((report.objects, report.bytes))
    assert results[0] == results[1]
    assert results[0][0] == 1 + 1 + 30 + 1 + 3  # root, d, files, big's index, chunks


@pytest.mark.parametrize("recent", [1, maint.RECENT], ids=["no-window", "window"])
def test_fsck_finds_every_problem_with_or_without_the_window(
    repo: Repo, recent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ids = _damaged(repo)
    monkeypatch.setattr(maint, "RECENT", recent)
    monkeypatch.setattr(maint, "SCAN_PAGE", 5)
    report = repo.fsck()
    found = {f"{p.kind.value} {p.oid.hex}" for p in report.problems if p.oid is not None}
    assert found == {
        f"corrupt {ids['changed']}",
        f"missing {ids['deleted']}",
        f"bad-type {ids['tree']}",
        f"corrupt {ids['chunked']}",  # fsck names the chunked blob that claims the chunk
    }
    assert report.objects == 60 - 1 + 40 + 1 + 2 + 1 + 1  # every stored row


def test_scan_and_lookup_contract(repo: Repo) -> None:
    small = repo.write(Blob(b"small"))
    large = repo.write(Blob(os.urandom(70_000)))
    absent = ObjectId(b"\x07" * 32)
    rows = {r[0]: r for r in repo.lookup_objects([small, large, absent], 65_536)}
    assert set(rows) == {small.raw, large.raw}
    assert rows[small.raw] == ((small.raw, "blob", 5, encode_object(Blob(b"small"))))
    assert rows[large.raw] == (large.raw, "blob", 70_000, None)
    assert all(r[3] is None for r in repo.lookup_objects([small], -1))
    seen: list[bytes] = []
    after = 0
    while True:
        nxt, page = repo.scan_objects(after, 1, 65_536)
        if nxt == after:
            break
        after = nxt
        seen += [r[0] for r in page]
    assert sorted(seen) == sorted([small.raw, large.raw])
    assert repo.count_estimate() >= 2
