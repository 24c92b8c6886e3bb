"""The canonical request and response of a model exchange.

One request type and one response type for every provider, so that the
record, the replay index and the budgets do not depend on a vendor.  Both
are frozen dataclasses with a canonical CBOR form (:meth:`Request.canonical`,
:meth:`Response.canonical`): STEVE's data model has no floats, so the
temperature is kept in thousandths and tool schemas and tool inputs (JSON
that may hold floats) as canonical JSON text.

    >>> req = Request.simple("anthropic", "claude-x", "Say hi", system="Be brief")
    >>> Request.from_canonical(req.canonical()) == req
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from steve.errors import MalformedObject
from steve.objects import cbor

Role = Literal["user", "assistant"]
REQUEST_VERSION = 1
RESPONSE_VERSION = 1


def canonical_json(value: object) -> str:
    """JSON text with sorted keys and no spaces: one text per JSON value."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise MalformedObject(f"not a JSON value: {exc}") from exc


def _need(value: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    item = value.get(key)
    if type(item) is not kind:
        raise MalformedObject(f"{where}: {key!r} must be {kind.__name__}")
    return item


def _opt(value: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    item = value.get(key)
    if item is not None and type(item) is not kind:
        raise MalformedObject(f"{where}: {key!r} must be {kind.__name__} or null")
    return item


# --- content blocks -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str

    def to_value(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True, slots=True)
class ToolUseBlock:
    """A tool call by the model; ``input_json`` is the arguments as canonical JSON."""

    id: str
    name: str
    input_json: str

    @classmethod
    def of(cls, id: str, name: str, input: Mapping[str, Any]) -> ToolUseBlock:
        return cls(id, name, canonical_json(dict(input)))

    @property
    def input(self) -> dict[str, Any]:
        value = json.loads(self.input_json)
        return value if isinstance(value, dict) else {"value": value}

    def to_value(self) -> dict[str, Any]:
        return {"type": "tool_use", "id": self.id, "name": self.name, "input": self.input_json}


@dataclass(frozen=True, slots=True)
class ToolResultBlock:
    tool_use_id: str
    content: str
    is_error: bool = False

    def to_value(self) -> dict[str, Any]:
        return {
            "type": "tool_result",
            "tool_use_id": self.tool_use_id,
            "content": self.content,
            "is_error": self.is_error,
        }


Block = TextBlock | ToolUseBlock | ToolResultBlock


def block_from_value(value: Any) -> Block:
    if type(value) is not dict:
        raise MalformedObject("a content block must be a map")
    kind = value.get("type")
    if kind == "text" and set(value) == {"type", "text"}:
        return TextBlock(_need(value, "text", str, "text block"))
    if kind == "tool_use" and set(value) == {"type", "id", "name", "input"}:
        return ToolUseBlock(
            _need(value, "id", str, "tool_use"),
            _need(value, "name", str, "tool_use"),
            _need(value, "input", str, "tool_use"),
        )
    if kind == "tool_result" and set(value) == {"type", "tool_use_id", "content", "is_error"}:
        return ToolResultBlock(
            _need(value, "tool_use_id", str, "tool_result"),
            _need(value, "content", str, "tool_result"),
            _need(value, "is_error", bool, "tool_result"),
        )
    raise MalformedObject(f"unknown or malformed content block {kind!r}")


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: tuple[Block, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", (TextBlock(text),))

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", (TextBlock(text),))

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    def to_value(self) -> dict[str, Any]:
        return {"role": self.role, "content": [b.to_value() for b in self.content]}

    @classmethod
    def from_value(cls, value: Any) -> Message:
        if type(value) is not dict or set(value) != {"role", "content"}:
            raise MalformedObject("a message must be a map of role and content")
        role = value["role"]
        if role not in ("user", "assistant"):
            raise MalformedObject(f"unknown message role {role!r}")
        content = value["content"]
        if type(content) is not list:
            raise MalformedObject("message content must be a list")
        return cls(role, tuple(block_from_value(b) for b in content))


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model may call; ``schema_json`` is its JSON Schema, canonical JSON."""

    name: str
    description: str
    schema_json: str

    @classmethod
    def of(cls, name: str, description: str, schema: Mapping[str, Any]) -> Tool:
        return cls(name, description, canonical_json(dict(schema)))

    @property
    def schema(self) -> dict[str, Any]:
        value = json.loads(self.schema_json)
        assert isinstance(value, dict)
        return value

    def to_value(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "schema": self.schema_json}


# --- request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """What is asked of a model: everything that decides the answer, nothing else.

    ``provider`` and ``model`` are part of the request (the same prompt to
    another model is another request).  ``temperature_milli`` is the
    temperature in thousandths (700 = 0.7); None leaves the provider's default.
    """

    provider: str
    model: str
    messages: tuple[Message, ...]
    system: str = ""
    tools: tuple[Tool, ...] = ()
    max_tokens: int = 1024
    temperature_milli: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.messages:
            raise MalformedObject("a request needs at least one message")
        if not 0 < self.max_tokens <= 1 << 24:
            raise MalformedObject(f"max_tokens {self.max_tokens} outside 1..{1 << 24}")
        if self.temperature_milli is not None and not 0 <= self.temperature_milli <= 2000:
            raise MalformedObject(f"temperature_milli {self.temperature_milli} outside 0..2000")

    @classmethod
    def simple(
        cls, provider: str, model: str, prompt: str, *, system: str = "", max_tokens: int = 1024
    ) -> Request:
        return cls(provider, model, (Message.user(prompt),), system, max_tokens=max_tokens)

    @property
    def temperature(self) -> float | None:
        return None if self.temperature_milli is None else self.temperature_milli / 1000

    def to_value(self) -> dict[str, Any]:
        return {
            "kind": "steve.llm.request",
            "v": REQUEST_VERSION,
            "provider": self.provider,
            "model": self.model,
            "system": self.system,
            "messages": [m.to_value() for m in self.messages],
            "tools": [t.to_value() for t in self.tools],
            "parameters": {
                "max_tokens": self.max_tokens,
                "temperature_milli": self.temperature_milli,
                "stop": list(self.stop),
            },
        }

    def canonical(self) -> bytes:
        """The canonical CBOR bytes: what is stored, and what the replay index hashes."""
        return cbor.encode(self.to_value())

    @classmethod
    def from_value(cls, value: Any) -> Request:
        keys = {"kind", "v", "provider", "model", "system", "messages", "tools", "parameters"}
        if type(value) is not dict or set(value) != keys:
            raise MalformedObject("not a STEVE LLM request")
        if value["kind"] != "steve.llm.request" or value["v"] != REQUEST_VERSION:
            raise MalformedObject("not a STEVE LLM request of a known version")
        params = value["parameters"]
        if type(params) is not dict or set(params) != {"max_tokens", "temperature_milli", "stop"}:
            raise MalformedObject("request parameters malformed")
        tools = value["tools"]
        messages = value["messages"]
        stop = params["stop"]
        if type(tools) is not list or type(messages) is not list or type(stop) is not list:
            raise MalformedObject("request lists malformed")
        parsed_tools = []
        for t in tools:
            if type(t) is not dict or set(t) != {"name", "description", "schema"}:
                raise MalformedObject("tool malformed")
            parsed_tools.append(
                Tool(
                    _need(t, "name", str, "tool"),
                    _need(t, "description", str, "tool"),
                    _need(t, "schema", str, "tool"),
                )
            )
        if any(type(s) is not str for s in stop):
            raise MalformedObject("stop sequences must be text")
        return cls(
            provider=_need(value, "provider", str, "request"),
            model=_need(value, "model", str, "request"),
            system=_need(value, "system", str, "request"),
            messages=tuple(Message.from_value(m) for m in messages),
            tools=tuple(parsed_tools),
            max_tokens=_need(params, "max_tokens", int, "parameters"),
            temperature_milli=_opt(params, "temperature_milli", int, "parameters"),
            stop=tuple(stop),
        )

    @classmethod
    def from_canonical(cls, data: bytes) -> Request:
        return cls.from_value(cbor.decode(data))

    def texts(self) -> Iterator[str]:
        """Every piece of text the request carries (what token estimates count)."""
        yield self.system
        for m in self.messages:
            for b in m.content:
                if isinstance(b, TextBlock):
                    yield b.text
                elif isinstance(b, ToolUseBlock):
                    yield b.name
                    yield b.input_json
                else:
                    yield b.content
        for t in self.tools:
            yield t.name
            yield t.description
            yield t.schema_json
        yield from self.stop


# --- response ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_value(self) -> dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True, slots=True)
class Response:
    """A model's answer.  ``id`` is the provider's message id (kept for the audit)."""

    id: str
    model: str
    content: tuple[Block, ...]
    stop_reason: str | None
    usage: Usage = field(default_factory=Usage)

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> tuple[ToolUseBlock, ...]:
        return tuple(b for b in self.content if isinstance(b, ToolUseBlock))

    def to_value(self) -> dict[str, Any]:
        return {
            "kind": "steve.llm.response",
            "v": RESPONSE_VERSION,
            "id": self.id,
            "model": self.model,
            "content": [b.to_value() for b in self.content],
            "stop_reason": self.stop_reason,
            "usage": self.usage.to_value(),
        }

    def canonical(self) -> bytes:
        return cbor.encode(self.to_value())

    @classmethod
    def from_value(cls, value: Any) -> Response:
        keys = {"kind", "v", "id", "model", "content", "stop_reason", "usage"}
        if type(value) is not dict or set(value) != keys:
            raise MalformedObject("not a STEVE LLM response")
        if value["kind"] != "steve.llm.response" or value["v"] != RESPONSE_VERSION:
            raise MalformedObject("not a STEVE LLM response of a known version")
        usage = value["usage"]
        if type(usage) is not dict or set(usage) != {"input_tokens", "output_tokens"}:
            raise MalformedObject("response usage malformed")
        content = value["content"]
        if type(content) is not list:
            raise MalformedObject("response content must be a list")
        return cls(
            id=_need(value, "id", str, "response"),
            model=_need(value, "model", str, "response"),
            content=tuple(block_from_value(b) for b in content),
            stop_reason=_opt(value, "stop_reason", str, "response"),
            usage=Usage(
                _need(usage, "input_tokens", int, "usage"),
                _need(usage, "output_tokens", int, "usage"),
            ),
        )

    @classmethod
    def from_canonical(cls, data: bytes) -> Response:
        return cls.from_value(cbor.decode(data))


# --- streaming and model facts ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of streamed text, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The end of a stream: the whole response, with the usage the stream reported."""

    response: Response


StreamEvent = TextDelta | Done


@dataclass(frozen=True, slots=True)
class ModelInfo:
    provider: str
    model: str
    context_window: int
    max_output_tokens: int
