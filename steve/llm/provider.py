"""The provider protocol: what STEVE needs from a model, whoever serves it.

A provider turns a canonical :class:`~steve.llm.types.Request` into a
:class:`~steve.llm.types.Response`.  ``stream`` yields the text as it
arrives and ends with the whole response (:class:`~steve.llm.types.Done`);
``send`` is the same without the deltas.  Providers raise only the typed
``STEVE-LLM-*`` errors.  They do not record, charge or redact: the session
(:class:`steve.llm.session.LLMSession`) does that around them.

Every provider but replay has its exchanges recorded and charged by the
session with the usage the response reports (the scripted provider reports
a deterministic estimate); replay answers from the record and costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from steve.errors import (
    LlmAuthFailed,
    LlmError,
    LlmRateLimited,
    LlmRequestRejected,
    LlmServerError,
    LlmTimeout,
)
from steve.llm.types import Done, ModelInfo, Request, Response, StreamEvent

BYTES_PER_TOKEN_BOUND = 1
"""Upper bound used by :func:`estimate_tokens`: a byte-level BPE token covers at
least one byte of UTF-8 text, so a text of N bytes is at most N tokens."""

MESSAGE_OVERHEAD = 8
"""Tokens allowed per message (and once for the system prompt and tools) for the
role markers a provider adds around the text."""


@runtime_checkable
class Provider(Protocol):
    name: str

    def send(self, request: Request) -> Response:
        """The whole answer to ``request``."""
        ...

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        """Text deltas as they arrive, then one :class:`Done` with the response."""
        ...

    def count_tokens(self, request: Request) -> int:
        """Input tokens of ``request`` (exact when the provider can count them)."""
        ...

    def model_info(self, model: str) -> ModelInfo: ...


def estimate_tokens(request: Request) -> int:
    """A documented upper estimate of ``request``'s input tokens, computed locally:
    UTF-8 bytes of every text it carries / :data:`BYTES_PER_TOKEN_BOUND`, plus
    :data:`MESSAGE_OVERHEAD` per message and once more for system and tools."""
    size = sum(len(text.encode("utf-8")) for text in request.texts())
    return size // BYTES_PER_TOKEN_BOUND + MESSAGE_OVERHEAD * (len(request.messages) + 1)


def send_by_stream(provider: Provider, request: Request) -> Response:
    """``send`` for a provider whose natural form is the stream."""
    for event in provider.stream(request):
        if isinstance(event, Done):
            return event.response
    raise AssertionError(f"{provider.name}: stream ended without a response")


def error_for_status(provider: str, status: int, detail: str) -> LlmError:
    """The typed error for an HTTP status a model server answered with (after retries)."""
    text = f"HTTP {status}: {detail}"
    if status in (401, 403):
        return LlmAuthFailed(provider, text)
    if status == 429:
        return LlmRateLimited(provider, text)
    if status == 408:
        return LlmTimeout(provider, text)
    if status >= 500:
        return LlmServerError(provider, text)
    return LlmRequestRejected(provider, text)
