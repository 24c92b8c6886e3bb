"""The plain repository config, ``.steve/config`` (TOML; holds no secrets).

It carries what is needed *before* the database can be opened: the storage
format, the repository id (names the cached key) and the Argon2id salt and
parameters plus the key check.  Nothing in it reveals repository content.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from steve.errors import BadConfig, InvalidInput, UnsupportedFormat
from steve.store.files import write_private
from steve.store.kdf import KdfParams

FORMAT = 1
LLM_KEYS = ("provider", "model", "base_url", "fixture")


@dataclass(frozen=True, slots=True)
class LlmSettings:
    """The ``[llm]`` section: which model provider STEVE uses by default.

    ``provider`` (anthropic, openai, scripted, replay), ``model``, ``base_url``
    (an OpenAI-compatible or Anthropic-compatible server) and ``fixture`` (the
    scripted provider's answers file).  Never a key: a section that holds one
    is refused (keys come from the environment only).
    """

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    fixture: str | None = None

    def to_toml(self) -> str:
        lines = [f"{k} = {_quote(v)}" for k in LLM_KEYS if (v := getattr(self, k)) is not None]
        return "\n[llm]\n" + "".join(line + "\n" for line in lines) if lines else ""

    @classmethod
    def from_toml(cls, section: object, path: Path) -> LlmSettings | None:
        if section is None:
            return None
        if not isinstance(section, dict):
            raise BadConfig(str(path), "[llm] is not a table")
        unknown = sorted(set(section) - set(LLM_KEYS))
        if unknown:
            why = "API keys are never stored in the config; set them in the environment"
            if not any("key" in k or "token" in k for k in unknown):
                why = f"unknown keys {unknown} (known: {', '.join(LLM_KEYS)})"
            raise BadConfig(str(path), f"[llm] {why}")
        values = {}
        for k in LLM_KEYS:
            v = section.get(k)
            if v is not None and (not isinstance(v, str) or not v or "\n" in v):
                raise BadConfig(str(path), f"[llm] {k} must be a one-line string")
            values[k] = v
        return cls(**values)


def _quote(value: str) -> str:
    """A TOML basic string (backslash, quote and control characters escaped)."""
    out = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c
        for c in value
    )
    return f'"{out}"'


@dataclass(frozen=True, slots=True)
class RepoConfig:
    repository_id: str
    kdf: KdfParams
    key_check: bytes
    format: int = FORMAT
    events_public_key: bytes | None = None
    """The Ed25519 public key event-log checkpoints must be signed with (pinned by
    ``steve init`` or ``steve events pin-key``; the private key is never here)."""
    gate: dict[str, Any] | None = field(default=None, compare=False)
    """The ``[gate]`` table: the policy gate's extra rules and approval TTL, as read
    (:func:`steve.porcelain.gate.parse_rules` validates it).  Kept when the config is
    rewritten."""
    llm: LlmSettings | None = None
    """The ``[llm]`` section (``steve llm use``), None when absent."""

    def to_toml(self) -> str:
        return (
            "# STEVE repository config. Holds no secrets; do not edit the [kdf] section:\n"
            "# without this salt the database cannot be opened.\n"
            "[core]\n"
            f"format = {self.format}\n"
            f'repository_id = "{self.repository_id}"\n'
            "\n[kdf]\n"
            'algorithm = "argon2id"\n'
            f'salt = "{self.kdf.salt.hex()}"\n'
            f"memory_kib = {self.kdf.memory_kib}\n"
            f"iterations = {self.kdf.iterations}\n"
            f"parallelism = {self.kdf.parallelism}\n"
            f'key_check = "{self.key_check.hex()}"\n'
            "\n[cipher]\n"
            'engine = "sqlcipher4"\n'
            "page_size = 4096\n"
        ) + (
            ""
            if self.events_public_key is None
            else "\n# The event log's checkpoints are verified with this key (not a secret).\n"
            f'[events]\npublic_key = "{self.events_public_key.hex()}"\n'
        ) + ("" if self.gate is None else _gate_toml(self.gate)) + (
            "" if self.llm is None else self.llm.to_toml()
        )

    def with_events_key(self, public_key: bytes | None) -> RepoConfig:
        return replace(self, events_public_key=public_key)

    def with_llm(self, settings: LlmSettings | None) -> RepoConfig:
        return replace(self, llm=settings)

    def write(self, path: Path) -> None:
        write_private(path, self.to_toml())

    @classmethod
    def read(cls, path: Path) -> RepoConfig:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise BadConfig(str(path), "missing") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadConfig(str(path), str(exc)) from exc
        try:
            core, kdf = data["core"], data["kdf"]
            fmt = int(core["format"])
            if fmt > FORMAT:
                raise UnsupportedFormat(fmt, FORMAT)
            if kdf["algorithm"] != "argon2id":
                raise BadConfig(str(path), f"unknown KDF {kdf['algorithm']!r}")
            params = KdfParams(
                salt=bytes.fromhex(kdf["salt"]),
                memory_kib=kdf["memory_kib"],  # TOML integers; validate() checks type and range
                iterations=kdf["iterations"],
                parallelism=kdf["parallelism"],
            )
            try:
                params.validate()
            except InvalidInput as exc:  # a tampered config: refused before Argon2id runs
                raise BadConfig(str(path), f"[kdf] {exc.detail}") from None
            events = data.get("events", {})
            pinned = events.get("public_key") if isinstance(events, dict) else None
            events_key = None if pinned is None else bytes.fromhex(str(pinned))
            if events_key is not None and len(events_key) != 32:
                raise ValueError("[events] public_key is not 32 bytes")
            return cls(
                repository_id=str(core["repository_id"]),
                kdf=params,
                key_check=bytes.fromhex(kdf["key_check"]),
                format=fmt,
                events_public_key=events_key,
                gate=_gate_table(data.get("gate")),
                llm=LlmSettings.from_toml(data.get("llm"), path),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadConfig(str(path), f"missing or invalid field: {exc}") from exc


def _gate_table(value: object) -> dict[str, Any] | None:
    """The ``[gate]`` table if it has the shape the config can write back: integers at
    the top and ``[[gate.rule]]`` tables of strings (the gate checks the meaning)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("[gate] must be a table")
    for key, item in value.items():
        if key == "rule":
            if not isinstance(item, list) or not all(
                isinstance(r, dict) and all(isinstance(v, str) for v in r.values())
                for r in item
            ):
                raise ValueError("[[gate.rule]] entries must be tables of strings")
        elif not isinstance(item, int) or isinstance(item, bool):
            raise ValueError(f"[gate] {key} must be an integer")
    return value


def _gate_toml(gate: dict[str, Any]) -> str:
    lines = [
        "\n# The policy gate (docs/policy.md): rules here can only tighten the defaults.",
        "[gate]",
    ]
    lines += [f"{k} = {int(v)}" for k, v in sorted(gate.items()) if k != "rule"]
    for rule in gate.get("rule", []):
        lines += ["", "[[gate.rule]]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in sorted(rule.items())]
    return "\n".join(lines) + "\n"
