"""The research scope (F-RES-001): per design question, a budget and a source policy.

``steve research scope`` starts from the run's design research questions
(RQ-nnn) and records, for each, a :class:`~steve.research.policy.Budget` and a
:class:`~steve.research.policy.SourcePolicy`.  The scope is a canonical-CBOR
blob (``type: research.scope``) named by ``refs/research/scope/<run-id>``;
each recording moves the ref (its reflog is the scope's history) and emits
``ref.updated`` and ``research.scoped`` in the same transaction.

    >>> scope = record_scope(repo, run_id=None, changes=ScopeChanges(allow=("example.org",)),
    ...                      now=t)
    >>> load_scope(repo).policy_for("RQ-001").allow
    ('example.org',)

Without a recorded scope, :func:`load_scope` answers :data:`DEFAULT_SCOPE`
(every question gets the defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from steve.errors import (
    CorruptObject,
    MalformedObject,
    RunNotFound,
    ScopeInvalid,
    UnknownQuestion,
)
from steve.objects import cbor
from steve.objects.model import Blob, ObjectType, hash_object, object_size
from steve.objects.oid import ObjectId
from steve.objects.schemas import read_body
from steve.objects.schemas.design import DesignManifest
from steve.porcelain.records import read_manifest_body
from steve.porcelain.runs import current_run, find_run, run_manifests
from steve.repo import Repo
from steve.research.policy import Budget, SourcePolicy

__all__ = [
    "DEFAULT_SCOPE",
    "SCOPE_PREFIX",
    "SCOPE_TYPE",
    "Question",
    "Scope",
    "ScopeChanges",
    "design_questions",
    "load_scope",
    "record_scope",
]

SCOPE_TYPE = "research.scope"
SCOPE_PREFIX = "refs/research/scope/"


@dataclass(frozen=True, slots=True)
class Question:
    """One research question in scope, with its own budget and source policy."""

    id: str  # RQ-nnn
    question: str
    budget: Budget = field(default_factory=Budget)
    policy: SourcePolicy = field(default_factory=SourcePolicy)

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "budget": self.budget.to_record(),
            "policy": self.policy.to_record(),
        }


@dataclass(frozen=True, slots=True)
class Scope:
    """A run's research scope: the defaults and each design question's settings."""

    run_id: str | None
    design: ObjectId | None
    budget: Budget = field(default_factory=Budget)
    policy: SourcePolicy = field(default_factory=SourcePolicy)
    questions: tuple[Question, ...] = ()
    recorded: ObjectId | None = None  # the scope record's id (None: the defaults)
    created_at: int = 0

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise UnknownQuestion(qid, [q.id for q in self.questions])

    def policy_for(self, qid: str | None = None) -> SourcePolicy:
        """The source policy of question ``qid`` (None: the scope's default)."""
        return self.policy if qid is None else self.question(qid).policy

    def budget_for(self, qid: str | None = None) -> Budget:
        return self.budget if qid is None else self.question(qid).budget

    def to_record(self) -> dict[str, Any]:
        return {
            "type": SCOPE_TYPE,
            "run": self.run_id,
            "design": None if self.design is None else self.design.raw,
            "created_at": self.created_at,
            "budget": self.budget.to_record(),
            "policy": self.policy.to_record(),
            "questions": [q.to_record() for q in self.questions],
        }

    def to_json(self) -> dict[str, Any]:
        out = self.to_record()
        out["design"] = None if self.design is None else self.design.hex
        out["id"] = None if self.recorded is None else self.recorded.hex
        return out

    @classmethod
    def from_record(cls, value: object, oid: ObjectId | None = None) -> Scope:
        if not isinstance(value, Mapping) or value.get("type") != SCOPE_TYPE:
            raise MalformedObject(f"not a {SCOPE_TYPE} record")
        design = value.get("design")
        questions = value.get("questions")
        run = value.get("run")
        created = value.get("created_at")
        if not isinstance(questions, list) or type(created) is not int:
            raise MalformedObject("scope: questions or created_at")
        if not (design is None or isinstance(design, bytes)) or not (
            run is None or isinstance(run, str)
        ):
            raise MalformedObject("scope: design or run")
        qs = []
        for i, q in enumerate(questions):
            if not isinstance(q, Mapping) or not isinstance(q.get("id"), str):
                raise MalformedObject(f"scope: questions[{i}]")
            qs.append(
                Question(
                    str(q["id"]),
                    str(q.get("question", "")),
                    Budget.from_record(q.get("budget"), f"questions[{i}].budget"),
                    SourcePolicy.from_record(q.get("policy"), f"questions[{i}].policy"),
                )
            )
        return cls(
            run,
            None if design is None else ObjectId(design),
            Budget.from_record(value.get("budget")),
            SourcePolicy.from_record(value.get("policy")),
            tuple(qs),
            oid,
            created,
        )


DEFAULT_SCOPE = Scope(None, None)
"""What applies when no scope was recorded: the default budget and policy."""


@dataclass(frozen=True, slots=True)
class ScopeChanges:
    """What ``steve research scope`` changes (None/empty: keep what the scope had).

    ``question`` limits the changes to one question; otherwise they apply to
    the default and to every question."""

    question: str | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()
    max_page_bytes: int | None = None
    robots: bool | None = None
    max_redirects: int | None = None
    timeout_seconds: int | None = None
    budget: Mapping[str, int] = field(default_factory=dict)  # pages, bytes, tokens, seconds

    def apply_policy(self, policy: SourcePolicy) -> SourcePolicy:
        changes: dict[str, Any] = {}
        if self.allow:
            changes["allow"] = tuple(dict.fromkeys((*policy.allow, *self.allow)))
        if self.deny:
            changes["deny"] = tuple(dict.fromkeys((*policy.deny, *self.deny)))
        if self.media_types:
            changes["media_types"] = tuple(dict.fromkeys(self.media_types))
        for name in ("max_page_bytes", "robots", "max_redirects", "timeout_seconds"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        return policy.with_changes(**changes)

    def apply_budget(self, budget: Budget) -> Budget:
        unknown = sorted(set(self.budget) - {"pages", "bytes", "tokens", "seconds"})
        if unknown:
            raise ScopeInvalid(f"unknown budget fields {unknown}")
        if any(v < 0 for v in self.budget.values()):
            raise ScopeInvalid("a budget is a whole number >= 0 (0: no limit)")
        return replace(budget, **dict(self.budget))


def scope_ref(run_id: str) -> str:
    return SCOPE_PREFIX + run_id


def design_questions(repo: Repo, run_id: str) -> tuple[ObjectId | None, list[tuple[str, str]]]:
    """The run's latest design and its research questions ((id, text) pairs)."""
    design = run_manifests(repo, run_id).get(ObjectType.DESIGN)
    if design is None:
        return None, []
    manifest = read_manifest_body(repo, design, ObjectType.DESIGN)
    body = read_body(ObjectType.DESIGN, manifest.version, manifest.body)
    assert isinstance(body, DesignManifest)
    return design, [(q.id, q.question) for q in body.research_questions]


def _read_scope(repo: Repo, oid: ObjectId) -> Scope:
    try:
        return Scope.from_record(cbor.decode(repo.read_blob(oid)), oid)
    except (MalformedObject, ScopeInvalid) as exc:
        raise CorruptObject(oid.hex, f"scope record: {exc.detail}") from exc


def load_scope(repo: Repo, run_id: str | None = None) -> Scope:
    """The scope recorded for run ``run_id`` (None: the current run), or
    :data:`DEFAULT_SCOPE` when there is no run or no scope yet."""
    run = find_run(repo, run_id) if run_id is not None else current_run(repo)
    if run is None:
        return DEFAULT_SCOPE
    ref = repo.refs.resolve(scope_ref(run.id))
    if ref is None or ref.target is None:
        return replace(DEFAULT_SCOPE, run_id=run.id)
    return _read_scope(repo, ref.target)


def record_scope(
    repo: Repo,
    *,
    run_id: str | None,
    changes: ScopeChanges,
    now: int,
) -> Scope:
    """Record the run's scope: the previous scope (or the defaults), refreshed from
    the run's latest design questions, with ``changes`` applied.  One transaction:
    the record blob, the ref move and its events.  Returns the stored scope."""
    run = find_run(repo, run_id)
    if run is None:  # pragma: no cover - find_run raises
        raise RunNotFound("(current)", "no run")
    old = load_scope(repo, run.id)
    design, asked = design_questions(repo, run.id)
    known = {q.id: q for q in old.questions}
    if changes.question is not None and changes.question not in {qid for qid, _ in asked}:
        raise UnknownQuestion(changes.question, [qid for qid, _ in asked])
    every = changes.question is None
    budget = changes.apply_budget(old.budget) if every else old.budget
    policy = changes.apply_policy(old.policy) if every else old.policy
    questions = []
    for qid, text in asked:
        q = known.get(qid, Question(qid, text, old.budget, old.policy))
        q = replace(q, question=text)
        if every or changes.question == qid:
            q = replace(
                q, budget=changes.apply_budget(q.budget), policy=changes.apply_policy(q.policy)
            )
        questions.append(q)
    scope = Scope(run.id, design, budget, policy, tuple(questions), None, now)
    blob = Blob(cbor.encode(scope.to_record()))
    oid, data = hash_object(blob)
    name = scope_ref(run.id)
    with repo.transaction() as tx:
        tx.put(oid, ObjectType.BLOB, object_size(blob), data)
        current = repo.refs.resolve(name, tx)
        previous = None if current is None else current.target
        if previous != oid:
            target, before = repo.refs.update(
                name, oid, previous, who=repo.identity, message="research scope", now=now, tx=tx
            )
            tx.emit(
                "ref.updated",
                {"ref": target, "old": None if before is None else before.hex, "new": oid.hex},
                run.id,
            )
        tx.emit(
            "research.scoped",
            {
                "run": run.id,
                "scope": oid.hex,
                "design": None if design is None else design.hex,
                "questions": [q.id for q in questions],
                "previous": None if previous is None else previous.hex,
            },
            run.id,
        )
    return replace(scope, recorded=oid)
