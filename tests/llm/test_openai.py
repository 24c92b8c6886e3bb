"""The openai provider: the real SDK against the loopback chat completions server."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from steve.errors import (
    BudgetExceeded,
    LlmAuthFailed,
    LlmError,
    LlmRateLimited,
    LlmServerError,
    LlmStreamError,
)
from steve.llm import record
from steve.llm.budget import Budgets
from steve.llm.openai_provider import OpenAIProvider
from steve.llm.replay import ReplayProvider
from steve.llm.session import LLMSession
from steve.llm.types import Done, Message, Request, ToolResultBlock, ToolUseBlock
from steve.repo import Repo
from tests.llm.servers import KEY, Gate, OpenAIServer, Status


def provider(server: OpenAIServer, **kw: Any) -> OpenAIProvider:
    kw.setdefault("max_retries", 0)
    return OpenAIProvider(api_key=kw.pop("api_key", KEY), base_url=server.base_url + "/v1", **kw)


def req(prompt: str = "say hello", max_tokens: int = 200) -> Request:
    return Request.simple("openai", "gpt-loop", prompt, system="be brief", max_tokens=max_tokens)


def test_streamed_chunks_reach_the_callback_before_done(
    repo: Repo, redactor: Any, openai_server: OpenAIServer
) -> None:
    gate = threading.Event()
    openai_server.plan(Gate(gate))
    seen: list[str] = []

    def on_text(text: str) -> None:
        seen.append(text)
        gate.set()

    ex = LLMSession(repo, provider(openai_server), redactor=redactor).complete(
        req(), on_text=on_text
    )
    assert "".join(seen) == openai_server.reply == ex.response.text and len(seen) > 1
    body = openai_server.generations()[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say hello"},
    ]
    assert ex.response.id == "chatcmpl-loop0001" and ex.response.stop_reason == "stop"
    assert ex.response.usage.output_tokens == len(seen)
    assert ex.response.usage.input_tokens > 9


def test_json_send_and_tool_calls(openai_server: OpenAIServer) -> None:
    openai_server.tool = ("submit", {"b": 2, "a": "x"})
    p = provider(openai_server)
    sent = p.send(req())
    assert sent.text == openai_server.reply and sent.tool_uses[0].input == {"a": "x", "b": 2}
    streamed = list(p.stream(req()))
    done = streamed[-1]
    assert isinstance(done, Done)
    assert done.response.tool_uses == (ToolUseBlock("call_0002", "submit", '{"a":"x","b":2}'),)
    assert done.response.stop_reason == "tool_calls"


def test_tool_results_become_tool_messages(openai_server: OpenAIServer) -> None:
    request = Request(
        "openai",
        "gpt-loop",
        (
            Message.user("go"),
            Message("assistant", (ToolUseBlock.of("call_1", "f", {"x": 1}),)),
            Message("user", (ToolResultBlock("call_1", "done"),)),
        ),
    )
    provider(openai_server).send(request)
    assert openai_server.seen[-1].body["messages"] == [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"x":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
    ]


def test_errors_and_retries(openai_server: OpenAIServer) -> None:
    with pytest.raises(LlmAuthFailed):
        provider(openai_server, api_key="sk-wrong").send(req())
    openai_server.plan(Status(500), Status(503), Status(502))
    with pytest.raises(LlmServerError):
        list(provider(openai_server, max_retries=2).stream(req()))
    assert len(openai_server.generations()) == 4
    openai_server.plan(Status(429, {"retry-after": "0"}))
    assert provider(openai_server, max_retries=1).send(req()).text == openai_server.reply
    openai_server.plan(Status(429, {"retry-after": "0"}))
    with pytest.raises(LlmRateLimited):
        provider(openai_server).send(req())


@pytest.mark.parametrize("behaviour", ["midstream_error", "drop"])
def test_a_broken_stream_is_coded(openai_server: OpenAIServer, behaviour: str) -> None:
    openai_server.plan(behaviour)
    with pytest.raises(LlmError) as info:
        list(provider(openai_server, max_retries=2).stream(req()))
    assert isinstance(info.value, LlmStreamError), info.value


def test_budget_refusal_and_replay_offline(
    repo: Repo, redactor: Any, openai_server: OpenAIServer
) -> None:
    Budgets(repo).set_limit("stage", 150)
    session = LLMSession(repo, provider(openai_server), redactor=redactor)
    with pytest.raises(BudgetExceeded):
        session.complete(req(max_tokens=200), run_id="r", stage="BUILD")
    assert openai_server.seen == []
    first = session.complete(req(max_tokens=50), run_id="r", stage="BUILD")
    openai_server.stop()
    again = LLMSession(repo, ReplayProvider(repo), redactor=redactor).complete(req(max_tokens=50))
    assert (again.request_oid, again.response_oid) == (first.request_oid, first.response_oid)
    assert record.find(repo, first.request_oid) is not None
