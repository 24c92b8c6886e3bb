"""The scripted provider: answers from a fixture file, for tests and offline runs.

A fixture is YAML (or JSON, a subset) holding a list of answers, or a map
with an ``answers`` list::

    answers:
      - match: "design intake"        # any request whose text contains this
        text: "..."                   # the answer's text
      - match_last: "fix these errors" # the last user message contains this
        tool_use: {name: submit_design, input: {title: "..."}}
        stop_reason: tool_use
        usage: {input_tokens: 120, output_tokens: 40}
      - text: "an answer given in order"

For each request the first answer whose ``match_last`` is in the last user
message is used, else the first whose ``match`` is in the system prompt or
any message, else the next answer that has neither key, in file order
(each such answer once per provider instance).  Keyed answers may be used
any number of times.  Nothing matching: ScriptExhausted (STEVE-LLM-010).

Answers are deterministic: the response id is derived from the request and
the answer, and the usage (when the answer gives none) from their sizes.
:meth:`ScriptedProvider.default` loads the fixture shipped with STEVE
(``steve/llm/fixtures/default.yaml``), which the offline main job uses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from steve.errors import BadFixture, ScriptExhausted
from steve.llm.provider import estimate_tokens
from steve.llm.types import (
    Block,
    Done,
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
from steve.objects.oid import ObjectId

DELTA_CHARS = 24
"""Streamed text comes in pieces of at most this many characters."""

DEFAULT_FIXTURE = "default.yaml"


@dataclass(frozen=True, slots=True)
class Answer:
    index: int
    text: str
    tool_use: tuple[str, str] | None  # (name, canonical JSON input)
    stop_reason: str
    usage: Usage | None
    match: str | None
    match_last: str | None


def _answer(index: int, item: Any, where: str) -> Answer:
    if not isinstance(item, dict):
        raise BadFixture(where, f"answer {index} is not a map")
    known = {"text", "tool_use", "stop_reason", "usage", "match", "match_last"}
    if unknown := sorted(set(item) - known):
        raise BadFixture(where, f"answer {index}: unknown keys {unknown}")
    text = item.get("text", "")
    if not isinstance(text, str):
        raise BadFixture(where, f"answer {index}: text must be a string")
    tool: tuple[str, str] | None = None
    if (spec := item.get("tool_use")) is not None:
        if not (
            isinstance(spec, dict)
            and isinstance(spec.get("name"), str)
            and isinstance(spec.get("input", {}), dict)
        ):
            raise BadFixture(where, f"answer {index}: tool_use needs a name and an input map")
        try:
            tool = (spec["name"], canonical_json(spec.get("input", {})))
        except ValueError as exc:
            raise BadFixture(where, f"answer {index}: {exc}") from exc
    if not text and tool is None:
        raise BadFixture(where, f"answer {index} has neither text nor tool_use")
    usage = None
    if (u := item.get("usage")) is not None:
        if not (
            isinstance(u, dict)
            and all(
                isinstance(u.get(k), int) and u[k] >= 0 for k in ("input_tokens", "output_tokens")
            )
        ):
            raise BadFixture(where, f"answer {index}: usage needs input_tokens, output_tokens")
        usage = Usage(u["input_tokens"], u["output_tokens"])
    keys = []
    for key in ("match", "match_last"):
        value = item.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise BadFixture(where, f"answer {index}: {key} must be non-empty text")
        keys.append(value)
    stop = item.get("stop_reason", "tool_use" if tool else "end_turn")
    if not isinstance(stop, str):
        raise BadFixture(where, f"answer {index}: stop_reason must be text")
    return Answer(index, text, tool, stop, usage, keys[0], keys[1])


def parse_fixture(text: str, where: str) -> list[Answer]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadFixture(where, f"not YAML or JSON: {exc}") from exc
    if isinstance(data, dict) and set(data) == {"answers"}:
        data = data["answers"]
    if not isinstance(data, list):
        raise BadFixture(where, "expected a list of answers (or a map with 'answers')")
    return [_answer(i, item, where) for i, item in enumerate(data)]


class ScriptedProvider:
    """Answers from a fixture (see the module doc)."""

    name = "scripted"

    def __init__(self, answers: Sequence[Answer], source: str = "<fixture>") -> None:
        self.answers = list(answers)
        self.source = source
        self._next = 0  # the next ordered (keyless) answer
        self._lock = threading.Lock()  # generate nodes may ask from several threads

    @classmethod
    def from_file(cls, path: Path) -> ScriptedProvider:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadFixture(str(path), str(exc)) from exc
        return cls(parse_fixture(text, str(path)), str(path))

    @classmethod
    def from_answers(cls, items: Sequence[Mapping[str, Any]]) -> ScriptedProvider:
        """From answers given as maps (the fixture's form), e.g. in tests."""
        return cls([_answer(i, dict(item), "<answers>") for i, item in enumerate(items)])

    @classmethod
    def default(cls) -> ScriptedProvider:
        """The fixture shipped with STEVE for the offline main job."""
        ref = resources.files("steve.llm").joinpath("fixtures", DEFAULT_FIXTURE)
        return cls(
            parse_fixture(ref.read_text(encoding="utf-8"), f"steve:{DEFAULT_FIXTURE}"),
            f"steve:{DEFAULT_FIXTURE}",
        )

    def _choose(self, request: Request) -> Answer:
        last = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
        for a in self.answers:
            if a.match_last is not None and a.match_last in last:
                return a
        whole = "\n".join(request.texts())
        for a in self.answers:
            if a.match is not None and a.match in whole:
                return a
        with self._lock:
            while self._next < len(self.answers):
                a = self.answers[self._next]
                self._next += 1
                if a.match is None and a.match_last is None:
                    return a
        raise ScriptExhausted(
            self.source,
            f"no answer matches and the {len(self.answers)} answers in order are used up",
        )

    def send(self, request: Request) -> Response:
        a = self._choose(request)
        content: list[Block] = []
        if a.text:
            content.append(TextBlock(a.text))
        if a.tool_use is not None:
            digest = ObjectId.of(request.canonical() + b"tool" + a.tool_use[1].encode()).hex
            content.append(ToolUseBlock(f"toolu_scripted_{digest[:20]}", *a.tool_use))
        answer = json.dumps([a.index, a.text, a.tool_use]).encode()
        rid = "msg_scripted_" + ObjectId.of(request.canonical() + answer).hex[:24]
        usage = a.usage or Usage(
            max(1, estimate_tokens(request) // 4),
            max(1, (len(a.text.encode()) + len((a.tool_use or ("", ""))[1])) // 4),
        )
        return Response(rid, request.model, tuple(content), a.stop_reason, usage)

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        response = self.send(request)
        text = response.text
        for i in range(0, len(text), DELTA_CHARS):
            yield TextDelta(text[i : i + DELTA_CHARS])
        yield Done(response)

    def count_tokens(self, request: Request) -> int:
        return max(1, estimate_tokens(request) // 4)

    def model_info(self, model: str) -> ModelInfo:
        return ModelInfo(self.name, model, 200_000, 8192)
