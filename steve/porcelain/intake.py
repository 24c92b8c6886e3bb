"""DESIGN intake: a design manifest drafted by a model, frozen only on approval.

    >>> proposal = propose_design(repo, target, "a tool that counts words", now=t)
    >>> render(proposal.draft)           # the CLI shows it and asks
    >>> approve_design(repo, proposal, how="terminal", now=t, tz=0, actor=who)

:func:`propose_design` asks the model (:func:`steve.porcelain.modelio.ask_for_draft`:
tool use with the design's JSON Schema, repair rounds with the validation
errors) and returns a validated draft that is *not* approved and not stored
as a manifest (its exchanges are recorded, as every exchange is).  The
fields STEVE owns are never the model's: ``project_id``, ``created_at``,
``human_approved``, ``approval_timestamp``, ``approved_by``,
``intake_session_id`` (the id of the first request) and ``provenance`` are
set here, whatever the answer said.

:func:`approve_design` freezes it with ``human_approved: true``, the time of
the answer and how it was given (``terminal``: a person answered yes on a
terminal; ``yes-flag``: ``--yes`` approved it without review) through
:func:`steve.porcelain.stages.record`, so the run moves to DESIGN exactly as
with ``steve design FILE``.  Nothing asks or prints here: the CLI does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from steve.llm.session import TextCallback
from steve.objects.model import ObjectType
from steve.objects.schemas import DesignManifest, json_schema, validate
from steve.porcelain.modelio import (
    DEFAULT_ROUNDS,
    ModelTarget,
    ask_for_draft,
    provenance,
    schema_without,
    tool_for,
)
from steve.porcelain.runs import STAGE_OF_KIND, check_transition, find_run
from steve.porcelain.stages import Recorded, record
from steve.repo import Repo

__all__ = ["DESIGN_TOOL", "DesignProposal", "approve_design", "propose_design"]

DESIGN_TOOL = "submit_design"
OWNED = (
    "project_id",
    "created_at",
    "human_approved",
    "approval_timestamp",
    "approved_by",
    "intake_session_id",
    "provenance",
    "amends",
)
Approval = Literal["terminal", "yes-flag"]

SYSTEM = """\
You are the design intake of STEVE, a tool that moves software work through \
DESIGN, RESEARCH, PLAN, BUILD and TEST with an auditable record of every step.
Turn the user's request into a design: a name, the intent (a one-line summary, \
details, user stories), acceptance criteria that a test can check (ids AC-001, \
AC-002, ...), constraints (ids C-001, ...; hard=true for the non-negotiable ones, \
whose ids also go into axioms), interfaces, declared dependencies, and open \
research questions (RQ-001, ...).  Keep it small, concrete and testable.
Submit the design by calling the tool submit_design exactly once with the whole \
design as its input.  Do not set approval fields: a person approves the design."""


@dataclass(frozen=True, slots=True)
class DesignProposal:
    """A validated, unapproved design draft and the exchanges it came from."""

    run_id: str
    draft: dict[str, Any]
    target: ModelTarget
    exchanges: tuple[Any, ...]

    @property
    def model_draft(self) -> dict[str, Any]:
        """The draft without STEVE's fields: what a person reviews."""
        return {k: v for k, v in self.draft.items() if k not in OWNED}


def _design_tool() -> Any:
    import json

    schema = schema_without(json.loads(json_schema("design")), OWNED)
    schema.pop("$id", None)
    return tool_for(DESIGN_TOOL, "Submit the design draft (a STEVE design manifest).", schema)


def _with_owned(draft: Mapping[str, Any], owned: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in draft.items() if k not in OWNED}
    return {**body, **owned}


def propose_design(
    repo: Repo,
    target: ModelTarget,
    text: str,
    *,
    run_id: str | None = None,
    project_id: str | None = None,
    now: int,
    rounds: int = DEFAULT_ROUNDS,
    on_text: TextCallback | None = None,
) -> DesignProposal:
    """Ask the model for a design of ``text`` (see the module docstring).  The run must
    be able to move to DESIGN (checked before anything is asked)."""
    run = find_run(repo, run_id)
    target_stage = STAGE_OF_KIND[ObjectType.DESIGN]
    if run.stage is not target_stage:
        check_transition(run.id, run.stage, target_stage)
    owned: dict[str, Any] = {
        "project_id": project_id or run.name or run.id,
        "created_at": now,
        "human_approved": False,
    }

    def check(draft: Mapping[str, Any]) -> DesignManifest:
        body = validate("design", _with_owned(draft, owned))
        assert isinstance(body, DesignManifest)
        return body

    got = ask_for_draft(
        target,
        kind="design",
        system=SYSTEM,
        prompt=f"The request, in the user's words:\n\n{text.strip()}\n",
        tool=_design_tool(),
        validate=check,
        rounds=rounds,
        run_id=run.id,
        stage=target_stage.value,
        on_text=on_text,
    )
    owned["intake_session_id"] = got.exchanges[0].request_oid.hex
    draft = _with_owned(got.draft, owned)
    check(draft)
    return DesignProposal(run.id, draft, target, got.exchanges)


def approve_design(
    repo: Repo,
    proposal: DesignProposal,
    *,
    how: Approval,
    now: int,
    tz: int,
    actor: str,
) -> Recorded:
    """Freeze the proposal as the run's design, approved ``how`` at ``now`` (the time
    of the answer), with its provenance; the run moves to DESIGN."""
    draft = {
        **proposal.draft,
        "human_approved": True,
        "approval_timestamp": now,
        "approved_by": how,
        "provenance": provenance(proposal.target, proposal.exchanges).model_dump(),
    }
    return record(repo, "design", draft, run_id=proposal.run_id, now=now, tz=tz, actor=actor)
