"""The ``anthropic`` provider: the official SDK, streaming first.

Streams with ``messages.create(stream=True)`` and reads the raw server-sent
events: ``message_start`` carries the message id and the input usage,
``content_block_*`` the text and tool calls, ``message_delta`` the stop
reason and the output usage, which is *cumulative* (the last value is the
total, not a sum of values).  ``ping`` is skipped (by the SDK).

Retries are the SDK's, set on purpose: ``max_retries`` attempts after the
first (statuses 408, 409, 429, 5xx and 529, connection errors), with
exponential backoff from 0.5 s up to 8 s, and a ``retry-after`` /
``retry-after-ms`` header from the server obeyed instead.  ``timeout`` bounds
each attempt (``connect_timeout`` its connection).  What fails after them is
raised as a typed ``STEVE-LLM-*`` error; the session applies STEVE's
fallback policy.  An ``event: error`` in mid-stream is LlmStreamError (not
retried: part of the answer was already shown).

The key and the base URL are parameters (the CLI reads ``ANTHROPIC_API_KEY``
and ``ANTHROPIC_BASE_URL``): both are always passed to the SDK explicitly.
The key goes in the header the SDK chooses for an API key (``x-api-key`` in
older SDK versions, ``Authorization: Bearer`` in newer ones); ``bearer``
passes it as an auth token, always ``Authorization: Bearer`` (gateways).
The key is kept only by the SDK client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2

from steve.errors import BadModelOutput, LlmError, LlmStreamError, LlmTimeout
from steve.llm.provider import error_for_status
from steve.llm.types import (
    Block,
    Done,
    Message,
    ModelInfo,
    Request,
    Response,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolUseBlock,
    Usage,
    canonical_json,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
NAME = "anthropic"


def _block_param(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
        "is_error": block.is_error,
    }


def _message_param(message: Message) -> dict[str, Any]:
    return {"role": message.role, "content": [_block_param(b) for b in message.content]}


def request_params(request: Request) -> dict[str, Any]:
    """The Messages API body of ``request`` (without ``stream``)."""
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [_message_param(m) for m in request.messages],
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.schema}
            for t in request.tools
        ]
    if request.temperature is not None:
        # the SDK's create() has no temperature parameter (2.x); the Messages API
        # takes it in the body
        params["extra_body"] = {"temperature": request.temperature}
    if request.stop:
        params["stop_sequences"] = list(request.stop)
    return params


def _error(exc: anthropic.APIError, *, streaming: bool) -> LlmError:
    if isinstance(exc, anthropic.APITimeoutError):
        return LlmTimeout(NAME, str(exc))
    if isinstance(exc, anthropic.APIStatusError):
        if streaming:
            return LlmStreamError(NAME, f"error event in the stream: {exc.message}")
        return error_for_status(NAME, exc.status_code, exc.message)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return BadModelOutput(NAME, str(exc))
    return LlmError(NAME, f"{type(exc).__name__}: {exc}")


def _content(blocks: Any) -> tuple[Block, ...]:
    out: list[Block] = []
    for b in blocks:
        if b.type == "text":
            out.append(TextBlock(b.text))
        elif b.type == "tool_use":
            out.append(ToolUseBlock(b.id, b.name, canonical_json(b.input)))
    return tuple(out)


class AnthropicProvider:
    """Anthropic's Messages API through the official SDK (see the module doc)."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        max_retries: int = 2,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        bearer: bool = False,
        context_window: int = 200_000,
        max_output_tokens: int = 64_000,
    ) -> None:
        auth: dict[str, str | None] = (
            {"auth_token": api_key, "api_key": None} if bearer else {"api_key": api_key}
        )
        self._client = anthropic.Anthropic(
            **auth,  # type: ignore[arg-type]
            base_url=base_url or DEFAULT_BASE_URL,
            max_retries=max_retries,
            timeout=anthropic.Timeout(timeout, connect=connect_timeout),
        )
        self.base_url = base_url or DEFAULT_BASE_URL
        self._info = (context_window, max_output_tokens)

    def close(self) -> None:
        self._client.close()

    def send(self, request: Request) -> Response:
        """One JSON (non-streaming) request."""
        try:
            msg = self._client.messages.create(**request_params(request))
        except anthropic.APIError as exc:
            raise _error(exc, streaming=False) from None
        usage = Usage(msg.usage.input_tokens or 0, msg.usage.output_tokens or 0)
        return Response(msg.id, msg.model, _content(msg.content), msg.stop_reason, usage)

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        params = request_params(request)
        try:
            stream = self._client.messages.create(**params, stream=True)
        except anthropic.APIError as exc:
            raise _error(exc, streaming=False) from None
        with stream:
            yield from self._events(stream, request)

    def _events(self, stream: Any, request: Request) -> Iterator[StreamEvent]:
        msg_id, model = "", request.model
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        blocks: dict[int, list[Any]] = {}  # index -> [kind, text or (id, name), json parts]
        finished = False
        try:
            for event in stream:
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    slot = blocks.get(event.index)
                    if delta.type == "text_delta":
                        if slot is None:
                            slot = blocks[event.index] = ["text", []]
                        slot[1].append(delta.text)
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta" and slot is not None:
                        slot[2].append(delta.partial_json)
                elif kind == "message_start":
                    msg_id, model = event.message.id, event.message.model or model
                    usage = event.message.usage
                    input_tokens = usage.input_tokens or 0
                    output_tokens = usage.output_tokens or 0
                elif kind == "content_block_start":
                    cb = event.content_block
                    if cb.type == "text":
                        blocks[event.index] = ["text", [cb.text] if cb.text else []]
                        if cb.text:
                            yield TextDelta(cb.text)
                    elif cb.type == "tool_use":
                        blocks[event.index] = ["tool_use", (cb.id, cb.name), []]
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    if event.usage.output_tokens is not None:
                        output_tokens = event.usage.output_tokens  # cumulative
                    if getattr(event.usage, "input_tokens", None) is not None:
                        input_tokens = event.usage.input_tokens
                elif kind == "message_stop":
                    finished = True
        except anthropic.APIError as exc:
            raise _error(exc, streaming=True) from None
        except (httpx2.HTTPError, OSError) as exc:
            raise LlmStreamError(NAME, f"the connection broke: {exc}") from None
        if not finished:
            raise LlmStreamError(NAME, "the stream ended before message_stop")
        content: list[Block] = []
        for index in sorted(blocks):
            slot = blocks[index]
            if slot[0] == "text":
                content.append(TextBlock("".join(slot[1])))
            else:
                raw = "".join(slot[2]) or "{}"
                try:
                    value = json.loads(raw)
                except ValueError as exc:
                    raise BadModelOutput(NAME, f"tool input is not JSON: {exc}") from None
                content.append(ToolUseBlock(slot[1][0], slot[1][1], canonical_json(value)))
        yield Done(
            Response(msg_id, model, tuple(content), stop_reason, Usage(input_tokens, output_tokens))
        )

    def count_tokens(self, request: Request) -> int:
        """Input tokens, counted by the server (``/v1/messages/count_tokens``)."""
        params = request_params(request)
        for unused in ("max_tokens", "extra_body", "stop_sequences"):
            params.pop(unused, None)
        try:
            counted = self._client.messages.count_tokens(**params)
        except anthropic.APIError as exc:
            raise _error(exc, streaming=False) from None
        return int(counted.input_tokens)

    def model_info(self, model: str) -> ModelInfo:
        return ModelInfo(NAME, model, *self._info)
