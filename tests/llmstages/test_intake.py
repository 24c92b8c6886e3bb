"""DESIGN intake: drafted by a model, validated, repaired, frozen only on approval."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from steve.errors import InvalidTransition, ModelOutputInvalid
from steve.llm import record
from steve.llm.types import Request
from steve.objects.model import ObjectType
from steve.objects.schemas import DesignManifest
from steve.porcelain.intake import approve_design, propose_design
from steve.porcelain.records import read_manifest_body
from steve.porcelain.runs import Stage, find_run, goto, run_manifests
from steve.porcelain.verify import verify
from steve.repo import Repo
from tests.llmstages.conftest import DESIGN_ANSWER, NOW, answer, target


def design_input() -> dict[str, Any]:
    return copy.deepcopy(answer(DESIGN_ANSWER)["tool_use"]["input"])


def tool(input: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tool_use": {"name": "submit_design", "input": input}, **extra}


def test_an_approved_intake_freezes_a_design_that_pins_its_exchange(
    mem_repo: Repo, run_id: str
) -> None:
    t = target(mem_repo)
    proposal = propose_design(mem_repo, t, "a word tool", now=NOW)
    assert run_manifests(mem_repo, run_id) == {}  # nothing frozen before the approval
    assert proposal.draft["human_approved"] is False
    rec = approve_design(mem_repo, proposal, how="yes-flag", now=NOW + 5, tz=0, actor="t")
    manifest = read_manifest_body(mem_repo, rec.oid, ObjectType.DESIGN)
    body = DesignManifest.model_validate(manifest.body)
    assert body.human_approved is True and body.approval_timestamp == NOW + 5
    assert body.approved_by == "yes-flag"
    assert body.project_id == "words" and body.created_at == NOW
    assert body.provenance is not None and len(body.provenance.exchanges) == 1
    ex = body.provenance.exchanges[0]
    assert body.intake_session_id == ex.request
    request = Request.from_canonical(mem_repo.read_blob(mem_repo.rev_parse(ex.request)))
    assert "a word tool" in request.messages[0].text
    assert {ex.request, ex.response} <= {o.hex for o in manifest.links}
    assert find_run(mem_repo, run_id).stage is Stage.DESIGN
    assert verify(mem_repo, rec.oid).ok  # the closure holds request and response


def test_the_model_cannot_approve_or_date_its_own_design(mem_repo: Repo, run_id: str) -> None:
    forged = {**design_input(), "human_approved": True, "approval_timestamp": 1, "created_at": 2}
    proposal = propose_design(mem_repo, target(mem_repo, [tool(forged)]), "x", now=NOW)
    assert proposal.draft["human_approved"] is False
    assert "approval_timestamp" not in proposal.draft and proposal.draft["created_at"] == NOW


def test_invalid_output_is_repaired_with_the_validation_errors(mem_repo: Repo, run_id: str) -> None:
    broken = design_input()
    broken["constraints"][0]["hard"] = False  # the axiom now names a soft constraint
    fixed = design_input()
    t = target(mem_repo, [tool(broken), {"match_last": "axiom_hard", **tool(fixed)}])
    proposal = propose_design(mem_repo, t, "a word tool", now=NOW)
    assert len(proposal.exchanges) == 2
    second = proposal.exchanges[1].request
    assert "axioms[0]" in second.messages[-1].text and "axiom_hard" in second.messages[-1].text
    assert second.messages[-1].content[0].is_error is True  # type: ignore[union-attr]
    rec = approve_design(mem_repo, proposal, how="terminal", now=NOW, tz=0, actor="t")
    body = read_manifest_body(mem_repo, rec.oid, ObjectType.DESIGN).body
    assert len(body["provenance"]["exchanges"]) == 2


def test_a_design_in_a_json_block_of_text_is_read_too(mem_repo: Repo, run_id: str) -> None:
    import json

    text = "Here it is:\n```json\n" + json.dumps(design_input()) + "\n```\n"
    proposal = propose_design(mem_repo, target(mem_repo, [{"text": text}]), "x", now=NOW)
    assert proposal.draft["name"] == "Word tool"


def test_output_that_stays_invalid_is_a_coded_error_and_nothing_is_frozen(
    mem_repo: Repo, run_id: str
) -> None:
    t = target(mem_repo, [{"match": "design intake", "text": "I would rather not."}])
    with pytest.raises(ModelOutputInvalid) as err:
        propose_design(mem_repo, t, "x", now=NOW, rounds=2)
    assert err.value.code == "STEVE-LLM-030" and len(err.value.responses) == 3
    assert run_manifests(mem_repo, run_id) == {}
    assert len(list(record.iter_exchanges(mem_repo))) == 3  # every answer is on record


def test_a_run_that_cannot_move_to_design_asks_nothing(mem_repo: Repo, run_id: str) -> None:
    for stage in (Stage.RESEARCH, Stage.PLAN, Stage.BUILD):
        goto(mem_repo, run_id, stage, now=NOW, actor="t")
    with pytest.raises(InvalidTransition):
        propose_design(mem_repo, target(mem_repo), "x", now=NOW)
    assert list(record.iter_exchanges(mem_repo)) == []
