"""Revision syntax against a simple Python model, on both backends."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from steve.errors import (
    AmbiguousPrefix,
    BadRevision,
    ObjectNotFound,
    UnknownRevision,
    WrongObjectType,
)
from steve.objects.model import Blob, Manifest, Mode, ObjectType, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.store.base import ANY
from steve.store.kdf import KdfParams
from tests.conftest import make_fast_kdf

KINDS = [t for t in ObjectType if t.is_manifest]
REV_ERRORS = (UnknownRevision, BadRevision, WrongObjectType, AmbiguousPrefix)


def fast_kdf() -> KdfParams:
    return make_fast_kdf()


@pytest.fixture(scope="module")
def encrypted_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    repo = Repo.init(tmp_path_factory.mktemp("rev") / "r", passphrase="pw", kdf=fast_kdf())
    try:
        yield repo
    finally:
        repo.close()


def manifest(parents: list[ObjectId], tag: str, i: int) -> Manifest:
    return Manifest(
        kind=KINDS[i % len(KINDS)],
        version=1,
        parents=tuple(parents),
        links=(),
        time=1_700_000_000 + i,
        tz=0,
        body={"node": i, "run": tag},
    )


def build_dag(repo: Repo, shape: list[list[int]], tag: str) -> list[ObjectId]:
    """Write one manifest per node; node i's parents are the listed earlier nodes."""
    ids: list[ObjectId] = []
    with repo.writer() as w:
        for i, parents in enumerate(shape):
            ids.append(w.add(manifest([ids[p] for p in parents], tag, i)))
    return ids


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 9) -> list[list[int]]:
    n = draw(st.integers(1, max_nodes))
    shape: list[list[int]] = []
    for i in range(n):
        if i == 0:
            shape.append([])
            continue
        shape.append(
            draw(st.lists(st.integers(0, i - 1), unique=True, min_size=0, max_size=min(3, i)))
        )
    return shape


# an operation: ("^", n) / ("~", n) with n None for the bare form
OPS = st.lists(
    st.tuples(st.sampled_from(["^", "~"]), st.one_of(st.none(), st.integers(0, 4))),
    max_size=4,
)


def render(ops: list[tuple[str, int | None]]) -> str:
    return "".join(op + ("" if n is None else str(n)) for op, n in ops)


def model_walk(shape: list[list[int]], start: int, ops: list[tuple[str, int | None]]) -> int | None:
    """The node ``start`` + ``ops`` names, or None if git would say 'unknown revision'."""
    node = start
    for op, n in ops:
        count = 1 if n is None else n
        if op == "^":
            if count == 0:
                continue
            if count > len(shape[node]):
                return None
            node = shape[node][count - 1]
        else:
            for _ in range(count):
                if not shape[node]:
                    return None
                node = shape[node][0]
    return node


def check_walks(
    repo: Repo,
    shape: list[list[int]],
    ids: list[ObjectId],
    walks: list[tuple[int, list[tuple[str, int | None]]]],
    branch: str,
) -> None:
    for start, ops in walks:
        start %= len(shape)
        expected = model_walk(shape, start, ops)
        repo.update_ref(f"refs/heads/{branch}", ids[start], ANY)
        for base in (ids[start].hex, ids[start].hex[:16], branch, f"refs/heads/{branch}"):
            rev = base + render(ops)
            if expected is None:
                with pytest.raises(UnknownRevision):
                    repo.rev_parse(rev)
            else:
                assert repo.rev_parse(rev) == ids[expected], (rev, shape)


WALKS = st.lists(st.tuples(st.integers(0, 100), OPS), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(shape=dags(), walks=WALKS)
@example(shape=[[], [0], [1, 0], [2]], walks=[(3, [("^", None), ("^", 2)]), (2, [("~", 2)])])
def test_dag_navigation_matches_model_memory(
    shape: list[list[int]], walks: list[tuple[int, list[tuple[str, int | None]]]]
) -> None:
    repo = Repo.memory()
    ids = build_dag(repo, shape, "m")
    check_walks(repo, shape, ids, walks, "walk")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=dags(), walks=WALKS)
def test_dag_navigation_matches_model_encrypted(
    encrypted_repo: Repo,
    shape: list[list[int]],
    walks: list[tuple[int, list[tuple[str, int | None]]]],
) -> None:
    ids = build_dag(encrypted_repo, shape, "enc")
    check_walks(encrypted_repo, shape, ids, walks, "walk")


# --- prefixes ----------------------------------------------------------------------------


def colliding_blobs(repo: Repo, want: int) -> tuple[str, list[ObjectId]]:
    """Write blobs until ``want`` of them share a 4-hex prefix; return it and all its ids."""
    buckets: dict[str, list[ObjectId]] = defaultdict(list)
    i = 0
    with repo.writer() as w:
        while True:
            oid = w.add(Blob(f"collide {i}".encode()))
            i += 1
            bucket = buckets[oid.hex[:4]]
            bucket.append(oid)
            if len(bucket) >= want:
                return oid.hex[:4], sorted(bucket)


@pytest.mark.parametrize("backend", ["memory", "encrypted"])
def test_ambiguous_prefix_lists_every_candidate(backend: str, tmp_path: Path) -> None:
    repo = (
        Repo.memory()
        if backend == "memory"
        else Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf())
    )
    try:
        prefix, ids = colliding_blobs(repo, 3)
        # every object with that prefix, according to the store itself
        every = sorted(i.oid for i in repo.iter_objects() if i.oid.hex.startswith(prefix))
        assert every == ids
        with pytest.raises(AmbiguousPrefix) as info:
            repo.rev_parse(prefix)
        err = info.value
        assert err.prefix == prefix
        assert sorted(err.candidates) == [o.hex for o in ids]
        assert err.code == "STEVE-REV-002" and err.exit_code == 5
        # the shortest prefix that tells each one apart resolves to it, and only to it
        for oid in ids:
            others = [o.hex for o in ids if o != oid]
            n = 4
            while any(h.startswith(oid.hex[:n]) for h in others):
                n += 1
            assert repo.rev_parse(oid.hex[:n]) == oid
            assert repo.rev_parse(oid.hex[:n] + "^{}") == oid
            for shorter in range(4, n):
                with pytest.raises(AmbiguousPrefix):
                    repo.rev_parse(oid.hex[:shorter])
    finally:
        repo.close()


def test_unique_prefixes_resolve_and_short_ones_do_not() -> None:
    repo = Repo.memory()
    with repo.writer() as w:
        ids = [w.add(Blob(f"p{i}".encode())) for i in range(50)]
    for oid in ids:
        assert repo.rev_parse(oid.hex) == oid
        assert repo.rev_parse(oid.hex[:12]) == oid
        with pytest.raises(UnknownRevision):
            repo.rev_parse(oid.hex[:3])  # fewer than 4 hex digits is not a prefix
    missing = next(
        h for h in (f"{n:04x}" for n in range(65536)) if not any(o.hex.startswith(h) for o in ids)
    )
    with pytest.raises(UnknownRevision):
        repo.rev_parse(missing)
    with pytest.raises(UnknownRevision):
        repo.rev_parse("f" * 64 if not repo.has_object(ObjectId(b"\xff" * 32)) else "0" * 64)


# --- refs ---------------------------------------------------------------------------------


def test_dwim_prefers_tags_over_branches_like_git() -> None:
    repo = Repo.memory()
    a, b, c = build_dag(repo, [[], [0], [1]], "dwim")
    repo.update_ref("refs/heads/X", a, None)
    repo.update_ref("refs/tags/X", b, None)
    assert repo.rev_parse("X") == b
    assert repo.resolve("X").ref == "refs/tags/X"
    assert repo.rev_parse("heads/X") == a
    assert repo.rev_parse("tags/X") == b
    assert repo.rev_parse("refs/heads/X") == a
    # refs/X beats refs/tags/X (rule 2 before rule 3)
    repo.update_ref("refs/X", c, None)
    assert repo.rev_parse("X") == c
    # refs/remotes/X comes after heads
    repo.update_ref("refs/remotes/Y", a, None)
    assert repo.rev_parse("Y") == a
    repo.update_ref("refs/remotes/Z/HEAD", b, None)
    assert repo.rev_parse("Z") == b


def test_ref_beats_hex_prefix_like_git() -> None:
    repo = Repo.memory()
    a, b = build_dag(repo, [[], [0]], "hex")
    name = a.hex[:8]
    repo.update_ref(f"refs/heads/{name}", b, None)
    assert repo.rev_parse(name) == b
    assert repo.rev_parse(a.hex) == a  # a full id is always the object


def test_head_and_at_sign() -> None:
    repo = Repo.memory()
    with pytest.raises(UnknownRevision):
        repo.rev_parse("HEAD")  # unborn
    (a,) = build_dag(repo, [[]], "head")
    repo.update_ref("refs/heads/main", a, None)
    assert repo.rev_parse("HEAD") == a
    assert repo.rev_parse("@") == a
    assert repo.resolve("HEAD").ref == "refs/heads/main"


def test_reflog_selectors(any_repo: Repo) -> None:
    repo = any_repo
    ids = build_dag(repo, [[], [0], [1], [2], [3]], "reflog")
    for oid in ids:
        repo.update_ref("refs/heads/main", oid)
    newest_first = list(reversed(ids))
    for n, oid in enumerate(newest_first):
        assert repo.rev_parse(f"main@{{{n}}}") == oid
        assert repo.rev_parse(f"refs/heads/main@{{{n}}}") == oid
        assert repo.rev_parse(f"@{{{n}}}") == oid  # the current branch
        assert repo.rev_parse(f"HEAD@{{{n}}}") == oid  # HEAD's own log (same here)
    assert repo.rev_parse("main@{1}~2") == ids[1]
    assert repo.rev_parse("main@{2}^") == ids[1]
    with pytest.raises(UnknownRevision):
        repo.rev_parse(f"main@{{{len(ids)}}}")
    with pytest.raises(UnknownRevision):
        repo.rev_parse("nosuch@{0}")
    entries = repo.reflog("main")
    assert [e.new for e in entries] == newest_first
    assert [e.old for e in entries] == [*newest_first[1:], None]


def test_head_reflog_is_heads_own_log_after_switching(any_repo: Repo) -> None:
    """git: HEAD@{N} reads HEAD's log (which records switches); @{N} the branch's."""
    repo = any_repo
    a, b, c = build_dag(repo, [[], [0], [1]], "switch")
    repo.update_ref("refs/heads/main", a)
    repo.update_ref("refs/heads/main", b)
    repo.update_ref("refs/heads/other", c)
    repo.set_symbolic_ref("HEAD", "refs/heads/other")
    assert repo.rev_parse("HEAD@{0}") == c
    assert repo.rev_parse("HEAD@{1}") == b  # before the switch HEAD was at main = b
    assert repo.rev_parse("HEAD@{2}") == a
    assert repo.rev_parse("@{0}") == c  # other's own log has one entry
    with pytest.raises(UnknownRevision):
        repo.rev_parse("@{1}")
    assert repo.rev_parse("main@{1}") == a


# --- peeling ------------------------------------------------------------------------------


def test_peeling_tags(any_repo: Repo) -> None:
    repo = any_repo
    m0, m1 = build_dag(repo, [[], [0]], "peel")
    blob = repo.write_blob(b"content")
    tree = repo.write(Tree.from_entries([TreeEntry("f", Mode.FILE, blob)]))
    t1 = repo.create_tag("v1", m1, message="one", now=1_700_000_000, tz=0)
    t2 = repo.create_tag("v1-of-tag", t1, message="tag of a tag", now=1_700_000_001, tz=0)
    tt = repo.create_tag("treetag", tree, message="tree", now=1_700_000_002, tz=0)
    repo.create_tag("light", m1)

    assert repo.object_type(t1) is ObjectType.TAG
    assert repo.rev_parse("v1") == t1
    assert repo.rev_parse("v1^{}") == m1
    assert repo.rev_parse("v1^{tag}") == t1
    assert repo.rev_parse("v1^{object}") == t1
    assert repo.rev_parse(f"v1^{{{repo.object_type(m1).value}}}") == m1
    assert repo.rev_parse("v1^0") == m1
    assert repo.rev_parse("v1^") == m0
    assert repo.rev_parse("v1~1") == m0
    assert repo.rev_parse("v1-of-tag") == t2
    assert repo.rev_parse("v1-of-tag^{}") == m1
    assert repo.rev_parse("v1-of-tag^{tag}") == t2
    assert repo.rev_parse("v1-of-tag^{tag}^{}") == m1
    assert repo.rev_parse("v1-of-tag^0") == m1
    assert repo.rev_parse("v1-of-tag~1") == m0
    assert repo.rev_parse("light") == m1
    assert repo.rev_parse("light^{}") == m1
    assert repo.rev_parse("treetag^{tree}") == tree
    assert repo.rev_parse("treetag^{}") == tree
    assert repo.rev_parse(f"{tree.hex}^{{tree}}") == tree
    assert repo.rev_parse(f"{blob.hex}^{{blob}}") == blob

    with pytest.raises(WrongObjectType):
        repo.rev_parse("light^{tag}")  # a lightweight tag names the manifest itself
    with pytest.raises(WrongObjectType):
        repo.rev_parse("v1^{tree}")  # manifests carry no tree
    with pytest.raises(WrongObjectType):
        repo.rev_parse("treetag^{blob}")
    with pytest.raises(WrongObjectType):
        repo.rev_parse("treetag^0")  # ^0 needs a manifest
    with pytest.raises(WrongObjectType):
        repo.rev_parse("treetag~1")
    with pytest.raises(WrongObjectType):
        repo.rev_parse(f"{blob.hex}^")
    with pytest.raises(BadRevision):
        repo.rev_parse("v1^{nosuchtype}")
    with pytest.raises(UnknownRevision):
        repo.rev_parse("v1^2")
    assert tt != tree


def test_missing_objects_are_unknown_revisions(any_repo: Repo) -> None:
    oid = ObjectId.of(b"never written")
    with pytest.raises(UnknownRevision):
        any_repo.rev_parse(oid.hex)
    with pytest.raises((UnknownRevision, ObjectNotFound)):
        any_repo.rev_parse(oid.hex + "^{}")


# --- arbitrary input -----------------------------------------------------------------------

REV_ALPHABET = st.sampled_from(
    [*list("^~{}@:/.0123456789abcdef-_ "), "HEAD", "main", "v1", "tag", "tree", "blob", "{-1}"]
)


@pytest.fixture(scope="module")
def small_history() -> Repo:
    repo = Repo.memory()
    a, b, c = build_dag(repo, [[], [0], [1, 0]], "junk")
    repo.update_ref("refs/heads/main", a)
    repo.update_ref("refs/heads/main", c)
    repo.create_tag("v1", b, message="v1", now=1_700_000_000, tz=0)
    repo.write_blob(b"a blob")
    return repo


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rev=st.one_of(st.text(), st.lists(REV_ALPHABET, max_size=12).map("".join)))
@example(rev="")
@example(rev="^")
@example(rev="@{")
@example(rev="main@{-1}")
@example(rev="main@{99999999999999999999999}")
@example(rev="main~99999999999")
@example(rev="main^{")
@example(rev="\x00")
@example(rev="A" * 64)
@example(rev="refs/heads/main\n")
def test_arbitrary_strings_raise_only_revision_errors(small_history: Repo, rev: str) -> None:
    try:
        oid = small_history.rev_parse(rev)
    except REV_ERRORS as err:
        assert err.code.startswith(("STEVE-REV-", "STEVE-OBJ-004"))
    else:
        assert small_history.has_object(oid)
