"""The stage state machine: the transition table, stateful testing against it, the
transition log, CAS on the stage, stage commands that freeze and move, and the v1 -> v2
database migration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from steve.errors import (
    InvalidTransition,
    ManifestInvalid,
    RunNotFound,
    StageChanged,
    StageNotAvailable,
)
from steve.objects.model import ObjectType
from steve.porcelain import runs
from steve.porcelain.runs import ALLOWED, Stage, check_transition, goto, new_run
from steve.porcelain.show import read_manifest
from steve.porcelain.stages import record
from steve.repo import Repo
from steve.store.kdf import KdfParams
from steve.store.sqlite import SCHEMA_VERSION, SqlCipherBackend

T0 = 1_700_000_000
ACTOR = "tester <t@example>"

# The table as the issue states it, written out independently of the code.
EXPECTED_EDGES = {
    ("DESIGN", "RESEARCH"),
    ("RESEARCH", "PLAN"),
    ("PLAN", "BUILD"),
    ("BUILD", "TEST"),
    ("TEST", "DEPLOY"),
    ("RESEARCH", "DESIGN"),
    ("PLAN", "RESEARCH"),
    ("TEST", "BUILD"),
}


def test_table_is_the_forward_chain_plus_the_three_loops() -> None:
    table = {(a.value, b.value) for a, targets in ALLOWED.items() for b in targets}
    assert table == EXPECTED_EDGES
    for a in Stage:
        for b in Stage:
            if (a.value, b.value) in EXPECTED_EDGES:
                check_transition("r", a, b)
            else:
                with pytest.raises(InvalidTransition) as info:
                    check_transition("r", a, b)
                assert info.value.code == "STEVE-STATE-001"
                assert info.value.allowed == [s.value for s in runs.allowed_from(a)]


class StageMachine(RuleBasedStateMachine):
    """Random runs and transitions against the table; the model is a dict of stages."""

    repo: Repo

    run_ids = Bundle("runs")

    def make_repo(self) -> Repo:
        return Repo.memory()

    @initialize(target=run_ids)
    def setup(self) -> str:
        self.repo = self.make_repo()
        self.model: dict[str, str] = {}
        self.log: dict[str, list[tuple[str | None, str]]] = {}
        self.clock = T0
        return self.start("first")

    def teardown(self) -> None:
        self.repo.close()

    @rule(target=run_ids, name=st.text(min_size=1, max_size=8))
    def start(self, name: str) -> str:
        self.clock += 1
        run = new_run(self.repo, name=name, now=self.clock, actor=ACTOR)
        self.model[run.id] = "DESIGN"
        self.log[run.id] = [(None, "DESIGN")]
        assert runs.current_run(self.repo) == run
        return run.id

    @rule(run_id=run_ids, stage=st.sampled_from(list(Stage)))
    def move(self, run_id: str, stage: Stage) -> None:
        self.clock += 1
        current = self.model[run_id]
        if (current, stage.value) in EXPECTED_EDGES and stage is Stage.DEPLOY:
            with pytest.raises(StageNotAvailable):  # no deploy exists yet: refused by hand
                goto(self.repo, run_id, stage, now=self.clock, actor=ACTOR)
        elif (current, stage.value) in EXPECTED_EDGES:
            t = goto(self.repo, run_id, stage, now=self.clock, actor=ACTOR, trigger="test")
            assert (t.from_stage, t.to_stage) == (Stage(current), stage)
            self.model[run_id] = stage.value
            self.log[run_id].append((current, stage.value))
        else:
            with pytest.raises(InvalidTransition):
                goto(self.repo, run_id, stage, now=self.clock, actor=ACTOR)

    @rule(run_id=run_ids, data=st.data())
    def advance(self, run_id: str, data: st.DataObject) -> None:
        """A transition the table allows (so long walks reach every stage)."""
        current = self.model[run_id]
        targets = sorted(b for a, b in EXPECTED_EDGES if a == current)
        if targets:
            self.move(run_id, Stage(data.draw(st.sampled_from(targets))))

    @rule(run_id=run_ids, stage=st.sampled_from(list(Stage)))
    def stale_expectation_is_rejected(self, run_id: str, stage: Stage) -> None:
        wrong = next(s for s in Stage if s.value != self.model[run_id])
        with pytest.raises(StageChanged):
            goto(self.repo, run_id, stage, now=self.clock, actor=ACTOR, expected=wrong)

    @invariant()
    def store_matches_model(self) -> None:
        for run_id, stage in self.model.items():
            run = runs.find_run(self.repo, run_id)
            assert run.stage.value == stage
            recorded = runs.transitions(self.repo, run_id)
            assert [t.seq for t in recorded] == list(range(len(recorded)))
            pairs = [
                (t.from_stage.value if t.from_stage else None, t.to_stage.value) for t in recorded
            ]
            assert pairs == self.log[run_id]
            assert all(t.actor == ACTOR for t in recorded)


TestStageMachineMemory = StageMachine.TestCase
TestStageMachineMemory.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)


class EncryptedStageMachine(StageMachine):
    def make_repo(self) -> Repo:
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        kdf = KdfParams(salt=os.urandom(16), memory_kib=256, iterations=1, parallelism=1)
        return Repo.init(Path(self._dir.name) / "r", passphrase="pw", kdf=kdf)

    def teardown(self) -> None:
        self.repo.close()
        self._dir.cleanup()


TestStageMachineEncrypted = EncryptedStageMachine.TestCase
TestStageMachineEncrypted.settings = settings(max_examples=5, stateful_step_count=15, deadline=None)


# --- stage commands ---------------------------------------------------------------------

DESIGN = {
    "project_id": "p",
    "name": "demo",
    "created_at": 1,
    "intent": {"summary": "do it"},
    "human_approved": False,
}
RESEARCH = {"title": "facts"}
PLAN = {
    "title": "p",
    "nodes": [{"id": "a", "kind": "run", "command": ["make"], "image": "sha256:" + "1" * 64}],
}


def test_record_freezes_links_parents_and_moves_the_stage(mem_repo: Repo) -> None:
    repo = mem_repo
    run = new_run(repo, name="r", now=T0, actor=ACTOR)
    d1 = record(repo, "design", DESIGN, now=T0 + 1, tz=0, actor=ACTOR)
    assert d1.transition is None and d1.run.stage is Stage.DESIGN
    d2 = record(repo, "design", {**DESIGN, "name": "demo2"}, now=T0 + 2, tz=0, actor=ACTOR)
    assert read_manifest(repo, d2.oid).manifest.parents == (d1.oid,)
    r1 = record(repo, "research", RESEARCH, now=T0 + 3, tz=0, actor=ACTOR)
    assert r1.transition is not None and r1.transition.to_stage is Stage.RESEARCH
    assert read_manifest(repo, r1.oid).manifest.parents == (d2.oid,)
    p1 = record(repo, "plan", PLAN, now=T0 + 4, tz=0, actor=ACTOR)
    assert read_manifest(repo, p1.oid).manifest.parents == (r1.oid,)
    # PLAN -> RESEARCH loop: research builds on the previous research, design and plan
    r2 = record(repo, "research", {"title": "more"}, now=T0 + 5, tz=0, actor=ACTOR)
    assert read_manifest(repo, r2.oid).manifest.parents == (r1.oid, d2.oid, p1.oid)
    assert runs.run_manifests(repo, run.id) == {
        ObjectType.DESIGN: d2.oid,
        ObjectType.RESEARCH: r2.oid,
        ObjectType.PLAN: p1.oid,
    }
    assert repo.rev_parse(f"refs/runs/{run.id}/design") == d2.oid
    assert [e.new for e in repo.reflog(f"refs/runs/{run.id}/design")] == [d2.oid, d1.oid]
    stages = [t.to_stage.value for t in runs.transitions(repo, run.id)]
    assert stages == ["DESIGN", "RESEARCH", "PLAN", "RESEARCH"]
    assert [t.trigger for t in runs.transitions(repo, run.id)][1:] == [
        "steve research",
        "steve plan",
        "steve research",
    ]


def test_record_with_a_disallowed_transition_changes_nothing(mem_repo: Repo) -> None:
    repo = mem_repo
    run = new_run(repo, now=T0, actor=ACTOR)
    before = repo.backend.count()
    with pytest.raises(InvalidTransition):
        record(repo, "plan", PLAN, now=T0 + 1, tz=0, actor=ACTOR)  # DESIGN -> PLAN skips RESEARCH
    with pytest.raises(ManifestInvalid):
        record(repo, "design", {"name": 1}, now=T0 + 1, tz=0, actor=ACTOR)
    assert repo.backend.count() == before
    assert runs.find_run(repo, run.id).stage is Stage.DESIGN
    assert len(runs.transitions(repo, run.id)) == 1
    assert repo.list_refs("refs/runs/") == []


def test_find_run_by_prefix_name_and_current(mem_repo: Repo) -> None:
    repo = mem_repo
    with pytest.raises(RunNotFound):
        runs.find_run(repo)
    a = new_run(repo, name="alpha", now=T0, actor=ACTOR, run_id="AAAA1111")
    b = new_run(repo, name="beta", now=T0 + 1, actor=ACTOR, run_id="AAAA2222")
    assert runs.find_run(repo) == b
    assert runs.find_run(repo, "alpha") == a
    assert runs.find_run(repo, "aaaa1") == a
    with pytest.raises(RunNotFound) as info:
        runs.find_run(repo, "AAAA")
    assert "ambiguous" in info.value.detail
    assert runs.switch_run(repo, "alpha") == a
    assert runs.current_run(repo) == a
    assert [r.id for r in runs.list_runs(repo)] == ["AAAA1111", "AAAA2222"]


def test_goto_deploy_is_refused_while_no_deploy_exists(mem_repo: Repo) -> None:
    repo = mem_repo
    run = new_run(repo, now=T0, actor=ACTOR)
    for stage in (Stage.RESEARCH, Stage.PLAN, Stage.BUILD, Stage.TEST):
        goto(repo, run.id, stage, now=T0, actor=ACTOR)
    before = runs.transitions(repo, run.id)
    with pytest.raises(StageNotAvailable) as info:
        goto(repo, run.id, Stage.DEPLOY, now=T0 + 1, actor=ACTOR, trigger="goto: ship it")
    err = info.value
    assert err.code == "STEVE-STATE-010" and err.exit_code == 6
    assert "DEPLOY" in err.detail and "terminal" in err.detail
    assert runs.find_run(repo, run.id).stage is Stage.TEST
    assert runs.transitions(repo, run.id) == before
    assert Stage.DEPLOY not in runs.reachable_by_hand(Stage.TEST)
    assert Stage.BUILD in runs.reachable_by_hand(Stage.TEST)


def test_stage_names_are_case_insensitive() -> None:
    assert Stage.parse("deploy") is Stage.DEPLOY and Stage.parse(" Build ") is Stage.BUILD
    with pytest.raises(Exception) as info:
        Stage.parse("ship")
    assert "DESIGN, RESEARCH" in str(info.value)


def test_run_ids_are_ulids_sorted_by_time() -> None:
    a = runs.new_run_id(1000, b"\x00" * 10)
    b = runs.new_run_id(2000, b"\xff" * 10)
    assert len(a) == len(b) == 26 and a < b


def _v1_database(path: Path, key: bytes) -> None:
    """Turn a fresh database back into schema v1 (as the spine created it)."""
    db = SqlCipherBackend.create(path, key)
    for table in ("transitions", "runs", "manifests", "derived"):
        db._conn.execute(f"DROP TABLE {table}")
    db._conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    db.close()


def test_v1_database_is_migrated_in_place(tmp_path: Path) -> None:
    key = os.urandom(32)
    path = tmp_path / "steve.db"
    _v1_database(path, key)
    db = SqlCipherBackend.open(path, key)
    try:
        assert db.get_meta("schema_version") == str(SCHEMA_VERSION) == "7"
        assert db.outbox_count() == 0  # the v5 outbox exists, empty
        with db.transaction() as tx:
            from steve.store.base import RunRecord

            tx.insert_run(RunRecord("R1", "n", "DESIGN", 1, 1))
        assert db.list_runs()[0].id == "R1"
    finally:
        db.close()
    db = SqlCipherBackend.open(path, key)  # reopening a current database is a no-op
    assert db.get_run("R1") is not None
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    from steve.errors import UnsupportedFormat

    key = os.urandom(32)
    db = SqlCipherBackend.create(tmp_path / "s.db", key)
    db._conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(UnsupportedFormat):
        SqlCipherBackend.open(tmp_path / "s.db", key)


def test_transitions_survive_reopen(tmp_path: Path, fast_kdf: KdfParams) -> None:
    with Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf) as repo:
        run = new_run(repo, name="x", now=T0, actor=ACTOR)
        goto(repo, run.id, Stage.RESEARCH, now=T0 + 1, actor=ACTOR, trigger="goto: why")
    with Repo.open(tmp_path / "r", passphrase="pw") as repo:
        got: list[Any] = runs.transitions(repo, run.id)
        assert [(t.seq, t.to_stage, t.trigger, t.time) for t in got] == [
            (0, Stage.DESIGN, "run new", T0),
            (1, Stage.RESEARCH, "goto: why", T0 + 1),
        ]
        assert runs.current_run(repo) is not None
