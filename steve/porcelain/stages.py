"""Stage commands for hand-written drafts: ``steve design | research | plan FILE``.

:func:`record` freezes a draft as a kind, links it to the run's latest
manifests and moves the run to the kind's stage through the state machine
(:mod:`steve.porcelain.runs`), all in one transaction.  A plan recorded while
the run is in BUILD or TEST is an amendment of the run's plan (its body's
``amends`` names it): the plan ref moves, the stage does not, and the next
``steve build`` builds it (unchanged nodes from the cache).  Later issues add
LLM intake and decomposition on top of this same call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steve.errors import StageChanged
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.freeze import build_manifest, frozen_payload, store_manifest
from steve.porcelain.runs import (
    STAGE_OF_KIND,
    UPSTREAM,
    Run,
    Stage,
    Transition,
    check_transition,
    find_run,
    run_manifests,
    run_ref,
    transition_in,
    transition_payload,
)
from steve.repo import Repo


@dataclass(frozen=True, slots=True)
class Recorded:
    oid: ObjectId
    run: Run
    transition: Transition | None  # None when the run already was in the kind's stage
    amends: ObjectId | None = None  # a plan recorded in BUILD/TEST amends the run's plan


# Stages in which a new manifest of a kind amends the run's current one instead of
# moving the run back (a plan changed while building or testing).
AMEND_IN: dict[ObjectType, frozenset[Stage]] = {
    ObjectType.PLAN: frozenset({Stage.BUILD, Stage.TEST}),
}


def record(
    repo: Repo,
    kind: ObjectType | str,
    draft: Mapping[str, Any],
    *,
    run_id: str | None = None,
    now: int,
    tz: int,
    actor: str,
) -> Recorded:
    """Freeze ``draft`` as ``kind`` in a run and move the run to the kind's stage.

    Parents: the run's previous manifest of the same kind and its latest
    manifests of the upstream kinds (:data:`UPSTREAM`).  The manifest, the
    run's ref for the kind, the stage change and its transition record are
    written in one transaction; an invalid draft or a disallowed
    transition leaves everything as it was.
    """
    kind = ObjectType(kind)
    run = find_run(repo, run_id)
    latest = run_manifests(repo, run.id)
    amends = latest.get(kind) if run.stage in AMEND_IN.get(kind, ()) else None
    stage = run.stage if amends is not None else STAGE_OF_KIND[kind]
    if stage is not run.stage:
        check_transition(run.id, run.stage, stage)  # fail before validating anything big
    parents = [latest[k] for k in (kind, *UPSTREAM[kind]) if k in latest]
    manifest = build_manifest(repo, kind, draft, parents=parents, amends=amends, now=now, tz=tz)
    trigger = f"steve {kind.value}"
    with repo.transaction() as tx:
        change = None
        if stage is not run.stage:
            change = transition_in(repo, tx, run.id, stage, trigger, now, actor, run.stage)
        else:
            rec = tx.read_run(run.id)
            if rec is None or rec.stage != run.stage.value:
                raise StageChanged(run.id, run.stage.value, rec.stage if rec else "(deleted)")
        oid = store_manifest(
            repo,
            manifest,
            ref=run_ref(run.id, kind),
            ref_old=latest.get(kind),
            message=f"{trigger} (run {run.id})",
            tx=tx,
        )
        tx.emit("manifest.frozen", frozen_payload(manifest, oid, run_ref(run.id, kind)), run.id)
        if change is not None:
            tx.emit("run.transition", transition_payload(change), run_id=run.id)
    return Recorded(oid, find_run(repo, run.id), change, amends)
