"""Asking a model for a structured draft, with bounded repair rounds.

The stages that use a model (design intake, plan decomposition) share this
loop: :func:`ask_for_draft` sends a request that offers one tool whose
input schema is the draft's JSON Schema, takes the draft from the tool call
(or, for a model without tool use, from a JSON or YAML block in its text),
validates it, and when it is invalid sends the validation errors back
(``rounds`` times at most).  Every exchange goes through
:class:`~steve.llm.session.LLMSession` (redacted, budgeted, recorded), and
the result names them all, so the manifest frozen from the draft pins the
request and response objects it came from (:func:`provenance`).

Model output is data: it is parsed (safe YAML/JSON) and validated, never
executed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import yaml

from steve.errors import InvalidInput, ManifestInvalid, ModelOutputInvalid
from steve.llm.budget import Budgets
from steve.llm.record import Exchange
from steve.llm.replay import ReplayProvider
from steve.llm.session import LLMSession, TextCallback
from steve.llm.types import Message, Request, TextBlock, Tool, ToolResultBlock
from steve.objects.schemas.common import ModelExchange, ModelProvenance
from steve.porcelain.freeze import load_draft
from steve.repo import Repo

__all__ = [
    "DEFAULT_ROUNDS",
    "Drafted",
    "ModelTarget",
    "ask_for_draft",
    "draft_from_text",
    "provenance",
]

DEFAULT_ROUNDS = 2
"""Repair rounds after the first answer (so at most 3 exchanges per draft)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """Which model a stage asks, through which session.

    ``provider`` is the name recorded in each request (the provider that
    answered when the run was recorded: with the replay provider it must be
    the recorded one, so the same request is found); ``model`` the model id.
    """

    session: LLMSession
    provider: str
    model: str
    max_tokens: int = 4096
    temperature_milli: int | None = None  # the provider's default (SDK 2.x has no temperature)

    def bound(self, repo: Repo) -> ModelTarget:
        """The same target whose session (and replay record) uses ``repo``, e.g. the
        thread-safe view a build shares between its workers (:meth:`Repo.serialized`)."""
        s = self.session
        if s.repo is repo:
            return self
        provider = ReplayProvider(repo) if isinstance(s.provider, ReplayProvider) else s.provider
        session = LLMSession(
            repo,
            provider,
            redactor=s.redactor,
            budgets=Budgets(repo),
            fallback=s.fallback,
            exact_count=s.exact_count,
        )
        return replace(self, session=session)

    def request(
        self, messages: Sequence[Message], *, system: str, tools: Sequence[Tool] = ()
    ) -> Request:
        return Request(
            self.provider,
            self.model,
            tuple(messages),
            system,
            tuple(tools),
            max_tokens=self.max_tokens,
            temperature_milli=self.temperature_milli,
        )


@dataclass(frozen=True, slots=True)
class Drafted(Generic[T]):
    """A validated draft and every exchange that led to it (repairs included)."""

    value: T
    draft: dict[str, Any]
    exchanges: tuple[Exchange, ...]


def provenance(target: ModelTarget, exchanges: Sequence[Exchange]) -> ModelProvenance:
    """The ``provenance`` a manifest frozen from these exchanges records."""
    return ModelProvenance(
        provider=target.provider,
        model=target.model,
        exchanges=[
            ModelExchange(request=e.request_oid.hex, response=e.response_oid.hex) for e in exchanges
        ],
    )


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[^\n]*\n(.*?)```", re.S)


def draft_from_text(text: str) -> dict[str, Any]:
    """A draft in a model's text: the first fenced ``json``/``yaml`` block, else the whole
    text, parsed with STEVE's draft loader (safe YAML or JSON); InvalidInput if none."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    chosen = next((b for lang, b in blocks if lang in ("json", "yaml", "yml")), None)
    if chosen is None:
        chosen = blocks[0][1] if blocks else text
    return load_draft(chosen.encode("utf-8"), "the model's answer")


def _feedback(problems: Sequence[tuple[str, str]]) -> str:
    lines = "\n".join(f"- {path or '(root)'}: {rule}" for path, rule in problems[:50])
    return (
        "The draft is not valid. Fix exactly these problems and submit the whole draft "
        f"again with the same tool:\n{lines}"
    )


def ask_for_draft(
    target: ModelTarget,
    *,
    kind: str,
    system: str,
    prompt: str,
    tool: Tool,
    validate: Callable[[Mapping[str, Any]], T],
    rounds: int = DEFAULT_ROUNDS,
    run_id: str | None = None,
    stage: str | None = None,
    on_text: TextCallback | None = None,
) -> Drafted[T]:
    """Ask for a draft until ``validate`` accepts it (``validate`` raises ManifestInvalid
    or InvalidInput with what is wrong); after ``rounds`` repairs, ModelOutputInvalid."""
    messages: list[Message] = [Message.user(prompt)]
    exchanges: list[Exchange] = []
    problems: list[tuple[str, str]] = []
    for _ in range(rounds + 1):
        request = target.request(messages, system=system, tools=(tool,))
        ex = target.session.complete(request, run_id=run_id, stage=stage, on_text=on_text)
        exchanges.append(ex)
        calls = [u for u in ex.response.tool_uses if u.name == tool.name]
        try:
            draft = calls[0].input if calls else draft_from_text(ex.response.text)
            value = validate(draft)
        except ManifestInvalid as exc:
            problems = list(exc.problems)
        except InvalidInput as exc:
            problems = [("", f"{exc.message}: {exc.detail}")]
        else:
            return Drafted(value, draft, tuple(exchanges))
        text = _feedback(problems)
        messages.append(Message("assistant", ex.response.content))
        if calls:
            content: tuple[TextBlock | ToolResultBlock, ...] = (
                ToolResultBlock(calls[0].id, text, is_error=True),
                TextBlock(text),
            )
            messages.append(Message("user", content))
        else:
            messages.append(Message.user(text))
    raise ModelOutputInvalid(kind, rounds, problems, [e.response_oid.hex for e in exchanges])


def tool_for(name: str, description: str, schema: Mapping[str, Any]) -> Tool:
    return Tool.of(name, description, schema)


def schema_without(schema: Mapping[str, Any], owned: Sequence[str]) -> dict[str, Any]:
    """A JSON Schema (pydantic's) without the properties STEVE sets itself."""
    out = json.loads(json.dumps(schema))
    props = out.get("properties", {})
    for name in owned:
        props.pop(name, None)
    out["required"] = [r for r in out.get("required", []) if r not in owned]
    return dict(out)


def dump_yaml(value: Any) -> str:
    """A draft as block YAML (for showing and editing; keys in their order)."""
    return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100))
