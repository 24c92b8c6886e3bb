"""PLAN decomposition: a DAG drafted by a model from the design, names resolved to ids."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from steve.errors import ManifestInvalid, ModelOutputInvalid, NothingToDecompose
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas import PlanManifest
from steve.porcelain.decompose import approve_plan, propose_plan, render_plan, revise_plan
from steve.porcelain.intake import approve_design, propose_design
from steve.porcelain.records import load_plan, read_manifest_body
from steve.porcelain.runs import Stage, find_run, goto
from steve.porcelain.verify import verify
from steve.repo import Repo
from tests.llmstages.conftest import NOW, PLAN_ANSWER, answer, target

IMAGE = "sha256:" + "ab" * 32


def plan_input() -> dict[str, Any]:
    return copy.deepcopy(answer(PLAN_ANSWER)["tool_use"]["input"])


def tool(input: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"tool_use": {"name": "submit_plan", "input": input}, **extra}


def designed(repo: Repo, run_id: str) -> ObjectId:
    proposal = propose_design(repo, target(repo), "a word tool", now=NOW)
    approve_design(repo, proposal, how="yes-flag", now=NOW, tz=0, actor="t")
    goto(repo, run_id, Stage.RESEARCH, now=NOW, actor="t")
    return repo.write_blob(b"hello\nworld\n")


def test_a_decomposed_plan_pins_the_offered_image_and_input(mem_repo: Repo, run_id: str) -> None:
    src = designed(mem_repo, run_id)
    t = target(mem_repo)
    proposal = propose_plan(mem_repo, t, images={"busybox": IMAGE}, inputs={"src": src})
    prompt = proposal.exchanges[0].request.messages[0].text
    assert "Word tool" in prompt and "- busybox" in prompt and "- src: a file" in prompt
    rec = approve_plan(mem_repo, proposal, now=NOW, tz=0, actor="t")
    plan = load_plan(mem_repo, rec.oid)
    assert {n.image for n in plan.nodes} == {IMAGE}
    assert plan.nodes[0].inputs[0].pinned == src.hex
    assert plan.nodes[0].kind == "generate" and plan.nodes[0].description
    assert plan.provenance is not None
    assert find_run(mem_repo, run_id).stage is Stage.PLAN
    links = {o.hex for o in read_manifest_body(mem_repo, rec.oid, ObjectType.PLAN).links}
    assert plan.provenance.exchanges[0].request in links
    assert verify(mem_repo, rec.oid).ok


def test_an_image_the_user_did_not_offer_is_sent_back(mem_repo: Repo, run_id: str) -> None:
    src = designed(mem_repo, run_id)
    rogue = plan_input()
    rogue["nodes"][1]["image"] = "evil@sha256:" + "cd" * 32
    t = target(
        mem_repo, [tool(rogue), {"match_last": "use an offered image", **tool(plan_input())}]
    )
    proposal = propose_plan(mem_repo, t, images={"busybox": IMAGE}, inputs={"src": src})
    assert len(proposal.exchanges) == 2
    assert "nodes[1].image" in proposal.exchanges[1].request.messages[-1].text


def test_a_cycle_is_repaired_or_rejected(mem_repo: Repo, run_id: str) -> None:
    src = designed(mem_repo, run_id)
    cyclic = plan_input()
    cyclic["edges"].append({"from_node": "check", "to_node": "words"})
    t = target(mem_repo, [{"match": "planner", **tool(cyclic)}])
    with pytest.raises(ModelOutputInvalid) as err:
        propose_plan(mem_repo, t, images={"busybox": IMAGE}, inputs={"src": src}, rounds=1)
    assert any("acyclic" in rule for _, rule in err.value.problems)


def test_an_edit_is_validated_and_noted(mem_repo: Repo, run_id: str) -> None:
    src = designed(mem_repo, run_id)
    images, inputs = {"busybox": IMAGE}, {"src": src}
    proposal = propose_plan(mem_repo, target(mem_repo), images=images, inputs=inputs)
    text = render_plan(proposal)
    assert revise_plan(proposal, text.encode(), images=images, inputs=inputs) is proposal
    draft = yaml.safe_load(text)
    draft["title"] = "Edited"
    edited = revise_plan(proposal, yaml.safe_dump(draft).encode(), images=images, inputs=inputs)
    assert edited.edited and "edited by hand" in edited.draft["notes"]
    draft["edges"] = [{"from_node": "nope", "to_node": "gen"}]
    with pytest.raises(ManifestInvalid):
        revise_plan(proposal, yaml.safe_dump(draft).encode(), images=images, inputs=inputs)
    rec = approve_plan(mem_repo, edited, now=NOW, tz=0, actor="t")
    assert (
        PlanManifest.model_validate(
            read_manifest_body(mem_repo, rec.oid, ObjectType.PLAN).body
        ).title
        == "Edited"
    )


def test_no_design_no_decomposition(mem_repo: Repo, run_id: str) -> None:
    with pytest.raises(NothingToDecompose):
        propose_plan(mem_repo, target(mem_repo), images={"b": IMAGE}, inputs={})
