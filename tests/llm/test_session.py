"""The session over the scripted and replay providers: record, replay, budgets, fallback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from steve.errors import BudgetExceeded, LlmAuthFailed, LlmServerError, ReplayMiss
from steve.llm import record
from steve.llm.budget import Budgets
from steve.llm.replay import ReplayProvider
from steve.llm.scripted import ScriptedProvider
from steve.llm.session import LLMSession
from steve.llm.types import ModelInfo, Request, Response, StreamEvent, TextBlock
from steve.objects.model import ObjectType, Tree
from steve.repo import Repo
from tests.llm.conftest import events

ANSWERS = [
    {"match": "design", "text": "A design: small and clear. " * 4},
    {"match": "plan", "text": "plan text", "usage": {"input_tokens": 10, "output_tokens": 5}},
    {"text": "first in order"},
    {"text": "second in order"},
]


def scripted() -> ScriptedProvider:
    return ScriptedProvider.from_answers(ANSWERS)


def req(prompt: str, max_tokens: int = 100) -> Request:
    return Request.simple("scripted", "test-model", prompt, system="sys", max_tokens=max_tokens)


def test_an_exchange_is_recorded_as_objects_and_a_ref_with_its_events(
    any_repo: Repo, redactor: Any
) -> None:
    session = LLMSession(any_repo, scripted(), redactor=redactor)
    seen: list[str] = []
    ex = session.complete(req("write the design"), run_id="r1", stage="DESIGN", on_text=seen.append)
    assert ex.response.text == ANSWERS[0]["text"]
    assert len(seen) > 1 and "".join(seen) == ex.response.text  # streamed in pieces
    assert any_repo.object_type(ex.request_oid) is ObjectType.BLOB
    assert Request.from_canonical(any_repo.read_blob(ex.request_oid)) == ex.request
    assert Response.from_canonical(any_repo.read_blob(ex.response_oid)) == ex.response
    tree = any_repo.read_object(ex.exchange_oid)
    assert isinstance(tree, Tree)
    assert {e.name: e.oid for e in tree.entries} == {
        "request": ex.request_oid,
        "response": ex.response_oid,
    }
    assert any_repo.rev_parse(record.ref_name(ex.request_oid)) == ex.exchange_oid
    got = events(any_repo)
    kinds = [t for t, _, _ in got]
    assert kinds[-2:] == ["llm.exchange", "budget.charged"]
    _, run, payload = got[-2]
    assert run == "r1"
    assert payload["request"] == ex.request_oid.hex
    assert payload["response"] == ex.response_oid.hex
    assert payload["stage"] == "DESIGN"
    assert payload["input_tokens"] == ex.response.usage.input_tokens
    charged = got[-1][2]
    assert charged["tokens"] == ex.response.usage.total
    assert charged["totals"] == {
        "project": ex.response.usage.total,
        "run:r1": ex.response.usage.total,
        "stage:r1:DESIGN": ex.response.usage.total,
    }
    assert any_repo.fsck().ok


def test_replay_reproduces_the_same_ids_and_a_miss_is_coded(any_repo: Repo, redactor: Any) -> None:
    live = LLMSession(any_repo, scripted(), redactor=redactor)
    first = [live.complete(req(p)) for p in ("design it", "plan it", "anything")]
    replay = LLMSession(any_repo, ReplayProvider(any_repo), redactor=redactor)
    seen: list[str] = []
    prompts = ("design it", "plan it", "anything")
    again = [replay.complete(req(p), on_text=seen.append) for p in prompts]
    for a, b in zip(first, again, strict=True):
        assert (a.request_oid, a.response_oid, a.exchange_oid) == (
            b.request_oid,
            b.response_oid,
            b.exchange_oid,
        )
        assert a.response == b.response
        assert b.replayed and not a.replayed
    assert "".join(seen) == "".join(x.response.text for x in first)
    with pytest.raises(ReplayMiss) as info:
        replay.complete(req("never asked"))
    assert info.value.code == "STEVE-LLM-007"
    assert events(any_repo, "llm.replayed") == []  # a replay is a read: no event


def test_scripted_answers_by_key_then_in_order(redactor: Any) -> None:
    p = scripted()
    assert p.send(req("the plan please")).text == "plan text"
    assert p.send(req("x")).text == "first in order"
    assert p.send(req("design again")).text.startswith("A design")
    assert p.send(req("y")).text == "second in order"
    from steve.errors import ScriptExhausted

    with pytest.raises(ScriptExhausted):
        p.send(req("z"))
    # deterministic: the same request and answer give the same response
    assert scripted().send(req("plan")) == scripted().send(req("plan"))


def test_a_budget_refuses_before_sending(any_repo: Repo, redactor: Any) -> None:
    provider = CountingProvider(scripted())
    budgets = Budgets(any_repo)
    session = LLMSession(any_repo, provider, redactor=redactor)
    budgets.set_limit("project", 50)
    with pytest.raises(BudgetExceeded) as info:
        session.complete(req("design", max_tokens=100))
    assert info.value.code == "STEVE-BUDGET-001" and info.value.scope == "project"
    assert provider.calls == 0
    assert list(record.iter_exchanges(any_repo)) == []
    assert [t for t, _, _ in events(any_repo, "budget.")] == ["budget.set", "budget.refused"]
    budgets.set_limit("project", 10_000)
    ex = session.complete(req("plan", max_tokens=100), run_id="r", stage="plan", node="n1")
    assert provider.calls == 1
    assert budgets.used("project") == 15
    assert budgets.used("stage:r:PLAN") == 15 and budgets.used("node:r:n1") == 15
    assert ex.response.usage.total == 15
    # a node's own budget from the plan, and a per-stage limit
    with pytest.raises(BudgetExceeded) as node_info:
        session.complete(req("plan", max_tokens=100), run_id="r", node="n1", node_budget=60)
    assert node_info.value.scope == "node:r:n1"
    budgets.set_limit("stage:plan", 20)
    with pytest.raises(BudgetExceeded) as stage_info:
        session.complete(req("plan", max_tokens=5), run_id="r", stage="PLAN")
    assert stage_info.value.scope == "stage:r:PLAN"
    budgets.set_limit("run:r", 20)
    with pytest.raises(BudgetExceeded) as run_info:
        session.complete(req("plan", max_tokens=5), run_id="r")
    assert run_info.value.scope == "run:r"
    assert provider.calls == 1
    assert budgets.limits() == {"project": 10_000, "stage:PLAN": 20, "run:r": 20}


class CountingProvider:
    """Wraps a provider; counts calls and can be made to fail (a server going away)."""

    def __init__(self, inner: ScriptedProvider, fail: Exception | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0
        self.fail = fail

    def send(self, request: Request) -> Response:
        return self.inner.send(request)

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return self.inner.stream(request)

    def count_tokens(self, request: Request) -> int:
        return self.inner.count_tokens(request)

    def model_info(self, model: str) -> ModelInfo:
        return self.inner.model_info(model)


def test_fallback_answers_from_the_record_only_when_asked(any_repo: Repo, redactor: Any) -> None:
    recorded = LLMSession(any_repo, scripted(), redactor=redactor).complete(req("design"))
    down = CountingProvider(scripted(), fail=LlmServerError("scripted", "HTTP 529 overloaded"))
    with pytest.raises(LlmServerError):
        LLMSession(any_repo, down, redactor=redactor).complete(req("design"))
    fell_back = LLMSession(any_repo, down, redactor=redactor, fallback="recorded").complete(
        req("design")
    )
    assert fell_back.response_oid == recorded.response_oid and fell_back.replayed
    assert [t for t, _, _ in events(any_repo, "llm.fallback")] == ["llm.fallback"]
    with pytest.raises(LlmServerError):  # nothing recorded for this one
        LLMSession(any_repo, down, redactor=redactor, fallback="recorded").complete(req("other"))
    bad_key = CountingProvider(scripted(), fail=LlmAuthFailed("scripted", "HTTP 401"))
    with pytest.raises(LlmAuthFailed):  # a refused key is never hidden by a recorded answer
        session = LLMSession(any_repo, bad_key, redactor=redactor, fallback="recorded")
        session.complete(req("design"))


def test_the_same_request_twice_keeps_both_answers_in_the_reflog(
    any_repo: Repo, redactor: Any
) -> None:
    provider = ScriptedProvider.from_answers([{"text": "one"}, {"text": "two"}])
    session = LLMSession(any_repo, provider, redactor=redactor)
    a = session.complete(req("same"))
    b = session.complete(req("same"))
    assert a.request_oid == b.request_oid and a.response_oid != b.response_oid
    found = record.find(any_repo, a.request_oid)
    assert found is not None and found.response.text == "two"
    log = any_repo.reflog(record.ref_name(a.request_oid))
    assert [e.new for e in log] == [b.exchange_oid, a.exchange_oid]


def test_recorded_exchanges_survive_gc_and_fsck(repo: Repo, redactor: Any) -> None:
    ex = LLMSession(repo, scripted(), redactor=redactor).complete(req("design"))
    repo.gc(prune_before=2**40)
    assert repo.has_object(ex.request_oid) and repo.has_object(ex.response_oid)
    report = repo.fsck()
    assert not list(report.problems)


def test_response_text_block_order_is_kept(any_repo: Repo, redactor: Any) -> None:
    provider = ScriptedProvider.from_answers(
        [{"text": "call it", "tool_use": {"name": "f", "input": {"b": 1, "a": [1.5, None]}}}]
    )
    ex = LLMSession(any_repo, provider, redactor=redactor).complete(req("go"))
    assert isinstance(ex.response.content[0], TextBlock)
    assert ex.response.tool_uses[0].input == {"a": [1.5, None], "b": 1}
    assert ex.response.stop_reason == "tool_use"


def test_secrets_are_redacted_inside_tool_json_even_when_json_escapes_them(
    any_repo: Repo,
) -> None:
    from steve.llm.types import Message, Tool, ToolUseBlock
    from tests.llm.conftest import make_redactor

    secret = 'quo"te\\pass'
    redactor = make_redactor({"ODD_SECRET": secret.encode()})
    provider = ScriptedProvider.from_answers(
        [{"text": "ok", "tool_use": {"name": "f", "input": {"echo": f"x{secret}y"}}}]
    )
    request = Request(
        "scripted",
        "m",
        (
            Message("assistant", (ToolUseBlock.of("t1", "f", {"arg": secret, secret: 1}),)),
            Message.user(f"go {secret}"),
        ),
        tools=(Tool.of("f", f"uses {secret}", {"description": secret}),),
        stop=(secret,),
    )
    ex = LLMSession(any_repo, provider, redactor=redactor).complete(request)
    stored = any_repo.read_blob(ex.request_oid) + any_repo.read_blob(ex.response_oid)
    assert secret.encode() not in stored
    assert b'quo\\"te' not in stored  # nor its JSON-escaped form
    assert ex.request.messages[0].content[0] == ToolUseBlock.of(
        "t1", "f", {"arg": "[REDACTED:ODD_SECRET]", "[REDACTED:ODD_SECRET]": 1}
    )
    assert ex.response.tool_uses[0].input == {"echo": "x[REDACTED:ODD_SECRET]y"}


def test_exchange_refs_reconcile_with_their_events(redactor: Any) -> None:
    """The exchange's index ref has its ref event, so `fsck --events` is clean."""
    from steve.events import EventLog
    from steve.events.fsck import fsck

    repo = Repo.memory()
    with EventLog.memory() as log:
        repo.events.sink = log
        session = LLMSession(repo, scripted(), redactor=redactor)
        session.complete(req("write the design"), run_id="r1", stage="DESIGN")
        session.complete(req("write the design"), run_id="r1", stage="DESIGN")  # again
        repo.drain()
        report = fsck(repo, log)
        assert report.ok, [p.detail for p in report.problems]
