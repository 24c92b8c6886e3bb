"""Random histories (DAGs with merges, any offsets and kinds): export, fsck, re-export
idempotently, verify; and the same history in two repositories gives the same ids."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steve.gitbridge import RefStatus, export_git, verify_git
from steve.gitbridge.layout import GIT_MAP
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.gitenv import make_git, scrubbed_git_env

from .helpers import KINDS, write_manifest

Node = tuple[list[int], int, int, int, str]  # parents, time step, tz, kind index, label


@st.composite
def histories(draw: st.DrawFn) -> list[Node]:
    n = draw(st.integers(1, 12))
    nodes: list[Node] = []
    for i in range(n):
        parents = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        nodes.append(
            (
                parents,
                draw(st.integers(0, 3)),  # equal times happen
                draw(st.integers(-1439, 1439)),
                draw(st.integers(0, len(KINDS) - 1)),
                draw(st.text(max_size=12)),
            )
        )
    return nodes


def build(repo: Repo, nodes: list[Node]) -> list[ObjectId]:
    ids: list[ObjectId] = []
    t = 1_600_000_000
    for i, (parents, step, tz, kind, label) in enumerate(nodes):
        t += step
        ids.append(
            write_manifest(
                repo, KINDS[kind], f"{i} {label}", [ids[p] for p in parents], time=t, tz=tz
            )
        )
    return ids


@pytest.mark.slow
@settings(max_examples=25)
@given(histories())
def test_random_histories_export_reexport_and_verify(nodes: list[Node]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="steve-gitbridge-prop-"))
    try:
        git = make_git(scrubbed_git_env(tmp))
        repo = Repo.memory()
        ids = build(repo, nodes)
        heads = sorted({i for i in range(len(ids))} - {p for n in nodes for p in n[0]})
        for h in heads:
            repo.update_ref(f"refs/heads/h{h}", ids[h])
        out = tmp / "out.git"
        first = export_git(repo, out, all_refs=True, bare=True)
        assert first.commits == len(ids)
        assert all(r.status is RefStatus.CREATED for r in first.refs)
        assert git(out, "fsck", "--strict", "--full").returncode == 0
        count = git(out, "rev-list", "--all", "--count").stdout
        assert int(count) == len(ids)
        again = export_git(repo, out, all_refs=True)
        assert (again.commits, again.objects, again.pack) == (0, 0, None)
        assert [r.status for r in again.refs] == [RefStatus.UNCHANGED] * len(heads)
        report = verify_git(out)
        assert report.ok, report.problems
        assert report.commits == len(ids)

        # the same history in another repository, exported elsewhere: the same ids
        other = Repo.memory()
        assert build(other, nodes) == ids
        for h in heads:
            other.update_ref(f"refs/heads/h{h}", ids[h])
        second = export_git(other, tmp / "second.git", all_refs=True, bare=True)
        assert [r.new for r in second.refs] == [r.new for r in first.refs]
        assert dict(other.iter_derived(GIT_MAP)) == dict(repo.iter_derived(GIT_MAP))
        # parents in git are the manifests' parents, in order
        for i, (parents, *_rest) in enumerate(nodes):
            sha = repo.get_derived(GIT_MAP, ids[i].raw)
            assert sha is not None
            listed = git(out, "log", "-1", "--format=%P", sha.hex()).stdout.decode().split()
            expected = [repo.get_derived(GIT_MAP, ids[p].raw) for p in parents]
            assert listed == [e.hex() for e in expected if e is not None]
            kind = git(out, "log", "-1", "--format=%(trailers:key=Steve-Kind,valueonly)", sha.hex())
            assert kind.stdout.decode().strip() == KINDS[nodes[i][3]].value
            assert ObjectType(kind.stdout.decode().strip()).is_manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
