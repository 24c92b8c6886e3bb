"""The anthropic provider: the real SDK against the loopback Messages API server."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from steve.errors import (
    BudgetExceeded,
    LlmAuthFailed,
    LlmError,
    LlmRateLimited,
    LlmRequestRejected,
    LlmServerError,
    LlmStreamError,
)
from steve.llm import record
from steve.llm.anthropic_provider import AnthropicProvider
from steve.llm.budget import Budgets
from steve.llm.replay import ReplayProvider
from steve.llm.session import LLMSession
from steve.llm.types import Request, ToolUseBlock
from steve.repo import Repo
from tests.llm.servers import KEY, AnthropicServer, Gate, Status


def provider(server: AnthropicServer, **kw: Any) -> AnthropicProvider:
    kw.setdefault("max_retries", 0)
    return AnthropicProvider(api_key=kw.pop("api_key", KEY), base_url=server.base_url, **kw)


def req(prompt: str = "say hello", max_tokens: int = 200) -> Request:
    return Request.simple(
        "anthropic", "claude-loop", prompt, system="be brief", max_tokens=max_tokens
    )


def test_streamed_text_reaches_the_callback_before_the_answer_ends(
    repo: Repo, redactor: Any, anthropic_server: AnthropicServer
) -> None:
    gate = threading.Event()
    anthropic_server.plan(Gate(gate))
    seen: list[str] = []

    def on_text(text: str) -> None:
        seen.append(text)
        gate.set()  # the server sends the rest only after the first piece arrived here

    session = LLMSession(repo, provider(anthropic_server), redactor=redactor)
    t0 = time.monotonic()
    ex = session.complete(req(), on_text=on_text)
    assert time.monotonic() - t0 < 5  # the gate opened at once, not by its timeout
    assert "".join(seen) == anthropic_server.reply == ex.response.text
    assert len(seen) > 1
    body = anthropic_server.generations()[0].body
    assert body["stream"] is True and body["system"] == "be brief"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "say hello"}]}
    ]
    # usage: input from message_start, output from message_delta (cumulative, not summed)
    assert ex.response.usage.input_tokens > 11
    assert ex.response.usage.output_tokens == len(seen)
    assert ex.response.id == "msg_loop_0001" and ex.response.stop_reason == "end_turn"
    assert record.find(repo, ex.request_oid) is not None


def test_send_speaks_json_and_count_tokens_asks_the_server(
    anthropic_server: AnthropicServer,
) -> None:
    p = provider(anthropic_server)
    resp = p.send(req())
    assert resp.text == anthropic_server.reply and resp.usage.output_tokens > 0
    assert "stream" not in anthropic_server.seen[-1].body
    n = p.count_tokens(req())
    assert anthropic_server.seen[-1].path == "/v1/messages/count_tokens"
    assert n == len('[{"role": "user", "content": [{"type": "text", "text": "say hello"}]}]') // 4


def test_tool_use_is_streamed_and_parsed(anthropic_server: AnthropicServer) -> None:
    anthropic_server.tool = ("submit", {"title": "x", "n": [1, 2.5]})
    events = list(provider(anthropic_server).stream(req()))
    done = events[-1]
    from steve.llm.types import Done

    assert isinstance(done, Done)
    (tool,) = done.response.tool_uses
    assert isinstance(tool, ToolUseBlock)
    assert tool.name == "submit" and tool.input == {"title": "x", "n": [1, 2.5]}
    assert done.response.stop_reason == "tool_use"


@pytest.mark.parametrize("bearer", [False, True])
def test_the_key_goes_as_x_api_key_or_bearer(
    anthropic_server: AnthropicServer, bearer: bool
) -> None:
    provider(anthropic_server, bearer=bearer).send(req())
    headers = anthropic_server.seen[-1].headers
    if bearer:
        assert headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in headers
    else:  # the SDK chooses: x-api-key in older versions, Authorization: Bearer in newer
        assert KEY in (headers.get("x-api-key"), headers.get("authorization", "")[7:])


def test_a_wrong_key_is_a_coded_error(anthropic_server: AnthropicServer) -> None:
    with pytest.raises(LlmAuthFailed) as info:
        list(provider(anthropic_server, api_key="sk-ant-wrong").stream(req()))
    assert info.value.code == "STEVE-LLM-002"


def test_retries_as_configured_then_a_coded_error(anthropic_server: AnthropicServer) -> None:
    anthropic_server.plan(Status(529), Status(529), Status(529))
    with pytest.raises(LlmServerError):
        list(provider(anthropic_server, max_retries=2).stream(req()))
    assert len(anthropic_server.generations()) == 3
    anthropic_server.plan(Status(500), Status(500))
    with pytest.raises(LlmServerError):
        list(provider(anthropic_server, max_retries=1).stream(req()))
    assert len(anthropic_server.generations()) == 5
    anthropic_server.plan(Status(500))
    with pytest.raises(LlmServerError):
        list(provider(anthropic_server, max_retries=0).stream(req()))
    assert len(anthropic_server.generations()) == 6
    anthropic_server.plan(Status(400))
    with pytest.raises(LlmRequestRejected):  # a 400 is never retried
        list(provider(anthropic_server, max_retries=3).stream(req()))
    assert len(anthropic_server.generations()) == 7


def test_a_rate_limit_is_retried_after_the_servers_retry_after(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.plan(Status(429, {"retry-after": "2"}))
    t0 = time.monotonic()
    resp = provider(anthropic_server, max_retries=1).send(req())
    assert time.monotonic() - t0 >= 1.9  # the SDK's own backoff would be ~0.5 s
    assert resp.text == anthropic_server.reply
    assert len(anthropic_server.generations()) == 2
    anthropic_server.plan(Status(429, {"retry-after": "0"}), Status(429, {"retry-after": "0"}))
    with pytest.raises(LlmRateLimited) as info:
        provider(anthropic_server, max_retries=1).send(req())
    assert info.value.code == "STEVE-LLM-003"


@pytest.mark.parametrize("behaviour", ["midstream_error", "drop"])
def test_a_broken_stream_is_a_coded_error_and_records_nothing(
    repo: Repo, redactor: Any, anthropic_server: AnthropicServer, behaviour: str
) -> None:
    anthropic_server.plan(behaviour)
    seen: list[str] = []
    session = LLMSession(repo, provider(anthropic_server, max_retries=2), redactor=redactor)
    with pytest.raises(LlmError) as info:
        session.complete(req(), on_text=seen.append)
    assert isinstance(info.value, LlmStreamError), info.value
    assert seen  # the first piece was shown before the break
    assert list(record.iter_exchanges(repo)) == []
    assert len(anthropic_server.generations()) == 1  # a broken stream is not retried


def test_a_budget_refusal_sends_nothing(
    repo: Repo, redactor: Any, anthropic_server: AnthropicServer
) -> None:
    Budgets(repo).set_limit("run", 100)
    session = LLMSession(repo, provider(anthropic_server), redactor=redactor)
    with pytest.raises(BudgetExceeded):
        session.complete(req(max_tokens=500), run_id="r1")
    assert anthropic_server.seen == []
    ex = session.complete(req(max_tokens=20), run_id="r1")
    assert Budgets(repo).used("run:r1") == ex.response.usage.total
    assert len(anthropic_server.seen) == 1


def test_exact_count_asks_the_server_before_refusing(
    repo: Repo, redactor: Any, anthropic_server: AnthropicServer
) -> None:
    """The local upper estimate does not fit; the server's count does."""
    prompt = "x" * 400
    Budgets(repo).set_limit("project", 200)
    session = LLMSession(repo, provider(anthropic_server), redactor=redactor, exact_count=True)
    session.complete(req(prompt, max_tokens=50))
    assert [s.path for s in anthropic_server.seen] == ["/v1/messages/count_tokens", "/v1/messages"]


def test_replay_with_the_server_stopped_gives_the_same_ids(
    repo: Repo, redactor: Any, anthropic_server: AnthropicServer
) -> None:
    live = LLMSession(repo, provider(anthropic_server), redactor=redactor)
    prompts = [f"question {i}" for i in range(5)]
    first = [live.complete(req(p)) for p in prompts]
    anthropic_server.stop()
    replay = LLMSession(repo, ReplayProvider(repo), redactor=redactor)
    again = [replay.complete(req(p)) for p in prompts]
    assert [(a.request_oid, a.response_oid) for a in first] == [
        (b.request_oid, b.response_oid) for b in again
    ]
    assert [b.response.id for b in again] == [f"msg_loop_{i:04d}" for i in range(1, 6)]
    with pytest.raises(LlmError):  # the live provider really has no server now
        live.complete(req("question 0"))


def test_temperature_and_stop_sequences_reach_the_server(anthropic_server: AnthropicServer) -> None:
    from steve.llm.types import Message

    request = Request(
        "anthropic", "claude-loop", (Message.user("hi"),), temperature_milli=700, stop=("END",)
    )
    provider(anthropic_server).send(request)
    body = anthropic_server.seen[-1].body
    assert body["temperature"] == 0.7 and body["stop_sequences"] == ["END"]
    assert "system" not in body
