"""History walks: git-log order over a DAG, filters, formats, the lane graph, and
streaming in bounded memory over a 20k-manifest history."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest

from steve.errors import WrongObjectType
from steve.objects.model import Blob, Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.summary import ManifestHead
from steve.porcelain.history import LogEntry, format_date, format_entry, summarize, walk
from steve.porcelain.log import Graph
from steve.repo import Repo
from steve.store.kdf import KdfParams
from steve.store.sqlite import SCHEMA_VERSION

T0 = 1_700_000_000


def research(repo: Repo, title: str, t: int, parents: Sequence[ObjectId] = ()) -> ObjectId:
    return repo.write(
        Manifest(ObjectType.RESEARCH, 1, tuple(parents), (), t, 0, {"title": title, "sources": []})
    )


def diamond(repo: Repo) -> dict[str, ObjectId]:
    """a <- b, a <- c, (b, c) <- d  with times a < b < c < d."""
    a = research(repo, "a", T0)
    b = research(repo, "b", T0 + 10, [a])
    c = research(repo, "c", T0 + 20, [a])
    d = research(repo, "d", T0 + 30, [b, c])
    return {"a": a, "b": b, "c": c, "d": d}


def titles(entries: list[LogEntry]) -> list[str]:
    return [e.summary.split(" (")[0] for e in entries]


@pytest.fixture(params=["memory", "sqlcipher"])
def any_repo(request: pytest.FixtureRequest, tmp_path: Path, fast_kdf: KdfParams):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        yield Repo.memory()
        return
    repo = Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf)
    yield repo
    repo.close()


def test_walk_is_newest_first_and_visits_each_once(any_repo: Repo) -> None:
    ids = diamond(any_repo)
    entries = list(walk(any_repo, [ids["d"]]))
    assert titles(entries) == ["d", "c", "b", "a"]
    assert entries[0].parents == (ids["b"], ids["c"])
    assert titles(list(walk(any_repo, [ids["b"], ids["c"]]))) == ["c", "b", "a"]
    assert titles(list(walk(any_repo, [ids["d"], ids["d"]], limit=2))) == ["d", "c"]
    assert list(walk(any_repo, [ids["d"]], limit=0)) == []


def test_equal_times_keep_queue_order_so_children_precede_parents() -> None:
    repo = Repo.memory()
    xs = [research(repo, f"x{i}", T0) for i in range(5)]
    top = research(repo, "top", T0, xs)
    assert [e.oid for e in walk(repo, [top])] == [top, *xs]
    chain = [research(repo, "c0", T0)]
    for i in range(1, 6):
        chain.append(research(repo, f"c{i}", T0, [chain[-1]]))
    assert [e.oid for e in walk(repo, [chain[-1]])] == chain[::-1]


def test_kind_filter_walks_through_other_kinds() -> None:
    repo = Repo.memory()
    d = repo.write(
        Manifest(ObjectType.DESIGN, 1, (), (), T0, 0, {"name": "n", "intent": {"summary": "s"}})
    )
    r = research(repo, "r", T0 + 1, [d])
    d2 = repo.write(Manifest(ObjectType.DESIGN, 1, (r,), (), T0 + 2, 0, {"name": "n2"}))
    got = list(walk(repo, [d2], kinds=[ObjectType.DESIGN]))
    assert [e.oid for e in got] == [d2, d]
    assert got[1].summary == "n: s"


def test_walk_rejects_non_manifests_and_peels_tags() -> None:
    repo = Repo.memory()
    blob = repo.write(Blob(b"x"))
    with pytest.raises(WrongObjectType):
        list(walk(repo, [blob]))
    r = research(repo, "r", T0)
    tag = repo.create_tag("v1", r, message="release", now=T0, tz=0)
    assert [e.oid for e in walk(repo, [tag])] == [r]


def test_format_placeholders() -> None:
    repo = Repo.memory()
    a = research(repo, "a", T0)
    b = research(repo, "b", T0 + 1, [a])
    (entry,) = list(walk(repo, [b], limit=1))
    text = format_entry("%H|%h|%s|%ad|%at|%k|%p|%P|%%|%n|%x", entry, abbrev=7)
    assert text == (
        f"{b.hex}|{b.hex[:7]}|b (0 sources)|Tue Nov 14 22:13:21 2023 +0000|{T0 + 1}|research|"
        f"{a.hex[:7]}|{a.hex}|%|\n|%x"
    )
    assert format_date(T0, -330) == "Tue Nov 14 16:43:20 2023 -0530"


def test_summaries_never_raise_on_odd_bodies() -> None:
    for kind in ObjectType:
        if kind.is_manifest:
            assert isinstance(
                summarize(kind, {"amends": "ab" * 32, "nodes": 3, "decision": 1}), str
            )
            assert summarize(kind, []) == ""


def drawn(repo: Repo, starts: Sequence[ObjectId]) -> list[str]:
    g, out = Graph(), []
    for e in walk(repo, starts):
        rows = g.rows(e)
        out.append((rows.mark + e.summary.split(" (")[0]).rstrip())
        out += rows.after
    return out


def test_graph_draws_merge_and_fork_connectors() -> None:
    repo = Repo.memory()
    ids = diamond(repo)
    assert drawn(repo, [ids["d"]]) == ["*   d", "|\\", "| * c", "* | b", "|/", "* a"]
    assert drawn(repo, [ids["b"], ids["c"]]) == ["* c", "| * b", "|/", "* a"]


# DAGs as (name, parents) in time order; the walk's order (by time) is git's
# --topo-order for these, so the drawing must be git's, character for character.
GRAPH_CASES = {
    "linear": ([("a", []), ("b", ["a"]), ("c", ["b"])], ["c"]),
    "diamond": ([("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])], ["d"]),
    "fork": ([("a", []), ("b", ["a"]), ("c", ["a"])], ["b", "c"]),
    "three heads": ([("a", []), ("b", ["a"]), ("c", ["a"]), ("e", ["a"])], ["b", "c", "e"]),
    "side branch": (
        [("a", []), ("b", ["a"]), ("c", ["b"]), ("s1", ["a"]), ("s2", ["s1"]), ("m", ["c", "s2"])],
        ["m"],
    ),
    "merge then more": (
        [("a", []), ("b", ["a"]), ("c", ["a"]), ("m", ["b", "c"]), ("n", ["m"])],
        ["n"],
    ),
}


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_graph_matches_git_log_graph(case: str, tmp_path: Path) -> None:
    import subprocess

    from tests.gitenv import git_exe, scrubbed_git_env

    dag, heads = GRAPH_CASES[case]
    repo = Repo.memory()
    ours: dict[str, ObjectId] = {}
    for i, (name, parents) in enumerate(dag):
        ours[name] = research(repo, name, T0 + i, [ours[p] for p in parents])
    env = scrubbed_git_env(tmp_path)
    (tmp_path / "g").mkdir()

    def git(*args: str, **extra: str) -> str:
        proc = subprocess.run(
            [git_exe(), *args], cwd=tmp_path / "g", env={**env, **extra},
            capture_output=True, check=True,
        )  # fmt: skip
        return proc.stdout.decode().strip()

    git("init", "-q")
    tree = git("write-tree")
    commits: dict[str, str] = {}
    for i, (name, parents) in enumerate(dag):
        stamp = f"{T0 + i} +0000"
        args = ["commit-tree", tree, "-m", name]
        for p in parents:
            args += ["-p", commits[p]]
        commits[name] = git(*args, GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    theirs = git("log", "--graph", "--format=%s", *(commits[h] for h in heads))
    assert drawn(repo, [ours[h] for h in heads]) == [x.rstrip() for x in theirs.splitlines()]


def test_log_streams_20k_history_in_bounded_memory() -> None:
    repo = Repo.memory()
    n = 20_000
    prev: tuple[ObjectId, ...] = ()
    with repo.writer() as w:
        for i in range(n):
            prev = (
                w.add(Manifest(ObjectType.RESEARCH, 1, prev, (), T0 + i, 0, {"title": f"t{i}"})),
            )
    head = prev[0]
    reads = calls = 0
    real_chain = repo.backend.manifest_chain

    def counting_chain(oid: ObjectId, limit: int) -> list[tuple[ObjectId, ManifestHead]]:
        nonlocal reads, calls
        rows = real_chain(oid, limit)
        reads += len(rows)
        calls += 1
        return rows

    repo.backend.manifest_chain = counting_chain  # type: ignore[method-assign]
    gen = walk(repo, [head])
    first = next(gen)
    assert first.oid == head
    assert reads <= 64  # the first entry came out after one short prefetch, not 20,000 rows
    tracemalloc.start()
    try:
        count = 1 + sum(1 for _ in gen)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert reads == n  # each manifest-index row read once, nothing decoded
    assert calls <= 12  # prefetch batches double up to 8192 rows
    # What stays is the seen set (one 32-byte id per manifest, ~200 bytes with set
    # overhead); the frontier of a linear history is one entry.  Materialising the
    # entries instead (list(walk(...))) peaks at ~470 bytes per manifest.
    assert peak < 300 * n, peak


# --- the manifest index (schema v3) ---------------------------------------------------------


def _linear(repo: Repo, n: int) -> list[ObjectId]:
    ids: list[ObjectId] = []
    with repo.writer() as w:
        for i in range(n):
            parents = (ids[-1],) if ids else ()
            ids.append(
                w.add(Manifest(ObjectType.RESEARCH, 1, parents, (), T0 + i, 0, {"title": f"s{i}"}))
            )
    return ids


def test_index_rows_are_written_with_the_manifest_and_match_its_bytes(repo: Repo) -> None:
    ids = _linear(repo, 5)
    head = repo.backend.manifest_head(ids[-1])
    assert head is not None
    assert head.parents == (ids[-2],)
    assert (head.kind, head.time, head.tz, head.summary) == (
        ObjectType.RESEARCH,
        T0 + 4,
        0,
        "s4 (0 sources)",
    )
    assert repo.fsck().ok


def test_v2_database_gets_its_index_backfilled_on_open(tmp_path: Path, fast_kdf: KdfParams) -> None:
    with Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf) as repo:
        ids = _linear(repo, 30)
        repo.update_ref("refs/heads/main", ids[-1])
        conn = repo.backend._conn  # type: ignore[attr-defined]
        conn.execute("DROP TABLE manifests")
        conn.execute("DROP TABLE derived")
        conn.execute("UPDATE meta SET value = 2 WHERE key = 'schema_version'")
    with Repo.open(tmp_path / "r", passphrase="pw") as repo:
        assert repo.backend.get_meta("schema_version") == str(SCHEMA_VERSION)
        got = [e.oid for e in walk(repo, [repo.rev_parse("main")])]
        assert got == ids[::-1]
        assert all(repo.backend.manifest_head(i) is not None for i in ids)
        assert repo.fsck().ok


def test_fsck_reports_a_wrong_or_stale_index_row_and_gc_repairs_it(repo: Repo) -> None:
    ids = _linear(repo, 3)
    repo.update_ref("refs/heads/main", ids[-1])
    conn = repo.backend._conn  # type: ignore[attr-defined]
    conn.execute("UPDATE manifests SET summary = 'lies' WHERE oid = ?", (ids[1].raw,))
    conn.execute("DELETE FROM manifests WHERE oid = ?", (ids[0].raw,))
    ghost = ObjectId(bytes(32))
    conn.execute(
        "INSERT INTO manifests (oid, kind, time, tz, parents, summary) "
        "VALUES (?, 'design', 1, 0, x'', 'ghost')",
        (ghost.raw,),
    )
    report = repo.fsck()
    index = [p for p in report.problems if p.kind.value == "index"]
    assert sorted(p.oid.hex for p in index if p.oid) == sorted([ids[0].hex, ids[1].hex, ghost.hex])
    assert len(report.problems) == 3
    gc = repo.gc(prune_before=None)
    assert gc.index_repaired == 3
    assert repo.fsck().ok
    assert [e.summary for e in walk(repo, [ids[-1]])] == [
        "s2 (0 sources)",
        "s1 (0 sources)",
        "s0 (0 sources)",
    ]
