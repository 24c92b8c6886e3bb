"""Replay with the model server stopped reproduces identical design, plan and build ids.

The real ``anthropic`` SDK talks to the loopback Messages API server of the LLM
tests (tests/llm/servers.py); after the server is stopped, the replay provider
answers the same stages from the record alone."""

from __future__ import annotations

import copy
from pathlib import Path

from steve.llm.anthropic_provider import AnthropicProvider
from steve.llm.replay import ReplayProvider
from steve.llm.session import LLMSession
from steve.objects.oid import ObjectId
from steve.porcelain.build import build
from steve.porcelain.modelio import ModelTarget
from steve.porcelain.records import read_receipt
from steve.porcelain.runs import find_run, new_run
from steve.repo import Repo
from tests.llm.conftest import make_redactor
from tests.llm.servers import KEY, AnthropicServer, Seen
from tests.llmstages.conftest import DESIGN_ANSWER, DIFF_ANSWER, NOW, PLAN_ANSWER, answer
from tests.llmstages.test_generate import planned, source
from tests.stages.fakes import FakeRunner

MODEL = "claude-loopback"


def test_replay_with_the_server_stopped_gives_the_same_ids(
    mem_repo: Repo, run_id: str, tmp_path: Path
) -> None:
    server = AnthropicServer(reply="Here it is.").start()
    try:
        provider = AnthropicProvider(api_key=KEY, base_url=server.base_url)
        live = ModelTarget(LLMSession(mem_repo, provider, redactor=make_redactor()),
                           "anthropic", MODEL)  # fmt: skip
        by_tool = {
            "submit_design": copy.deepcopy(answer(DESIGN_ANSWER)["tool_use"]["input"]),
            "submit_plan": copy.deepcopy(answer(PLAN_ANSWER)["tool_use"]["input"]),
        }

        def reply(seen: Seen) -> str:
            """The stage's answer: a tool call for the tool offered, else the diff."""
            tools = [t["name"] for t in seen.body.get("tools") or []]
            server.tool = (tools[0], by_tool[tools[0]]) if tools else None
            return "Here it is." if tools else str(answer(DIFF_ANSWER)["text"])

        server.on_reply = reply
        src = source(mem_repo, tmp_path)
        plan1 = planned(mem_repo, live, src)
        first = build(mem_repo, FakeRunner(), model=live)
        assert first.ok, first.failed
        generated_calls = len(server.generations())
        assert generated_calls == 3  # design, plan, the generate node's diff
    finally:
        server.stop()
    design1 = mem_repo.rev_parse(f"refs/runs/{run_id}/design")
    body1 = read_receipt(mem_repo, first.outcomes[0].receipt)  # type: ignore[arg-type]

    replay = ModelTarget(
        LLMSession(mem_repo, ReplayProvider(mem_repo), redactor=make_redactor()),
        "anthropic",
        MODEL,
    )
    new_run(mem_repo, name="words", now=NOW, actor="test")
    plan2 = planned(mem_repo, replay, src)
    second = build(mem_repo, FakeRunner(), model=replay, no_cache=True)
    run2 = find_run(mem_repo).id
    assert mem_repo.rev_parse(f"refs/runs/{run2}/design") == design1
    assert plan2 == plan1
    body2 = read_receipt(mem_repo, second.outcomes[0].receipt)  # type: ignore[arg-type]
    assert body1.generated is not None and body2.generated == body1.generated
    assert body2.provenance == body1.provenance
    tree = ObjectId.from_hex(body1.generated.result or "")
    assert [e.path for e in mem_repo.ls_tree(tree, recursive=True)] == ["words.txt"]
    assert [o.outputs for o in second.outcomes] == [o.outputs for o in first.outcomes]
    assert len(server.generations()) == generated_calls  # the stopped server saw nothing
