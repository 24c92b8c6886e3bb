"""Runs and the stage state machine (DEVPATH 1.2, 6.1).

A run moves through ``DESIGN -> RESEARCH -> PLAN -> BUILD -> TEST -> DEPLOY``
with three allowed loops (DESIGN<->RESEARCH, PLAN<->RESEARCH, BUILD<->TEST).
:data:`ALLOWED` is the whole table and :func:`check_transition` the one
function that consults it; every stage change goes through :func:`goto` (or
:func:`record`, which also freezes a manifest), which in ONE transaction
compares-and-swaps the run's stage and appends the transition record
(from, to, trigger, time, actor).  :func:`steve.porcelain.stages.record`
freezes a manifest and moves the stage in the same transaction.  A new run
starts in DESIGN; its creation is transition 0 (from nothing).

Storage: the ``runs`` and ``transitions`` tables of ``steve.db``; the latest
manifest of each kind in a run is the ref ``refs/runs/<run-id>/<kind>``
(moved by compare-and-swap, so it has a reflog); the current run's id is
the ``meta`` key ``current_run``.
"""

from __future__ import annotations

import enum
import os

from steve.errors import (
    InvalidInput,
    InvalidTransition,
    RunNotFound,
    StageChanged,
    StageNotAvailable,
)
from steve.objects.model import MANIFEST_TYPES, ObjectType
from steve.objects.oid import ObjectId
from steve.record import Record
from steve.refs.runspec import match_run
from steve.repo import Repo
from steve.store.base import RunRecord, Transaction, TransitionRecord

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

CURRENT_RUN = "current_run"
RUN_REF_PREFIX = "refs/runs/"


class Stage(enum.StrEnum):
    DESIGN = "DESIGN"
    RESEARCH = "RESEARCH"
    PLAN = "PLAN"
    BUILD = "BUILD"
    TEST = "TEST"
    DEPLOY = "DEPLOY"

    @classmethod
    def parse(cls, text: str) -> Stage:
        """A stage from user input: case-insensitive (``deploy`` is DEPLOY)."""
        try:
            return cls(text.strip().upper())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise InvalidInput("unknown stage", f"{text!r} (stages: {names})") from None


INITIAL = Stage.DESIGN

# The whole transition table: the forward chain plus the three loops.
ALLOWED: dict[Stage, frozenset[Stage]] = {
    Stage.DESIGN: frozenset({Stage.RESEARCH}),
    Stage.RESEARCH: frozenset({Stage.PLAN, Stage.DESIGN}),
    Stage.PLAN: frozenset({Stage.BUILD, Stage.RESEARCH}),
    Stage.BUILD: frozenset({Stage.TEST}),
    Stage.TEST: frozenset({Stage.DEPLOY, Stage.BUILD}),
    Stage.DEPLOY: frozenset(),
}

# The stage whose work produces each manifest kind.
STAGE_OF_KIND: dict[ObjectType, Stage] = {
    ObjectType.DESIGN: Stage.DESIGN,
    ObjectType.RESEARCH: Stage.RESEARCH,
    ObjectType.PLAN: Stage.PLAN,
    ObjectType.BUILD_RECEIPT: Stage.BUILD,
    ObjectType.TEST_CERTIFICATE: Stage.TEST,
    ObjectType.DEPLOY_RECEIPT: Stage.DEPLOY,
}

# What a kind's manifest builds on in its run (besides its own previous version).
UPSTREAM: dict[ObjectType, tuple[ObjectType, ...]] = {
    ObjectType.DESIGN: (ObjectType.RESEARCH,),
    ObjectType.RESEARCH: (ObjectType.DESIGN, ObjectType.PLAN),
    ObjectType.PLAN: (ObjectType.RESEARCH,),
    ObjectType.BUILD_RECEIPT: (ObjectType.PLAN,),
    ObjectType.TEST_CERTIFICATE: (ObjectType.BUILD_RECEIPT,),
    ObjectType.DEPLOY_RECEIPT: (ObjectType.TEST_CERTIFICATE,),
}


# Stages the table allows that a hand-made move may not enter, with why.  DEPLOY is
# terminal and entered only by `steve deploy` (steve.porcelain.deploy), which writes
# the certified artifacts and freezes the deploy receipt in the same transaction.
NOT_AVAILABLE: dict[Stage, str] = {
    Stage.DEPLOY: "DEPLOY is terminal and entered only by `steve deploy`, "
    "which records the deploy receipt",
}


def allowed_from(stage: Stage) -> list[Stage]:
    return sorted(ALLOWED[stage], key=list(Stage).index)


def reachable_by_hand(stage: Stage) -> list[Stage]:
    """The stages `steve run goto` can move a run to from ``stage``."""
    return [s for s in allowed_from(stage) if s not in NOT_AVAILABLE]


def check_transition(run_id: str, current: Stage, target: Stage) -> None:
    """The one transition rule: raise InvalidTransition unless ``current -> target`` is allowed."""
    if target not in ALLOWED[current]:
        raise InvalidTransition(
            run_id, current.value, target.value, [s.value for s in allowed_from(current)]
        )


class Run(Record):
    __match_args__ = ("id", "name", "stage", "created", "updated")
    __slots__ = __match_args__
    id: str
    name: str
    stage: Stage
    created: int
    updated: int

    def __init__(self, id: str, name: str, stage: Stage, created: int, updated: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "stage", stage)
        _set(self, "created", created)
        _set(self, "updated", updated)

    @classmethod
    def from_record(cls, rec: RunRecord) -> Run:
        return cls(rec.id, rec.name, Stage(rec.stage), rec.created, rec.updated)


class Transition(Record):
    __match_args__ = ("run_id", "seq", "from_stage", "to_stage", "trigger", "time", "actor")
    __slots__ = __match_args__
    run_id: str
    seq: int
    from_stage: Stage | None
    to_stage: Stage
    trigger: str
    time: int
    actor: str

    def __init__(
        self,
        run_id: str,
        seq: int,
        from_stage: Stage | None,
        to_stage: Stage,
        trigger: str,
        time: int,
        actor: str,
    ) -> None:
        _set(self, "run_id", run_id)
        _set(self, "seq", seq)
        _set(self, "from_stage", from_stage)
        _set(self, "to_stage", to_stage)
        _set(self, "trigger", trigger)
        _set(self, "time", time)
        _set(self, "actor", actor)

    @classmethod
    def from_record(cls, rec: TransitionRecord) -> Transition:
        return cls(
            rec.run_id,
            rec.seq,
            None if rec.from_stage is None else Stage(rec.from_stage),
            Stage(rec.to_stage),
            rec.trigger,
            rec.time,
            rec.actor,
        )


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_run_id(now_ms: int, entropy: bytes | None = None) -> str:
    """A ULID: 48-bit milliseconds + 80 random bits, 26 Crockford base32 characters."""
    rand = entropy if entropy is not None else os.urandom(10)
    n = ((now_ms & ((1 << 48) - 1)) << 80) | int.from_bytes(rand[:10], "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[n & 31])
        n >>= 5
    return "".join(reversed(chars))


_MANIFEST_KINDS = frozenset(t.value for t in MANIFEST_TYPES)


def run_ref(run_id: str, kind: ObjectType) -> str:
    return f"{RUN_REF_PREFIX}{run_id}/{kind.value}"


# --- queries --------------------------------------------------------------------------


def list_runs(repo: Repo) -> list[Run]:
    return [Run.from_record(r) for r in repo.list_runs()]


def current_run(repo: Repo) -> Run | None:
    run_id = repo.get_meta(CURRENT_RUN)
    if run_id is None:
        return None
    rec = repo.get_run(run_id)
    return None if rec is None else Run.from_record(rec)


def find_run(repo: Repo, spec: str | None = None) -> Run:
    """A run by id, unique id prefix or unique name; None means the current run."""
    if spec is None:
        run = current_run(repo)
        if run is None:
            raise RunNotFound("(current)", "no current run; start one with `steve run new`")
        return run
    rec = repo.get_run(spec)
    if rec is not None:
        return Run.from_record(rec)
    return Run.from_record(match_run(repo.list_runs(), spec))


def transitions(repo: Repo, run_id: str) -> list[Transition]:
    return [Transition.from_record(t) for t in repo.run_transitions(run_id)]


def run_manifests(repo: Repo, run_id: str) -> dict[ObjectType, ObjectId]:
    """The latest manifest of each kind in the run (its ``refs/runs/<id>/<kind>`` refs)."""
    out: dict[ObjectType, ObjectId] = {}
    for ref in repo.list_refs(f"{RUN_REF_PREFIX}{run_id}/"):
        kind = ref.name.rsplit("/", 1)[1]
        if ref.target is not None and kind in _MANIFEST_KINDS:
            out[ObjectType(kind)] = ref.target
    return out


def run_heads(repo: Repo, run_id: str) -> list[ObjectId]:
    """Where ``steve log`` starts for a run: its latest manifests, later stages first
    (so with equal times the walk lists a plan before the research it builds on)."""
    latest = run_manifests(repo, run_id)
    return [latest[k] for k in reversed(MANIFEST_TYPES) if k in latest]


# --- changes --------------------------------------------------------------------------


def new_run(
    repo: Repo,
    *,
    name: str | None = None,
    now: int,
    actor: str,
    run_id: str | None = None,
    make_current: bool = True,
) -> Run:
    """Create a run in DESIGN (transition 0 records its creation); make it current."""
    rid = run_id or new_run_id(now * 1000)
    if not rid or "/" in rid or not rid.isalnum():
        raise InvalidInput("invalid run id", repr(rid))
    label = name if name is not None else rid
    rec = RunRecord(rid, label, INITIAL.value, now, now)
    with repo.transaction() as tx:
        tx.insert_run(rec)
        tx.append_transition(TransitionRecord(rid, 0, None, INITIAL.value, "run new", now, actor))
        if make_current:
            tx.set_meta(CURRENT_RUN, rid)
        tx.emit("run.created", {"name": label, "stage": INITIAL.value}, run_id=rid)
    return Run.from_record(rec)


def switch_run(repo: Repo, spec: str) -> Run:
    run = find_run(repo, spec)
    with repo.transaction() as tx:
        tx.set_meta(CURRENT_RUN, run.id)
        tx.emit("run.switched", {}, run_id=run.id)
    return run


def transition_in(
    repo: Repo,
    tx: Transaction,
    run_id: str,
    target: Stage,
    trigger: str,
    now: int,
    actor: str,
    expected: Stage | None,
) -> Transition:
    rec = tx.read_run(run_id)
    if rec is None:
        raise RunNotFound(run_id)
    current = Stage(rec.stage)
    if expected is not None and current is not expected:
        raise StageChanged(run_id, expected.value, current.value)
    check_transition(run_id, current, target)
    if not tx.set_run_stage(run_id, current.value, target.value, now):
        actual = tx.read_run(run_id)
        raise StageChanged(run_id, current.value, actual.stage if actual else "(deleted)")
    seq = len(repo.run_transitions(run_id))
    record = TransitionRecord(run_id, seq, current.value, target.value, trigger, now, actor)
    tx.append_transition(record)
    return Transition.from_record(record)


def goto(
    repo: Repo,
    run_id: str,
    target: Stage,
    *,
    trigger: str = "goto",
    now: int,
    actor: str,
    expected: Stage | None = None,
) -> Transition:
    """Move the run to ``target`` if the table allows it; record the transition.

    ``expected`` (optional) is the stage the caller believes the run is in:
    if another writer moved it meanwhile, StageChanged is raised.  A stage in
    :data:`NOT_AVAILABLE` (DEPLOY: only `steve deploy` enters it) is refused with
    StageNotAvailable.
    """
    why = NOT_AVAILABLE.get(target)
    if why is not None:
        rec = repo.get_run(run_id)
        if rec is None:
            raise RunNotFound(run_id)
        if expected is not None and rec.stage != expected.value:
            raise StageChanged(run_id, expected.value, rec.stage)
        check_transition(run_id, Stage(rec.stage), target)
        raise StageNotAvailable(run_id, rec.stage, target.value, why)
    with repo.transaction() as tx:
        change = transition_in(repo, tx, run_id, target, trigger, now, actor, expected)
        tx.emit("run.transition", transition_payload(change), run_id=run_id)
    return change


def transition_payload(change: Transition) -> dict[str, object]:
    """The ``run.transition`` event payload."""
    return {
        "seq": change.seq,
        "from": change.from_stage.value if change.from_stage else None,
        "to": change.to_stage.value,
        "trigger": change.trigger,
    }
