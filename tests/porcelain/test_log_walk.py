"""The log walk against a model of git's commit queue, and the manifest index's
first-parent positions (schema v4): hints that speed a walk up and never change it."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steve.objects.model import Manifest, ObjectType, hash_object
from steve.objects.oid import ObjectId
from steve.porcelain.history import format_entry, row_formatter, walk, walk_rows
from steve.repo import Repo
from steve.store.kdf import KdfParams
from steve.store.sqlite import SCHEMA_VERSION

T0 = 1_700_000_000
KINDS = (ObjectType.DESIGN, ObjectType.RESEARCH, ObjectType.PLAN)


def model_walk(
    graph: dict[ObjectId, tuple[int, tuple[ObjectId, ...], ObjectType]],
    starts: Sequence[ObjectId],
    kinds: set[ObjectType] | None,
    limit: int | None,
) -> list[ObjectId]:
    """git's commit queue, plainly: newest first, ties in queue order, each id once."""
    seen: set[ObjectId] = set()
    heap: list[tuple[int, int, ObjectId]] = []
    order = 0
    for s in starts:
        if s not in seen:
            seen.add(s)
            heap.append((-graph[s][0], order, s))
            order += 1
    heapq.heapify(heap)
    out: list[ObjectId] = []
    while heap and (limit is None or len(out) < limit):
        _, _, oid = heapq.heappop(heap)
        for p in graph[oid][1]:
            if p not in seen:
                seen.add(p)
                heapq.heappush(heap, (-graph[p][0], order, p))
                order += 1
        if kinds is None or graph[oid][2] in kinds:
            out.append(oid)
    return out


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[Manifest], list[int], list[int]]:
    """Manifests in topological order (parents drawn from earlier ones; times may
    tie or run backwards, as clocks do), an order to store them in, and starts."""
    n = draw(st.integers(1, 24))
    tag = draw(st.integers(0, 1 << 30))  # keeps examples from sharing objects
    manifests: list[Manifest] = []
    ids: list[ObjectId] = []
    for i in range(n):
        parents: list[ObjectId] = []
        if i:
            picks = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True))
            if draw(st.booleans()):  # mostly chains: the previous one first
                picks = [i - 1, *(p for p in picks if p != i - 1)]
            parents = [ids[p] for p in picks]
        m = Manifest(
            draw(st.sampled_from(KINDS)),
            1,
            tuple(parents),
            (),
            T0 + draw(st.integers(0, 6)) * 10 + (i if draw(st.booleans()) else 0),
            0,
            {"title": f"{tag}-{i}", "name": f"{tag}-{i}"},
        )
        manifests.append(m)
        ids.append(hash_object(m)[0])
    order = draw(st.permutations(range(n)))
    starts = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3))
    return manifests, list(order), starts


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    from tests.conftest import make_fast_kdf

    repo = Repo.init(tmp_path_factory.mktemp("walk") / "r", passphrase="pw", kdf=make_fast_kdf())
    yield repo
    repo.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dag=dags(),
    kinds=st.none() | st.sets(st.sampled_from(KINDS), min_size=1),
    limit=st.none() | st.integers(1, 30),
    relink=st.booleans(),
)
def test_walk_matches_the_model_whatever_the_store_order(
    shared: Repo,
    dag: tuple[list[Manifest], list[int], list[int]],
    kinds: set[ObjectType] | None,
    limit: int | None,
    relink: bool,
) -> None:
    manifests, order, start_idx = dag
    ids = [hash_object(m)[0] for m in manifests]
    with shared.writer() as w:  # any order: children may come before their parents
        for i in order:
            w.add(manifests[i])
    if relink:
        shared.backend.relink_manifests()
    graph = {ids[i]: (m.time, m.parents, m.type) for i, m in enumerate(manifests)}
    starts = [ids[i] for i in start_idx]
    want = model_walk(graph, starts, kinds, limit)
    kind_list = None if kinds is None else sorted(kinds)
    for repo in (shared, _memory_copy(manifests, order)):
        got = [e.oid for e in walk(repo, starts, kinds=kind_list, limit=limit)]
        assert got == want
        rows = list(walk_rows(repo, starts, kinds=kind_list, limit=limit))
        assert [ObjectId(r[0]) for r in rows] == want


def _memory_copy(manifests: list[Manifest], order: list[int]) -> Repo:
    repo = Repo.memory()
    with repo.writer() as w:
        for i in order:
            w.add(manifests[i])
    return repo


def _linear(repo: Repo, n: int, title: str = "s") -> list[ObjectId]:
    ids: list[ObjectId] = []
    with repo.writer() as w:
        for i in range(n):
            parents = (ids[-1],) if ids else ()
            m = Manifest(ObjectType.RESEARCH, 1, parents, (), T0 + i, 0, {"title": f"{title}{i}"})
            ids.append(w.add(m))
    return ids


def _unlinked(repo: Repo) -> int:
    conn = repo.backend._conn  # type: ignore[attr-defined]
    (n,) = conn.execute(
        "SELECT count(*) FROM manifests AS m WHERE length(m.parents) >= 32 AND m.p1 IS NOT "
        "(SELECT x.pos FROM manifests AS x WHERE x.oid = substr(m.parents, 1, 32))"
    ).fetchone()
    return int(n)


def test_first_parent_positions_are_linked_at_insert(repo: Repo) -> None:
    ids = _linear(repo, 300)
    assert _unlinked(repo) == 0
    rows = repo.backend.manifest_rows(ids[-1].raw, 1000)
    assert [r[0] for r in rows] == [i.raw for i in reversed(ids)]  # one query, whole chain


def test_a_stale_position_hint_ends_the_chain_early_and_never_misleads(repo: Repo) -> None:
    ids = _linear(repo, 50)
    other = _linear(repo, 50, title="o")
    conn = repo.backend._conn  # type: ignore[attr-defined]
    # point s30's first-parent hint at a row of the other history
    (wrong,) = conn.execute("SELECT pos FROM manifests WHERE oid = ?", (other[10].raw,)).fetchone()
    conn.execute("UPDATE manifests SET p1 = ? WHERE oid = ?", (wrong, ids[30].raw))
    rows = repo.backend.manifest_rows(ids[-1].raw, 1000)
    assert [r[0] for r in rows] == [i.raw for i in reversed(ids[30:])]
    assert [e.oid for e in walk(repo, [ids[-1]])] == ids[::-1]
    assert _unlinked(repo) == 1
    assert repo.gc(prune_before=None).index_repaired == 0  # a hint, not a wrong row
    assert _unlinked(repo) == 0
    assert len(repo.backend.manifest_rows(ids[-1].raw, 1000)) == 50


def test_children_stored_before_parents_walk_right_and_gc_links_them(repo: Repo) -> None:
    ms: list[Manifest] = []
    ids: list[ObjectId] = []
    for i in range(40):
        m = Manifest(ObjectType.RESEARCH, 1, tuple(ids[-1:]), (), T0 + i, 0, {"title": f"r{i}"})
        ms.append(m)
        ids.append(hash_object(m)[0])
    with repo.writer() as w:
        for m in reversed(ms):
            w.add(m)
    assert _unlinked(repo) == 39
    assert [e.oid for e in walk(repo, [ids[-1]])] == ids[::-1]
    repo.gc(prune_before=None)
    assert _unlinked(repo) == 0
    assert [e.oid for e in walk(repo, [ids[-1]])] == ids[::-1]


V3_MANIFESTS = """
CREATE TABLE manifests (
    oid BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL,
    tz INTEGER NOT NULL,
    parents BLOB NOT NULL,
    summary TEXT NOT NULL
) STRICT, WITHOUT ROWID
"""


def test_v3_index_is_rebuilt_with_positions_on_open(tmp_path: Path, fast_kdf: KdfParams) -> None:
    with Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf) as repo:
        ids = _linear(repo, 120)
        repo.update_ref("refs/heads/main", ids[-1])
        conn = repo.backend._conn  # type: ignore[attr-defined]
        rows = conn.execute(
            "SELECT oid, kind, time, tz, parents, summary FROM manifests"
        ).fetchall()
        conn.execute("DROP TABLE manifests")
        conn.execute(V3_MANIFESTS)
        conn.executemany("INSERT INTO manifests VALUES (?,?,?,?,?,?)", rows)
        conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
    with Repo.open(tmp_path / "r", passphrase="pw") as repo:
        assert repo.backend.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert _unlinked(repo) == 0
        assert [e.oid for e in walk(repo, [repo.rev_parse("main")])] == ids[::-1]
        assert repo.fsck().ok


def test_row_formatter_agrees_with_format_entry_and_keeps_braces() -> None:
    repo = Repo.memory()
    ids = _linear(repo, 3, title="{x}")
    merge = repo.write(Manifest(ObjectType.PLAN, 1, (ids[2], ids[0]), (), T0 + 9, -90, {}))
    fmts = ["%h %k %s", "{%H} %at %ad", "%p|%P|%h|%s|%k", "%s%n%%{}", "plain", "%h%h%h%h%h%h"]
    for row, entry in zip(walk_rows(repo, [merge]), walk(repo, [merge]), strict=True):
        for fmt in fmts:
            for n in (4, 7, 12, 64):
                assert row_formatter(fmt, n)(row) == format_entry(fmt, entry, abbrev=n)
    (top,) = walk(repo, [merge], limit=1)
    assert format_entry("%p {%k}", top, abbrev=7) == f"{ids[2].hex[:7]} {ids[0].hex[:7]} {{plan}}"
    assert format_entry("%h", top, abbrev=7) == merge.hex[:7]
