"""generate nodes: a model's diff applied in Python to the input tree, pinned in the receipt.

Orchestration runs on the in-process FakeRunner (tests/stages/fakes.py); the real
Docker Engine runs the same flow in test_cli.py and the main job."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from steve.errors import GenerateNeedsModel
from steve.llm import record
from steve.llm.types import Request
from steve.objects.oid import ObjectId
from steve.objects.schemas.failures import FailureClass
from steve.porcelain.build import build
from steve.porcelain.decompose import approve_plan, propose_plan
from steve.porcelain.intake import approve_design, propose_design
from steve.porcelain.modelio import ModelTarget
from steve.porcelain.patch import tree_files
from steve.porcelain.records import read_receipt, receipt_ref
from steve.porcelain.runs import Stage, find_run, goto, new_run
from steve.porcelain.steps import NodeStatus
from steve.porcelain.testing import run_tests
from steve.porcelain.verify import verify
from steve.repo import Repo
from tests.llmstages.conftest import (
    DIFF_ANSWER,
    NOW,
    answer,
    default_answers,
    replay_target,
    target,
)
from tests.stages.fakes import FakeRunner

IMAGE = "sha256:" + "ab" * 32


def planned(repo: Repo, t: ModelTarget, src: ObjectId, *, tokens: int | None = None) -> ObjectId:
    """Design and plan the run with ``t`` (the default fixture's answers); the plan's id."""
    run = find_run(repo)
    approve_design(
        repo, propose_design(repo, t, "a word tool", now=NOW), how="yes-flag", now=NOW, tz=0,
        actor="t",
    )  # fmt: skip
    goto(repo, run.id, Stage.RESEARCH, now=NOW, actor="t")
    proposal = propose_plan(repo, t, images={"busybox": IMAGE}, inputs={"src": src})
    if tokens is not None:
        proposal.draft["nodes"][0]["budgets"]["tokens"] = tokens
    return approve_plan(repo, proposal, now=NOW, tz=0, actor="t").oid


def source(repo: Repo, tmp_path: Any) -> ObjectId:
    d = tmp_path / "src"
    d.mkdir()
    (d / "words.txt").write_bytes(b"hello\nworld\n")
    return repo.write_tree(d)


def with_diff(diff_answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The default answers with the generate node's answer replaced."""
    out = [a for a in default_answers() if a.get("match") != DIFF_ANSWER]
    return [*out, diff_answer]


def test_the_patch_is_applied_in_python_and_pinned_in_the_receipt(
    mem_repo: Repo, run_id: str, tmp_path: Any
) -> None:
    src = source(mem_repo, tmp_path)
    t = target(mem_repo)
    planned(mem_repo, t, src)
    runner = FakeRunner()
    report = build(mem_repo, runner, model=t)
    assert report.ok, report.failed
    words = report.outcomes[0]
    assert (words.node, words.status) == ("words", NodeStatus.BUILT)
    body = read_receipt(mem_repo, words.receipt)  # type: ignore[arg-type]
    gen = body.generated
    assert gen is not None and body.provenance is not None
    assert gen.base == src.hex and gen.input == "src" and gen.changed == ["words.txt"]
    assert gen.result is not None
    patched = tree_files(mem_repo, ObjectId.from_hex(gen.result))
    assert patched["words.txt"].data == b"hello\nworld\nsteve\n"
    assert b"+steve" in mem_repo.read_blob(ObjectId.from_hex(gen.diff or ""))
    # the patch record names the exchange it came from
    record_entries = {
        e.path: e.oid.hex for e in mem_repo.ls_tree(ObjectId.from_hex(gen.patch or ""))
    }
    assert record_entries == {
        "diff": gen.diff,
        "request": body.provenance.exchanges[0].request,
        "response": body.provenance.exchanges[0].response,
    }
    # the container step ran on the patched tree, never on anything the model wrote
    assert runner.calls[0].inputs["src"] == ObjectId.from_hex(gen.result)
    request = Request.from_canonical(
        mem_repo.read_blob(ObjectId.from_hex(body.provenance.exchanges[0].request))
    )
    assert "Add the word steve" in request.messages[0].text
    assert "--- file words.txt ---\nhello\nworld\n" in request.messages[0].text
    assert verify(mem_repo, words.receipt).ok  # type: ignore[arg-type]
    # built once: a second build asks nothing and runs nothing
    asked = len(list(record.iter_exchanges(mem_repo)))
    again = build(mem_repo, runner, model=t)
    assert {o.status for o in again.outcomes} == {NodeStatus.CACHED}
    assert len(list(record.iter_exchanges(mem_repo))) == asked
    assert len(runner.calls) == 3
    # TEST finds the generate node built without a model
    tested = run_tests(mem_repo, runner)
    assert tested.verdict == "pass"


def test_a_build_with_generate_nodes_needs_a_model(
    mem_repo: Repo, run_id: str, tmp_path: Any
) -> None:
    planned(mem_repo, target(mem_repo), source(mem_repo, tmp_path))
    with pytest.raises(GenerateNeedsModel):
        build(mem_repo, FakeRunner())
    assert find_run(mem_repo).stage is Stage.PLAN  # refused before the run moved


def test_a_patch_that_does_not_apply_fails_typed_and_feeds_the_next_attempt(
    mem_repo: Repo, run_id: str, tmp_path: Any
) -> None:
    src = source(mem_repo, tmp_path)
    bad = {"match": DIFF_ANSWER, "text": "```diff\n--- a/words.txt\n+++ b/words.txt\n"
           "@@ -1,2 +1,2 @@\n hello\n-wrold\n+world\n```\n"}  # fmt: skip
    good = copy.deepcopy(answer(DIFF_ANSWER))
    t = target(mem_repo, [{**good, "match": None, "match_last": "previous attempt failed"},
                          *with_diff(bad)])  # fmt: skip
    planned(mem_repo, t, src)
    runner = FakeRunner()
    first = build(mem_repo, runner, model=t)
    words = first.outcomes[0]
    assert words.status is NodeStatus.FAILED and words.failure is FailureClass.PATCH_REJECTED
    assert "STEVE-PATCH-002" in words.detail and "words.txt: hunk 1" in words.detail
    assert [o.status for o in first.outcomes[1:]] == [NodeStatus.SKIPPED] * 2
    assert runner.calls == []  # nothing ran
    body = read_receipt(mem_repo, words.receipt)  # type: ignore[arg-type]
    assert body.generated is not None and body.generated.result is None
    assert body.failure == "LLMError.PatchRejected"
    second = build(mem_repo, runner, model=t)
    assert second.ok
    ref = mem_repo.rev_parse(receipt_ref(run_id, "words"))
    fixed = read_receipt(mem_repo, ref)
    assert fixed.provenance is not None
    request = Request.from_canonical(
        mem_repo.read_blob(ObjectId.from_hex(fixed.provenance.exchanges[0].request))
    )
    text = request.messages[0].text
    assert "previous attempt failed" in text and "STEVE-PATCH-002" in text and "-wrold" in text


def test_a_node_token_budget_refuses_before_anything_is_sent(
    mem_repo: Repo, run_id: str, tmp_path: Any
) -> None:
    t = target(mem_repo)
    planned(mem_repo, t, source(mem_repo, tmp_path), tokens=10)
    asked = len(list(record.iter_exchanges(mem_repo)))
    report = build(mem_repo, FakeRunner(), model=t)
    assert report.outcomes[0].failure is FailureClass.TOKEN_BUDGET_EXCEEDED
    assert "STEVE-BUDGET-001" in report.outcomes[0].detail
    assert len(list(record.iter_exchanges(mem_repo))) == asked


def test_replay_reproduces_the_design_plan_patch_and_trees(
    mem_repo: Repo, run_id: str, tmp_path: Any
) -> None:
    src = source(mem_repo, tmp_path)
    t = target(mem_repo)
    plan1 = planned(mem_repo, t, src)
    first = build(mem_repo, FakeRunner(), model=t)
    design1 = mem_repo.rev_parse(f"refs/runs/{run_id}/design")
    body1 = read_receipt(mem_repo, first.outcomes[0].receipt)  # type: ignore[arg-type]
    # a second run of the same work, answered only from the record (no provider at all)
    new_run(mem_repo, name="words", now=NOW, actor="test")
    r = replay_target(mem_repo)
    plan2 = planned(mem_repo, r, src)
    second = build(mem_repo, FakeRunner(), model=r, no_cache=True)
    run2 = find_run(mem_repo).id
    assert mem_repo.rev_parse(f"refs/runs/{run2}/design") == design1
    assert plan2 == plan1
    body2 = read_receipt(mem_repo, second.outcomes[0].receipt)  # type: ignore[arg-type]
    assert body2.generated == body1.generated and body2.provenance == body1.provenance
    assert [o.outputs for o in second.outcomes] == [o.outputs for o in first.outcomes]


def test_generate_nodes_in_parallel_on_an_encrypted_repository(repo: Repo, tmp_path: Any) -> None:
    """Two generate nodes at once (-j 2): the exchanges go through the build's shared,
    thread-safe view of the repository."""
    from steve.porcelain.stages import record

    run = new_run(repo, name="par", now=NOW, actor="t")
    src = source(repo, tmp_path)
    nodes = [
        {
            "id": nid,
            "kind": "generate",
            "description": f"Add the word {nid} to words.txt.",
            "image": IMAGE,
            "command": ["true"],
            "inputs": [{"name": "src", "pinned": src.hex}],
            "outputs": ["src"],
        }
        for nid in ("one", "two")
    ]
    for stage in (Stage.RESEARCH, Stage.PLAN):
        goto(repo, run.id, stage, now=NOW, actor="t")
    record(repo, "plan", {"title": "p", "nodes": nodes}, now=NOW, tz=0, actor="t")
    diff = "```diff\n--- a/words.txt\n+++ b/words.txt\n@@ -2 +2,2 @@\n world\n+{w}\n```\n"
    answers = [{"match": f"plan node '{w}'", "text": diff.format(w=w)} for w in ("one", "two")]
    report = build(repo, FakeRunner(delay=0.2), model=target(repo, answers), jobs=2)
    assert report.ok, report.failed
    for o in report.outcomes:
        gen = read_receipt(repo, o.receipt).generated  # type: ignore[arg-type]
        assert gen is not None and gen.result is not None
        words = tree_files(repo, ObjectId.from_hex(gen.result))["words.txt"].data
        assert words == f"hello\nworld\n{o.node}\n".encode()
    assert repo.fsck().ok


def test_the_request_holds_what_fits_and_says_what_it_left_out(
    mem_repo: Repo, tmp_path: Any
) -> None:
    from steve.objects.schemas.plan import Node
    from steve.porcelain.generate import patch_request

    d = tmp_path / "big"
    d.mkdir()
    (d / "a.txt").write_bytes(b"small\n")
    (d / "b.bin").write_bytes(b"\x00" * 10)
    (d / "z.txt").write_bytes(b"x" * 5000)
    tree = mem_repo.write_tree(d)
    node = Node.model_validate(
        {"id": "g", "kind": "generate", "description": "change a.txt", "command": ["true"],
         "image": IMAGE, "inputs": [{"name": "in", "pinned": tree.hex}], "outputs": ["in"],
         "budgets": {"tokens": 2000}}
    )  # fmt: skip
    text = patch_request(mem_repo, target(mem_repo), node, "in", tree, design=None).messages[0]
    body = text.text
    assert "holds 3 files" in body and "  z.txt\n" in body  # every path is listed
    assert "--- file a.txt ---\nsmall\n" in body
    assert "[a binary file of 10 bytes, not shown]" in body
    assert "Contents left out (too large for the request): z.txt" in body
    assert "x" * 5000 not in body
