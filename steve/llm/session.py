"""The session: every model exchange of STEVE goes through here.

    >>> session = LLMSession(repo, provider, redactor=Redactor(secrets))
    >>> ex = session.complete(request, run_id=run, stage="PLAN", on_text=print_delta)
    >>> ex.response.text, ex.request_oid, ex.response_oid

:meth:`LLMSession.complete`, in order:

1. redacts the request (registered secret values and common key shapes
   become ``[REDACTED:name]``): the model sees the redacted request, and it
   is what is stored and hashed, so the record is exactly what was sent;
2. with the replay provider, answers from the record only (a miss is
   ReplayMiss, STEVE-LLM-007) and stops here: a replay is a read and records
   nothing;
3. checks the budgets of every scope the exchange falls in against an
   upper estimate (input tokens + ``max_tokens``); over a limit it raises
   BudgetExceeded and sends nothing;
4. streams the answer, handing each text delta (redacted on its own) to
   ``on_text`` as it arrives; the library never prints;
5. on a provider failure applies the fallback policy (F-LLM-008): the coded
   error, or with ``fallback="recorded"`` the recorded answer to the same
   request when one exists;
6. redacts the response and records request, response, exchange tree, the
   ``refs/llm/...`` index entry, the budget charge and the events
   ``llm.exchange`` and ``budget.charged`` in ONE transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal, Protocol

from steve.errors import (
    BudgetExceeded,
    LlmAuthFailed,
    LlmError,
    LlmRequestRejected,
    MalformedObject,
)
from steve.llm import record
from steve.llm.budget import Budgets, Charge
from steve.llm.provider import Provider, estimate_tokens
from steve.llm.record import Exchange
from steve.llm.replay import ReplayProvider
from steve.llm.types import (
    Block,
    Done,
    Message,
    Request,
    Response,
    TextBlock,
    TextDelta,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    canonical_json,
)
from steve.repo import Repo

Fallback = Literal["error", "recorded"]
TextCallback = Callable[[str], None]


class Redactor(Protocol):
    """What the session needs of STEVE's one redaction pipeline (:mod:`steve.redact`)."""

    def text(self, s: str) -> str: ...


def redact_json(redactor: Redactor, text: str) -> str:
    """JSON text with every string in it (keys too) redacted, as canonical JSON.

    Redacting the decoded strings, not the JSON text, also catches a value
    that JSON escapes (a quote, a backslash, a control character in it)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.text(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {redactor.text(k): walk(v) for k, v in value.items()}
        return value

    try:
        return canonical_json(walk(json.loads(text)))
    except (ValueError, MalformedObject):  # not JSON STEVE writes: redact it as text
        return redactor.text(text)


def redact_block(redactor: Redactor, block: Block) -> Block:
    if isinstance(block, TextBlock):
        return TextBlock(redactor.text(block.text))
    if isinstance(block, ToolUseBlock):
        return ToolUseBlock(block.id, block.name, redact_json(redactor, block.input_json))
    return ToolResultBlock(block.tool_use_id, redactor.text(block.content), block.is_error)


def redact_request(redactor: Redactor, request: Request) -> Request:
    """``request`` with every text it carries redacted (system, messages, tool
    descriptions and schemas, stop sequences); names and ids are kept."""
    return replace(
        request,
        system=redactor.text(request.system),
        messages=tuple(
            Message(m.role, tuple(redact_block(redactor, b) for b in m.content))
            for m in request.messages
        ),
        tools=tuple(
            Tool(t.name, redactor.text(t.description), redact_json(redactor, t.schema_json))
            for t in request.tools
        ),
        stop=tuple(redactor.text(x) for x in request.stop),
    )


def redact_response(redactor: Redactor, response: Response) -> Response:
    return replace(response, content=tuple(redact_block(redactor, b) for b in response.content))


class _TextOut:
    """Streamed deltas -> redaction -> the callback, one delta at a time.

    Each delta is redacted on its own and handed on at once (no hold-back, so
    text appears as it arrives).  A value split across two deltas is not
    caught here; the model never saw a registered secret (the request was
    redacted before it was sent), and what is *stored* is the whole response
    redacted in one piece.  docs/llm.md#redaction says so.
    """

    def __init__(self, redactor: Redactor, callback: TextCallback | None) -> None:
        self._redactor = redactor
        self._callback = callback

    def write(self, text: str) -> None:
        if self._callback is not None and text:
            self._callback(self._redactor.text(text))


class LLMSession:
    """Model exchanges for one repository: redacted, budgeted, recorded.

    ``provider`` answers; ``redactor`` is STEVE's redaction pipeline;
    ``budgets`` the repository's budgets (default: ``Budgets(repo)``);
    ``fallback`` what a provider failure does (``"error"``: raise it,
    ``"recorded"``: answer from the record when the same request was
    answered before).  ``exact_count``: when the local upper estimate does
    not fit a budget, ask the provider to count the input tokens (a
    ``count_tokens`` call, not a generation) before refusing.
    """

    def __init__(
        self,
        repo: Repo,
        provider: Provider,
        *,
        redactor: Redactor,
        budgets: Budgets | None = None,
        fallback: Fallback = "error",
        exact_count: bool = False,
    ) -> None:
        self.repo = repo
        self.provider = provider
        self.redactor = redactor
        self.budgets = budgets if budgets is not None else Budgets(repo)
        self.fallback = fallback
        self.exact_count = exact_count

    def complete(
        self,
        request: Request,
        *,
        run_id: str | None = None,
        stage: str | None = None,
        node: str | None = None,
        node_budget: int | None = None,
        on_text: TextCallback | None = None,
    ) -> Exchange:
        """Ask the provider (see the module doc for every step); returns the recorded
        exchange, whose ids are committed when this returns."""
        sent = redact_request(self.redactor, request)
        charge = Charge(run_id, stage, node, node_budget)
        if isinstance(self.provider, ReplayProvider):
            return self._replayed(self.provider.recorded(sent), charge, on_text, None)
        self._check_budget(sent, charge)
        out = _TextOut(self.redactor, on_text)
        try:
            response = self._ask(sent, out)
        except LlmError as exc:
            exc.message = self.redactor.text(exc.message)  # a server may echo the prompt
            exc.detail = self.redactor.text(exc.detail)
            if isinstance(exc, LlmAuthFailed | LlmRequestRejected):
                raise  # the request itself is wrong: a recorded answer would hide it
            if self.fallback == "recorded":
                found = record.find(self.repo, record.request_oid(sent), self.provider.name)
                if found is not None:
                    return self._replayed(found, charge, on_text, "llm.fallback")
            raise
        return self._record(sent, redact_response(self.redactor, response), charge)

    # --- steps ----------------------------------------------------------------------------

    def _check_budget(self, request: Request, charge: Charge) -> None:
        if not self.budgets.has_limits() and not charge.node_budget:
            return
        needed = estimate_tokens(request) + request.max_tokens
        try:
            self.budgets.check(charge, needed)
        except BudgetExceeded:
            if not self.exact_count:
                self._refused(request, charge, needed)
                raise
            needed = self.provider.count_tokens(request) + request.max_tokens
            try:
                self.budgets.check(charge, needed)
            except BudgetExceeded:
                self._refused(request, charge, needed)
                raise

    def _refused(self, request: Request, charge: Charge, needed: int) -> None:
        with self.repo.transaction() as tx:
            tx.emit(
                "budget.refused",
                {
                    "provider": request.provider,
                    "model": request.model,
                    "stage": charge.stage,
                    "node": charge.node,
                    "needed": needed,
                },
                charge.run_id,
            )

    def _ask(self, request: Request, out: _TextOut) -> Response:
        for event in self.provider.stream(request):
            if isinstance(event, TextDelta):
                out.write(event.text)
            elif isinstance(event, Done):
                return event.response
        raise LlmError(self.provider.name, "the answer stream ended without a response")

    def _record(self, request: Request, response: Response, charge: Charge) -> Exchange:
        enc = record.encode(request, response)
        tokens = response.usage.total
        with self.repo.transaction() as tx:
            record.store(self.repo, tx, enc)
            totals = self.budgets.charge(tx, charge, tokens)
            ids = {
                "request": enc.request_oid.hex,
                "response": enc.response_oid.hex,
                "exchange": enc.exchange_oid.hex,
            }
            tx.emit(
                "llm.exchange",
                {
                    **ids,
                    "provider": self.provider.name,
                    "model": request.model,
                    "stage": charge.stage,
                    "node": charge.node,
                    "input_tokens": response.usage.input_tokens,
                    "output_tokens": response.usage.output_tokens,
                    "stop_reason": response.stop_reason,
                },
                charge.run_id,
            )
            tx.emit(
                "budget.charged",
                {"request": enc.request_oid.hex, "tokens": tokens, "totals": totals},
                charge.run_id,
            )
        return Exchange(
            request,
            response,
            enc.request_oid,
            enc.response_oid,
            enc.exchange_oid,
            self.provider.name,
        )

    def _replayed(
        self, found: Exchange, charge: Charge, on_text: TextCallback | None, event: str | None
    ) -> Exchange:
        """``found`` as the answer; ``event`` (a fallback) is recorded, a plain replay is a
        read like ``cat-file`` and records nothing."""
        if event is not None:
            with self.repo.transaction() as tx:
                tx.emit(
                    event,
                    {
                        "request": found.request_oid.hex,
                        "response": found.response_oid.hex,
                        "exchange": found.exchange_oid.hex,
                        "stage": charge.stage,
                        "node": charge.node,
                    },
                    charge.run_id,
                )
        if on_text is not None and found.response.text:
            on_text(found.response.text)  # stored redacted: no second pass needed
        return found
