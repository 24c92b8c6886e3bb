"""`run:NAME` revisions (steve.refs.runspec): a run's latest manifest by id, id prefix or
name; `run:NAME/KIND`; suffixes chain as on any revision.  Unit tests against a real
repository and a property test of the rule against a model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import BadRevision, RunNotFound, UnknownRevision
from steve.objects.model import MANIFEST_TYPES
from steve.objects.oid import ObjectId
from steve.porcelain.runs import STAGE_OF_KIND, Stage, goto, new_run
from steve.porcelain.stages import record
from steve.refs.runspec import KIND_OF_STAGE, STAGES, resolve_run
from steve.repo import Repo
from steve.store.base import RunRecord

T0 = 1_700_000_000
ACTOR = "t <t@example>"
DESIGN = {
    "project_id": "p",
    "name": "n",
    "created_at": 1,
    "intent": {"summary": "s"},
    "human_approved": False,
}


def test_stage_kind_table_is_the_state_machines() -> None:
    assert {KIND_OF_STAGE[s.value]: s for s in Stage} == STAGE_OF_KIND
    assert tuple(s.value for s in Stage) == STAGES


def test_run_revisions_in_a_repository(any_repo: Repo) -> None:
    repo = any_repo
    run = new_run(repo, name="tour", now=T0, actor=ACTOR, run_id="01AAAA0000")
    with pytest.raises(UnknownRevision):
        repo.rev_parse("run:tour")  # no manifests yet
    d = record(repo, "design", DESIGN, now=T0, tz=0, actor=ACTOR).oid
    r = record(repo, "research", {"title": "r"}, now=T0, tz=0, actor=ACTOR).oid
    assert repo.rev_parse("run:tour") == r
    assert repo.rev_parse("run:01AAAA0000") == r == repo.rev_parse("run:01aaaa")
    assert repo.rev_parse("run:tour/design") == d
    assert repo.rev_parse("run:tour^") == d  # suffixes chain
    assert repo.resolve("run:tour").ref == f"refs/runs/{run.id}/research"
    goto(repo, run.id, Stage.PLAN, now=T0, actor=ACTOR)  # by hand: no plan yet
    assert repo.rev_parse("run:tour") == r  # the nearest earlier stage with a manifest
    with pytest.raises(UnknownRevision):
        repo.rev_parse("run:tour/plan")
    with pytest.raises(RunNotFound):
        repo.rev_parse("run:nope")
    with pytest.raises(BadRevision):
        repo.rev_parse("run:")
    new_run(repo, name="tour2", now=T0, actor=ACTOR, run_id="01AAAA1111")
    with pytest.raises(RunNotFound) as info:
        repo.rev_parse("run:01AAAA")
    assert "ambiguous" in info.value.detail


names = st.sampled_from(["a", "b", "tour", "a/plan", "x y"])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[RunRecord], dict[str, ObjectId]]:
    runs, refs = [], {}
    for i in range(draw(st.integers(1, 4))):
        rid = f"01{'ABCD'[i]}{'0' * 7}{i}"
        stage = draw(st.sampled_from(STAGES))
        runs.append(RunRecord(rid, draw(names), stage, 0, 0))
        for kind in MANIFEST_TYPES:
            if draw(st.booleans()):
                refs[f"refs/runs/{rid}/{kind.value}"] = ObjectId.of(f"{rid}{kind}".encode())
    return runs, refs


def _named(runs: list[RunRecord], spec: str) -> list[RunRecord]:
    by_id = [r for r in runs if r.id == spec]
    prefix = [r for r in runs if len(spec) >= 4 and r.id.startswith(spec.upper())]
    return by_id or prefix or [r for r in runs if r.name == spec]


@given(world=worlds(), spec=st.one_of(names, st.sampled_from(["01A", "01B0", "01C0000002"])))
def test_run_spec_follows_the_rule(
    world: tuple[list[RunRecord], dict[str, ObjectId]], spec: str
) -> None:
    """The model: the run ``spec`` names (else, for NAME/KIND, the run NAME names), then
    the kind asked, or the current stage's kind and earlier ones, the first present."""
    runs, refs = world
    found, kind = _named(runs, spec), None
    head, sep, tail = spec.rpartition("/")
    if len(found) != 1 and sep and tail in {k.value for k in MANIFEST_TYPES}:
        found, kind = _named(runs, head), tail
    if len(found) != 1:
        with pytest.raises(RunNotFound):
            resolve_run(runs, refs.get, "run:" + spec, "run:" + spec)
        return
    run = found[0]
    order = reversed(STAGES[: STAGES.index(run.stage) + 1])
    kinds = [kind] if kind else [KIND_OF_STAGE[s].value for s in order]
    present = [f"refs/runs/{run.id}/{k}" for k in kinds if f"refs/runs/{run.id}/{k}" in refs]
    if not present:
        with pytest.raises(UnknownRevision):
            resolve_run(runs, refs.get, "run:" + spec, "run:" + spec)
        return
    got = resolve_run(runs, refs.get, "run:" + spec, "run:" + spec)
    assert got == (refs[present[0]], present[0])
