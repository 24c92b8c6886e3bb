"""Runs named in revisions: ``run:NAME`` and ``run:NAME/KIND``.

A run is found by its id, a unique id prefix (4+ characters, any case) or
its unique name (:func:`match_run`; ``steve.porcelain.runs.find_run`` uses
the same rule).  ``run:NAME`` is the run's latest manifest: the one of the
kind its current stage produces, or, when that kind has none yet (a run
moved on by hand), of the nearest earlier stage that has one.
``run:NAME/KIND`` is the run's latest manifest of KIND (``run:tour/plan``).
Runs live in ``steve.db`` beside the refs; a run's latest manifest of each
kind is the ref ``refs/runs/<run id>/<kind>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from steve.errors import BadRevision, RunNotFound, UnknownRevision
from steve.objects.model import MANIFEST_TYPES, ObjectType
from steve.objects.oid import ObjectId
from steve.store.base import RunRecord

PREFIX = "run:"
RUN_REF_PREFIX = "refs/runs/"
STAGES = ("DESIGN", "RESEARCH", "PLAN", "BUILD", "TEST", "DEPLOY")
# The kind each stage produces, in stage order (steve.porcelain.runs.STAGE_OF_KIND).
KIND_OF_STAGE: dict[str, ObjectType] = dict(zip(STAGES, MANIFEST_TYPES, strict=True))


def match_run(runs: Sequence[RunRecord], spec: str) -> RunRecord:
    """The run ``spec`` names: an id, a unique id prefix of 4+ characters, or a
    unique name.  RunNotFound when none or several match."""
    for run in runs:
        if run.id == spec:
            return run
    matches = [r for r in runs if len(spec) >= 4 and r.id.startswith(spec.upper())]
    if not matches:
        matches = [r for r in runs if r.name == spec]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RunNotFound(spec, f"ambiguous: matches {', '.join(r.id for r in matches[:5])}")
    raise RunNotFound(spec)


def run_ref_name(run_id: str, kind: ObjectType) -> str:
    return f"{RUN_REF_PREFIX}{run_id}/{kind.value}"


def resolve_run(
    runs: Sequence[RunRecord],
    read_ref: Callable[[str], ObjectId | None],
    base: str,
    rev: str,
) -> tuple[ObjectId, str]:
    """``run:NAME`` or ``run:NAME/KIND`` (``base``) as (manifest id, ref name).

    ``read_ref`` gives a ref's target (None: no such ref)."""
    spec = base[len(PREFIX) :]
    if not spec:
        raise BadRevision(rev, "run: needs a run id, id prefix or name (run:NAME)")
    kind: ObjectType | None = None
    try:
        run = match_run(runs, spec)
    except RunNotFound:
        head, sep, tail = spec.rpartition("/")
        if not sep or tail not in {k.value for k in MANIFEST_TYPES}:
            raise
        run, kind = match_run(runs, head), ObjectType(tail)
    if kind is not None:
        ref = run_ref_name(run.id, kind)
        target = read_ref(ref)
        if target is None:
            raise UnknownRevision(rev, f"run {run.id} has no {kind.value} manifest yet")
        return target, ref
    order = STAGES[: STAGES.index(run.stage) + 1] if run.stage in STAGES else STAGES
    for stage in reversed(order):
        ref = run_ref_name(run.id, KIND_OF_STAGE[stage])
        target = read_ref(ref)
        if target is not None:
            return target, ref
    raise UnknownRevision(rev, f"run {run.id} has no manifests yet")
