"""The storage contract (steve.store.base.Backend), run against every backend.

The ``backend`` fixture (tests/conftest.py) yields a MemoryBackend and a real
SQLCipher file in turn; every test here must hold for both.
"""

from __future__ import annotations

import random

import pytest

from steve.errors import RefUpdateRejected
from steve.objects.model import Blob, ObjectType, Tree, TreeEntry, hash_object
from steve.objects.oid import ObjectId
from steve.store.base import ANY, Backend, OutboxEvent, ReflogEntry, RefRecord, SecretRecord


class Boom(Exception):
    """Raised inside a transaction to abort it."""


def blob(data: bytes) -> tuple[ObjectId, ObjectType, int, bytes]:
    oid, enc = hash_object(Blob(data))
    return oid, ObjectType.BLOB, len(data), enc


def raw_id(hex_prefix: str, fill: str = "0") -> ObjectId:
    """An id with a chosen hex prefix (backends store ids, they do not re-hash)."""
    return ObjectId.from_hex((hex_prefix + fill * 64)[:64])


def put_ids(backend: Backend, oids: list[ObjectId]) -> None:
    with backend.transaction() as tx:
        tx.put_many((o, ObjectType.BLOB, 1, b"x" + o.raw) for o in oids)


def entry(
    ref: str, old: ObjectId | None, new: ObjectId | None, msg: str, t: int = 1
) -> ReflogEntry:
    return ReflogEntry(ref, old, new, "T <t@x>", t, 0, msg)


# --- objects -----------------------------------------------------------------------------


def test_put_then_read(backend: Backend) -> None:
    oid, t, size, data = blob(b"hello")
    assert not backend.has(oid)
    assert backend.read(oid) is None
    assert backend.info(oid) is None
    assert backend.read_with_info(oid) is None
    with backend.transaction() as tx:
        tx.put(oid, t, size, data)
    assert backend.has(oid)
    assert backend.read(oid) == data
    info = backend.info(oid)
    assert info is not None
    assert (info.oid, info.type, info.size) == (oid, ObjectType.BLOB, 5)
    assert info.created > 1_600_000_000
    assert backend.read_with_info(oid) == (ObjectType.BLOB, 5, data)
    assert backend.count() == 1


def test_put_many_and_types(backend: Backend) -> None:
    rows = [blob(bytes([i]) * i) for i in range(20)]
    tree = Tree.from_entries([TreeEntry(f"f{i}", 0o100644, r[0]) for i, r in enumerate(rows)])  # type: ignore[arg-type]
    toid, tdata = hash_object(tree)
    with backend.transaction() as tx:
        tx.put_many(rows)
        tx.put(toid, ObjectType.TREE, len(tdata), tdata)
    assert backend.count() == 21
    assert backend.read_with_info(toid) == (ObjectType.TREE, len(tdata), tdata)
    for oid, _, size, data in rows:
        assert backend.read_with_info(oid) == (ObjectType.BLOB, size, data)


def test_put_is_idempotent(backend: Backend) -> None:
    oid, t, size, data = blob(b"same")
    with backend.transaction() as tx:
        tx.put(oid, t, size, data)
        tx.put(oid, t, size, data)
    first = backend.info(oid)
    with backend.transaction() as tx:
        tx.put_many([(oid, t, size, data)] * 3)
    assert backend.count() == 1
    assert backend.info(oid) == first
    assert backend.read(oid) == data
    assert [i.oid for i in backend.iter_info()] == [oid]


def test_first_write_wins_for_an_id(backend: Backend) -> None:
    oid = raw_id("ab")
    with backend.transaction() as tx:
        tx.put(oid, ObjectType.BLOB, 1, b"first")
    with backend.transaction() as tx:
        tx.put(oid, ObjectType.BLOB, 2, b"second")
    assert backend.read_with_info(oid) == (ObjectType.BLOB, 1, b"first")


def test_delete_objects(backend: Backend) -> None:
    rows = [blob(str(i).encode()) for i in range(10)]
    with backend.transaction() as tx:
        tx.put_many(rows)
    doomed = [r[0] for r in rows[:4]]
    missing = raw_id("ee")
    with backend.transaction() as tx:
        n = tx.delete_objects([*doomed, doomed[0], missing])
    assert n == 4
    assert backend.count() == 6
    for oid in doomed:
        assert not backend.has(oid)
        assert backend.read(oid) is None
        assert backend.info(oid) is None
        assert backend.match_prefix(oid.hex) == []
    left = sorted(r[0] for r in rows[4:])
    assert [i.oid for i in backend.iter_info()] == left
    assert [o for o, _ in backend.iter_raw()] == left
    # deleting then re-adding works
    with backend.transaction() as tx:
        tx.put_many(rows[:1])
    assert backend.has(rows[0][0])


# --- prefixes ----------------------------------------------------------------------------


BOUNDARY = [
    raw_id("", "0"),  # 00...00
    raw_id("", "f"),  # ff...ff
    raw_id("00", "f"),
    raw_id("ff", "0"),
    raw_id("fff0"),
    raw_id("abc0"),
    raw_id("abcf", "f"),
    raw_id("abd0"),
    raw_id("abbf", "f"),
    raw_id("0abc"),
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("abc", ["abc0", "abcf"]),  # odd length: the half byte counts
        ("abc0", ["abc0"]),
        ("abcf", ["abcf"]),
        ("ab", ["abbf", "abc0", "abcf", "abd0"]),
        ("abd", ["abd0"]),
        ("abe", []),
        ("0", ["0000", "00ff", "0abc"]),
        ("000", ["0000"]),
        ("00f", ["00ff"]),
        ("f", ["ff00", "fff0", "ffff"]),
        ("fff", ["fff0", "ffff"]),
        ("ffff", ["ffff"]),
        ("ff0", ["ff00"]),
        ("e", []),
        ("f" * 64, ["ffff"]),
        ("0" * 64, ["0000"]),
        ("f" * 63, ["ffff"]),
    ],
)
def test_match_prefix_boundaries(backend: Backend, prefix: str, expected: list[str]) -> None:
    put_ids(backend, BOUNDARY)
    got = backend.match_prefix(prefix, limit=100)
    assert [o.hex[:4] for o in got] == expected
    assert all(o.hex.startswith(prefix) for o in got)
    assert got == sorted(got)


def test_match_prefix_random_against_brute_force(backend: Backend) -> None:
    rng = random.Random(1234)
    oids = [
        ObjectId(bytes([rng.choice([0, 1, 0xAB, 0xFF])]) + rng.randbytes(31)) for _ in range(600)
    ]
    oids += BOUNDARY
    put_ids(backend, oids)
    everything = sorted(set(oids))
    probes = ["0", "1", "a", "f", "ab", "ff", "00", "01", "fe"]
    probes += [o.hex[:n] for o in rng.sample(everything, 40) for n in (1, 2, 3, 5, 7, 9)]
    for prefix in probes:
        want = [o for o in everything if o.hex.startswith(prefix)]
        assert backend.match_prefix(prefix, limit=10_000) == want, prefix
        assert backend.match_prefix(prefix, limit=3) == want[:3], prefix


# --- iteration -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 511, 512, 513, 1024, 1300])
def test_iter_info_ordered_and_complete(backend: Backend, n: int) -> None:
    rows = [blob(i.to_bytes(4, "big")) for i in range(n)]
    rows.append(blob(b"")) if n else None
    with backend.transaction() as tx:
        tx.put_many(rows)
    want = sorted(r[0] for r in rows)
    infos = list(backend.iter_info())
    assert [i.oid for i in infos] == want
    assert len({i.oid for i in infos}) == len(want)
    by_id = {r[0]: r for r in rows}
    assert all(i.size == by_id[i.oid][2] and i.type is ObjectType.BLOB for i in infos)
    raw = list(backend.iter_raw())
    assert [o for o, _ in raw] == want
    assert all(data == by_id[o][3] for o, data in raw)
    assert backend.count() == len(want)


def test_iter_info_includes_boundary_ids(backend: Backend) -> None:
    many = [raw_id(f"{i:04x}", "5") for i in range(0, 65536, 97)]
    put_ids(backend, [*many, *BOUNDARY])
    got = [i.oid for i in backend.iter_info()]
    assert got == sorted(set(many + BOUNDARY))
    assert got[0] == raw_id("", "0") and got[-1] == raw_id("", "f")


# --- refs ----------------------------------------------------------------------------------


def test_refs_set_read_list_delete(backend: Backend) -> None:
    a, b = raw_id("aa"), raw_id("bb")
    put_ids(backend, [a, b])
    assert backend.read_ref("refs/heads/main") is None
    with backend.transaction() as tx:
        assert tx.set_ref("refs/heads/main", RefRecord(a), expected=None) is None
        assert tx.read_ref("refs/heads/main") == RefRecord(a)  # sees its own write
        tx.set_ref("refs/tags/v1", RefRecord(b))
        tx.set_ref("HEAD", RefRecord(symbolic="refs/heads/main"))
    assert backend.read_ref("refs/heads/main") == RefRecord(a)
    assert backend.read_ref("HEAD") == RefRecord(symbolic="refs/heads/main")
    assert backend.list_refs("") == [
        ("HEAD", RefRecord(symbolic="refs/heads/main")),
        ("refs/heads/main", RefRecord(a)),
        ("refs/tags/v1", RefRecord(b)),
    ]
    assert backend.list_refs("refs/heads/") == [("refs/heads/main", RefRecord(a))]
    assert backend.list_refs("refs/nothing/") == []
    with backend.transaction() as tx:
        prev = tx.set_ref("refs/heads/main", RefRecord(b), expected=RefRecord(a))
    assert prev == RefRecord(a)
    assert backend.read_ref("refs/heads/main") == RefRecord(b)
    with backend.transaction() as tx:
        assert tx.set_ref("refs/tags/v1", None, expected=RefRecord(b)) == RefRecord(b)
    assert backend.read_ref("refs/tags/v1") is None
    assert [n for n, _ in backend.list_refs("")] == ["HEAD", "refs/heads/main"]


@pytest.mark.parametrize(
    "expected",
    [None, RefRecord(raw_id("cc")), RefRecord(symbolic="refs/heads/x")],
    ids=["absent", "other-id", "symbolic"],
)
def test_cas_rejects_and_changes_nothing(backend: Backend, expected: RefRecord | None) -> None:
    a, b = raw_id("aa"), raw_id("bb")
    put_ids(backend, [a, b])
    with backend.transaction() as tx:
        tx.set_ref("refs/heads/main", RefRecord(a), expected=None)
        tx.append_reflog(entry("refs/heads/main", None, a, "create"))
    with pytest.raises(RefUpdateRejected) as info, backend.transaction() as tx:
        tx.put(b, ObjectType.BLOB, 1, b"y")
        tx.append_reflog(entry("refs/heads/main", a, b, "lost race"))
        tx.set_ref("refs/heads/main", RefRecord(b), expected=expected)
    assert info.value.name == "refs/heads/main"
    assert info.value.actual == a.hex
    assert backend.read_ref("refs/heads/main") == RefRecord(a)
    assert [e.message for e in backend.reflog("refs/heads/main")] == ["create"]


def test_cas_on_absent_ref_rejects_expectation(backend: Backend) -> None:
    with pytest.raises(RefUpdateRejected), backend.transaction() as tx:
        tx.set_ref("refs/heads/x", RefRecord(raw_id("aa")), expected=RefRecord(raw_id("aa")))
    assert backend.read_ref("refs/heads/x") is None
    with backend.transaction() as tx:  # ANY never rejects
        tx.set_ref("refs/heads/x", RefRecord(raw_id("aa")), expected=ANY)
    with pytest.raises(RefUpdateRejected), backend.transaction() as tx:
        tx.set_ref("refs/heads/x", None, expected=None)  # "must not exist" but it does
    assert backend.read_ref("refs/heads/x") == RefRecord(raw_id("aa"))


def test_symbolic_refs(backend: Backend) -> None:
    a = raw_id("aa")
    with backend.transaction() as tx:
        tx.set_ref("HEAD", RefRecord(symbolic="refs/heads/main"), expected=None)
    assert backend.read_ref("HEAD") == RefRecord(symbolic="refs/heads/main")
    assert backend.read_ref("refs/heads/main") is None  # unborn branch
    with backend.transaction() as tx:
        tx.set_ref("refs/heads/main", RefRecord(a))
        tx.set_ref(
            "HEAD",
            RefRecord(symbolic="refs/heads/dev"),
            expected=RefRecord(symbolic="refs/heads/main"),
        )
    assert backend.read_ref("HEAD") == RefRecord(symbolic="refs/heads/dev")
    with pytest.raises(RefUpdateRejected), backend.transaction() as tx:
        tx.set_ref("HEAD", RefRecord(a), expected=RefRecord(symbolic="refs/heads/main"))
    with backend.transaction() as tx:  # symbolic -> direct (detached)
        tx.set_ref("HEAD", RefRecord(a), expected=RefRecord(symbolic="refs/heads/dev"))
    assert backend.read_ref("HEAD") == RefRecord(a)


def test_ref_record_holds_exactly_one_thing() -> None:
    with pytest.raises(ValueError):
        RefRecord()
    with pytest.raises(ValueError):
        RefRecord(raw_id("aa"), "refs/heads/main")


# --- reflog ----------------------------------------------------------------------------------


def test_reflog_newest_first(backend: Backend) -> None:
    ids = [raw_id(f"{i:02x}") for i in range(1, 6)]
    prev = None
    for i, oid in enumerate(ids):
        with backend.transaction() as tx:
            tx.append_reflog(entry("refs/heads/main", prev, oid, f"step {i}", t=100))
        prev = oid
    with backend.transaction() as tx:  # several entries in one transaction keep their order
        tx.append_reflog(entry("refs/heads/main", prev, ids[0], "a", t=100))
        tx.append_reflog(entry("refs/heads/other", None, ids[0], "o", t=100))
        tx.append_reflog(entry("refs/heads/main", ids[0], ids[1], "b", t=100))
    log = backend.reflog("refs/heads/main")
    assert [e.message for e in log] == ["b", "a", "step 4", "step 3", "step 2", "step 1", "step 0"]
    assert log[-1].old is None and log[-1].new == ids[0]
    assert log[0] == ReflogEntry("refs/heads/main", ids[0], ids[1], "T <t@x>", 100, 0, "b")
    assert backend.reflog("refs/heads/nothing") == []
    assert backend.reflog_refs() == ["refs/heads/main", "refs/heads/other"]


def test_reflog_entry_with_deletion(backend: Backend) -> None:
    a = raw_id("aa")
    with backend.transaction() as tx:
        tx.append_reflog(entry("HEAD", a, None, "gone"))
    assert backend.reflog("HEAD") == [entry("HEAD", a, None, "gone")]


def test_delete_reflog(backend: Backend) -> None:
    ids = [raw_id(f"{i:02x}") for i in range(1, 5)]
    with backend.transaction() as tx:
        for i, oid in enumerate(ids):
            tx.append_reflog(entry("refs/heads/main", None, oid, f"m{i}"))
        tx.append_reflog(entry("refs/heads/keep", None, ids[0], "k"))
    with backend.transaction() as tx:
        assert tx.delete_reflog("refs/heads/main", keep_newest=2) == 2
    assert [e.message for e in backend.reflog("refs/heads/main")] == ["m3", "m2"]
    with backend.transaction() as tx:
        assert tx.delete_reflog("refs/heads/main") == 2
    assert backend.reflog("refs/heads/main") == []
    assert backend.reflog_refs() == ["refs/heads/keep"]


def test_delete_reflog_counts_entries_of_the_same_transaction(backend: Backend) -> None:
    ids = [raw_id(f"{i:02x}") for i in range(1, 6)]
    with backend.transaction() as tx:
        for i, oid in enumerate(ids[:3]):
            tx.append_reflog(entry("refs/heads/main", None, oid, f"old{i}"))
    with backend.transaction() as tx:
        tx.append_reflog(entry("refs/heads/main", None, ids[3], "new0"))
        tx.append_reflog(entry("refs/heads/main", None, ids[4], "new1"))
        assert tx.delete_reflog("refs/heads/main", keep_newest=1) == 4
    assert [e.message for e in backend.reflog("refs/heads/main")] == ["new1"]
    with backend.transaction() as tx:
        tx.append_reflog(entry("refs/heads/main", None, ids[0], "again"))
        tx.delete_reflog("refs/heads/main", keep_newest=3)
    assert [e.message for e in backend.reflog("refs/heads/main")] == ["again", "new1"]


# --- transactions ----------------------------------------------------------------------------


def test_exception_in_transaction_leaves_nothing(backend: Backend) -> None:
    keep = blob(b"kept")
    with backend.transaction() as tx:
        tx.put(*keep)
        tx.set_ref("refs/heads/main", RefRecord(keep[0]))
        tx.append_reflog(entry("refs/heads/main", None, keep[0], "create"))
    before_refs = backend.list_refs("")
    rows = [blob(f"doomed {i}".encode()) for i in range(700)]
    with pytest.raises(Boom), backend.transaction() as tx:
        tx.put_many(rows)
        tx.set_ref("refs/heads/main", RefRecord(rows[0][0]))
        tx.set_ref("refs/heads/new", RefRecord(rows[1][0]))
        tx.set_ref("HEAD", RefRecord(symbolic="refs/heads/new"))
        tx.append_reflog(entry("refs/heads/main", keep[0], rows[0][0], "doomed"))
        tx.append_reflog(entry("refs/heads/new", None, rows[1][0], "doomed"))
        tx.delete_objects([keep[0]])
        tx.delete_reflog("refs/heads/main")
        raise Boom
    assert backend.count() == 1
    assert backend.has(keep[0])
    assert not any(backend.has(r[0]) for r in rows)
    assert [i.oid for i in backend.iter_info()] == [keep[0]]
    assert backend.list_refs("") == before_refs
    assert [e.message for e in backend.reflog("refs/heads/main")] == ["create"]
    assert backend.reflog("refs/heads/new") == []
    assert backend.reflog_refs() == ["refs/heads/main"]
    # and the backend is still usable afterwards
    with backend.transaction() as tx:
        tx.put(*rows[0])
    assert backend.has(rows[0][0])


def test_keyboard_interrupt_in_transaction_rolls_back(backend: Backend) -> None:
    row = blob(b"interrupted")
    with pytest.raises(KeyboardInterrupt), backend.transaction() as tx:
        tx.put(*row)
        tx.set_ref("refs/heads/x", RefRecord(row[0]))
        raise KeyboardInterrupt
    assert not backend.has(row[0])
    assert backend.read_ref("refs/heads/x") is None


def test_transaction_changes_become_visible_together(backend: Backend) -> None:
    row = blob(b"atomic")
    with backend.transaction() as tx:
        tx.put(*row)
        tx.set_ref("refs/heads/main", RefRecord(row[0]), expected=None)
        tx.append_reflog(entry("refs/heads/main", None, row[0], "create"))
    assert backend.has(row[0])
    assert backend.read_ref("refs/heads/main") == RefRecord(row[0])
    assert len(backend.reflog("refs/heads/main")) == 1


# --- derived data: the manifest index and keyed maps ------------------------------------------


def _manifest(parents: tuple[ObjectId, ...], t: int) -> tuple[ObjectId, bytes]:
    from steve.objects.model import Manifest, encode_object

    data = encode_object(Manifest(ObjectType.PLAN, 1, parents, (), t, 60, {"title": f"p{t}"}))
    return ObjectId.of(data), data


def test_manifest_index_rows_follow_puts_and_deletes(backend: Backend) -> None:
    ids: list[ObjectId] = []
    with backend.transaction() as tx:
        for t in range(10):
            oid, data = _manifest((ids[-1],) if ids else (), t)
            tx.put(oid, ObjectType.PLAN, len(data), data)
            ids.append(oid)
    head = backend.manifest_head(ids[3])
    assert head is not None
    assert (head.kind, head.time, head.tz, head.parents) == (ObjectType.PLAN, 3, 60, (ids[2],))
    assert head.summary == "p3 (0 nodes)"
    assert [o for o, _ in backend.manifest_chain(ids[9], 4)] == ids[9:5:-1]
    assert [o for o, _ in backend.manifest_chain(ids[2], 100)] == [ids[2], ids[1], ids[0]]
    assert backend.manifest_chain(ObjectId(bytes(32)), 5) == []
    assert sorted(o.raw for o, _ in backend.iter_manifest_heads()) == sorted(i.raw for i in ids)
    with backend.transaction() as tx:
        tx.delete_objects([ids[5]])
    assert backend.manifest_head(ids[5]) is None
    # the chain stops at the hole
    assert [o for o, _ in backend.manifest_chain(ids[7], 100)] == [ids[7], ids[6]]


def test_derived_maps_are_per_space_and_transactional(backend: Backend) -> None:
    with backend.transaction() as tx:
        tx.put_derived("a", b"k1", b"v1")
        tx.put_derived("a", b"k2", b"v2")
        tx.put_derived("b", b"k1", b"other")
    assert backend.get_derived("a", b"k1") == b"v1"
    assert backend.get_derived("b", b"k1") == b"other"
    assert backend.get_derived("a", b"nope") is None
    assert list(backend.iter_derived("a")) == [(b"k1", b"v1"), (b"k2", b"v2")]
    with pytest.raises(RuntimeError), backend.transaction() as tx:
        tx.put_derived("a", b"k1", b"changed")
        tx.delete_derived("a", b"k2")
        raise RuntimeError("roll back")
    assert list(backend.iter_derived("a")) == [(b"k1", b"v1"), (b"k2", b"v2")]
    with backend.transaction() as tx:
        tx.put_derived("a", b"k1", b"changed")
        tx.delete_derived("a", b"k2")
    assert list(backend.iter_derived("a")) == [(b"k1", b"changed")]


# --- the outbox and maintenance (one repository transaction; item 21's protocol) ---------


def _event(n: int) -> OutboxEvent:
    return OutboxEvent(0, 1_700_000_000_000 + n, "ref.updated", None, "c", "a", b"\xa0")


def test_outbox_commits_and_rolls_back_with_the_transaction(backend: Backend) -> None:
    oid, t, s, d = blob(b"with its event")
    with backend.transaction() as tx:
        tx.put(oid, t, s, d)
        tx.append_outbox(_event(1))
        tx.append_outbox(_event(2))
    with pytest.raises(Boom), backend.transaction() as tx:
        tx.put(*blob(b"rolled back"))
        tx.append_outbox(_event(3))
        raise Boom
    rows = backend.outbox(10)
    assert [r.time_ms for r in rows] == [1_700_000_000_001, 1_700_000_000_002]
    assert rows[0].seq < rows[1].seq and backend.outbox_count() == 2
    assert backend.outbox(10, after=rows[0].seq) == rows[1:]
    with backend.transaction() as tx:
        assert tx.delete_outbox(rows[0].seq) == 1
        tx.append_outbox(_event(4))
    later = backend.outbox(10)
    assert [r.time_ms for r in later] == [1_700_000_000_002, 1_700_000_000_004]
    assert later[-1].seq > rows[1].seq  # numbers are never reused


def test_integrity_check_and_vacuum(backend: Backend) -> None:
    put_ids(backend, [raw_id(f"{i:02x}") for i in range(50)])
    with backend.transaction() as tx:
        tx.delete_objects([raw_id(f"{i:02x}") for i in range(50)])
    backend.vacuum()
    assert backend.check_integrity() == []
    assert backend.count() == 0


def test_secret_rows_replace_by_name_and_roll_back(backend: Backend) -> None:
    one = SecretRecord("TOKEN", 1, "value", b"first-value", 100, "a <a@x>")
    two = SecretRecord("TOKEN", 2, "command", b"pass show x", 101, "b <b@x>")
    assert backend.get_secret("TOKEN") is None and backend.list_secrets() == []
    with backend.transaction() as tx:
        tx.put_secret(one)
        assert tx.read_secret("TOKEN") == one  # visible inside its transaction
    assert backend.get_secret("TOKEN") == one
    with pytest.raises(Boom), backend.transaction() as tx:
        tx.put_secret(two)
        raise Boom
    assert backend.get_secret("TOKEN") == one  # rolled back
    with backend.transaction() as tx:
        tx.put_secret(two)
        tx.put_secret(SecretRecord("A", 1, "removed", b"", 102, "c <c@x>"))
    assert backend.list_secrets() == [
        SecretRecord("A", 1, "removed", b"", 102, "c <c@x>"), two
    ]


def test_text_index_replaces_by_uri_matches_every_term_and_rolls_back(backend: Backend) -> None:
    a, b = ObjectId.of(b"a"), ObjectId.of(b"b")
    assert backend.search_text(["wal"], 5) == [] and backend.text_count() == 0
    with backend.transaction() as tx:
        tx.put_text("https://x/a", a, "Write-ahead log", "readers never block the writer")
        tx.put_text("https://x/b", b, "Blobs", "content addressed writer writer")
    assert backend.text_count() == 2
    assert [h.uri for h in backend.search_text(["writer", "readers"], 5)] == ["https://x/a"]
    assert {h.uri for h in backend.search_text(["writer"], 5)} == {"https://x/a", "https://x/b"}
    assert backend.search_text(["writer"], 1)[0].content in (a, b)
    assert backend.search_text([], 5) == [] and backend.search_text(["writer"], 0) == []
    hit = backend.search_text(["log"], 5)[0]
    assert (hit.uri, hit.content, hit.title) == ("https://x/a", a, "Write-ahead log")
    with pytest.raises(Boom), backend.transaction() as tx:
        tx.delete_text("https://x/a")
        raise Boom
    assert backend.text_count() == 2  # rolled back
    with backend.transaction() as tx:
        tx.put_text("https://x/a", b, "Other", "nothing in common")
        tx.delete_text("https://x/b")
    assert backend.search_text(["writer"], 5) == [] and backend.text_count() == 1
    assert [h.content for h in backend.search_text(["common"], 5)] == [b]
    assert backend.search_text(['"quoted', "OR", "NEAR("], 5) == []  # never FTS5 syntax
