"""``steve status``: the current run, its stage, where it may go, its latest manifests."""

from __future__ import annotations

from dataclasses import dataclass

from steve.objects.model import MANIFEST_TYPES, ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.history import read_entry
from steve.porcelain.runs import (
    Run,
    Stage,
    current_run,
    reachable_by_hand,
    run_manifests,
    run_ref,
)
from steve.refs.refs import Ref
from steve.repo import Repo


@dataclass(frozen=True, slots=True)
class LatestManifest:
    kind: ObjectType
    ref: str
    oid: ObjectId
    summary: str


@dataclass(frozen=True, slots=True)
class Status:
    run: Run | None
    allowed: list[Stage]  # where `steve run goto` can take the run
    manifests: list[LatestManifest]
    head: Ref | None
    runs: int


def status(repo: Repo) -> Status:
    run = current_run(repo)
    head = repo.head()
    n_runs = len(repo.list_runs())
    if run is None:
        return Status(None, [], [], head, n_runs)
    latest = run_manifests(repo, run.id)
    manifests = [
        LatestManifest(
            kind, run_ref(run.id, kind), latest[kind], read_entry(repo, latest[kind]).summary
        )
        for kind in MANIFEST_TYPES
        if kind in latest
    ]
    return Status(run, reachable_by_hand(run.stage), manifests, head, n_runs)
