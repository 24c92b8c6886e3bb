"""The ``openai`` provider: the official SDK against any OpenAI-compatible server.

Chat completions (``POST /v1/chat/completions``), streaming first: the
server sends ``data:`` chunks (text in ``choices[0].delta.content``, tool
calls in ``delta.tool_calls`` pieces) and ends with ``data: [DONE]``; usage
is asked for with ``stream_options.include_usage`` and read from the last
chunk.  A server that reports no usage (some local servers) is charged an
upper estimate instead: the request's :func:`~steve.llm.provider.estimate_tokens`
plus the UTF-8 bytes of the answer.  ``base_url`` (the CLI reads
``OPENAI_BASE_URL``) reaches OpenAI itself or a local server such as Ollama
(``http://localhost:11434/v1``) or llama.cpp's ``llama-server``
(``http://localhost:8080/v1``); those take any key.

Retries are the SDK's (``max_retries`` after the first attempt on 408, 409,
429, 5xx and connection errors, exponential backoff, ``retry-after``
honoured), each attempt bounded by ``timeout``; then a typed error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai

from steve.errors import BadModelOutput, LlmError, LlmStreamError, LlmTimeout
from steve.llm.provider import error_for_status, estimate_tokens
from steve.llm.types import (
    Block,
    Done,
    ModelInfo,
    Request,
    Response,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    canonical_json,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NAME = "openai"


def request_params(request: Request) -> dict[str, Any]:
    """The chat completions body of ``request`` (without ``stream``)."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for m in request.messages:
        text = "".join(b.text for b in m.content if isinstance(b, TextBlock))
        calls = [b for b in m.content if isinstance(b, ToolUseBlock)]
        for b in m.content:
            if isinstance(b, ToolResultBlock):
                messages.append(
                    {"role": "tool", "tool_call_id": b.tool_use_id, "content": b.content}
                )
        if m.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.input_json},
                    }
                    for c in calls
                ]
            messages.append(entry)
        elif text:
            messages.append({"role": "user", "content": text})
    params: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens,
    }
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.schema},
            }
            for t in request.tools
        ]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.stop:
        params["stop"] = list(request.stop)
    return params


def _error(exc: openai.APIError, *, streaming: bool) -> LlmError:
    if isinstance(exc, openai.APITimeoutError):
        return LlmTimeout(NAME, str(exc))
    if isinstance(exc, openai.APIStatusError):
        return error_for_status(NAME, exc.status_code, exc.message)
    if isinstance(exc, openai.APIConnectionError):
        if streaming:
            return LlmStreamError(NAME, f"the connection broke: {exc}")
        return LlmError(NAME, str(exc))
    if isinstance(exc, openai.APIResponseValidationError):
        return BadModelOutput(NAME, str(exc))
    if streaming:  # an error object in a data: chunk
        return LlmStreamError(NAME, f"error in the stream: {exc.message}")
    return LlmError(NAME, f"{type(exc).__name__}: {exc}")


def _tool(call_id: str, name: str, arguments: str) -> ToolUseBlock:
    try:
        value = json.loads(arguments or "{}")
    except ValueError as exc:
        raise BadModelOutput(NAME, f"tool arguments are not JSON: {exc}") from None
    return ToolUseBlock(call_id, name, canonical_json(value))


class OpenAIProvider:
    """OpenAI-compatible chat completions through the official SDK (see the module doc)."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        max_retries: int = 2,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        context_window: int = 128_000,
        max_output_tokens: int = 16_384,
    ) -> None:
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            max_retries=max_retries,
            timeout=openai.Timeout(timeout, connect=connect_timeout),
        )
        self.base_url = base_url or DEFAULT_BASE_URL
        self._info = (context_window, max_output_tokens)

    def close(self) -> None:
        self._client.close()

    def send(self, request: Request) -> Response:
        try:
            done = self._client.chat.completions.create(**request_params(request))
        except openai.APIError as exc:
            raise _error(exc, streaming=False) from None
        if not done.choices:
            raise BadModelOutput(NAME, "the answer has no choices")
        choice = done.choices[0]
        content: list[Block] = []
        if choice.message.content:
            content.append(TextBlock(choice.message.content))
        for call in choice.message.tool_calls or []:
            fn = getattr(call, "function", None)
            if fn is not None:
                content.append(_tool(call.id, fn.name, fn.arguments))
        text = choice.message.content or ""
        return Response(
            done.id,
            done.model or request.model,
            tuple(content),
            choice.finish_reason,
            self._usage(done.usage, request, text),
        )

    @staticmethod
    def _usage(usage: Any, request: Request, text: str) -> Usage:
        if usage is None:
            return Usage(estimate_tokens(request), len(text.encode("utf-8")))
        return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        try:
            stream = self._client.chat.completions.create(
                **request_params(request), stream=True, stream_options={"include_usage": True}
            )
        except openai.APIError as exc:
            raise _error(exc, streaming=False) from None
        with stream:
            yield from self._events(stream, request)

    def _events(self, stream: Any, request: Request) -> Iterator[StreamEvent]:
        rid, model = "", request.model
        text: list[str] = []
        calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]
        finish: str | None = None
        usage: Any = None
        try:
            for chunk in stream:
                rid = chunk.id or rid
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(call.index, ["", ""])
                        if call.id:
                            slot[0] = call.id
                        if call.function is not None:
                            if call.function.name:
                                slot[1] = call.function.name
                            if call.function.arguments:
                                slot.append(call.function.arguments)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except openai.APIError as exc:
            raise _error(exc, streaming=True) from None
        if finish is None:
            raise LlmStreamError(NAME, "the stream ended without a finish reason")
        content: list[Block] = [TextBlock("".join(text))] if text else []
        for index in sorted(calls):
            slot = calls[index]
            content.append(_tool(slot[0], slot[1], "".join(slot[2:])))
        yield Done(
            Response(rid, model, tuple(content), finish, self._usage(usage, request, "".join(text)))
        )

    def count_tokens(self, request: Request) -> int:
        """The local upper estimate: chat completions has no counting endpoint."""
        return estimate_tokens(request)

    def model_info(self, model: str) -> ModelInfo:
        return ModelInfo(NAME, model, *self._info)
