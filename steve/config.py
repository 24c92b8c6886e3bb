"""The plain repository config, ``.steve/config`` (TOML; holds no secrets).

It carries what is needed *before* the database can be opened: the storage
format, the repository id (names the cached key) and the Argon2id salt and
parameters plus the key check.  Nothing in it reveals repository content.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from steve.errors import BadConfig, BadSettingValue, InvalidInput, UnknownSetting, UnsupportedFormat
from steve.record import Record
from steve.store.files import write_private
from steve.store.kdf import KdfParams

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

FORMAT = 1
LLM_KEYS = ("provider", "model", "base_url", "fixture")


class LlmSettings(Record):
    """The ``[llm]`` section: which model provider STEVE uses by default.

    ``provider`` (anthropic, openai, scripted, replay), ``model``, ``base_url``
    (an OpenAI-compatible or Anthropic-compatible server) and ``fixture`` (the
    scripted provider's answers file).  Never a key: a section that holds one
    is refused (keys come from the environment only).
    """

    __match_args__ = ("provider", "model", "base_url", "fixture")
    __slots__ = __match_args__
    provider: str | None
    model: str | None
    base_url: str | None
    fixture: str | None

    def __init__(
        self,
        provider: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        fixture: str | None = None,
    ) -> None:
        _set(self, "provider", provider)
        _set(self, "model", model)
        _set(self, "base_url", base_url)
        _set(self, "fixture", fixture)

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


class ResearchSettings(Record):
    """The ``[research]`` section: ``offline`` (true: fetches answer only from the
    mirror unless ``--online`` is given; the rule for reproducible runs) and
    ``searxng_url`` (the SearxNG-compatible search endpoint)."""

    __match_args__ = ("offline", "searxng_url")
    __slots__ = __match_args__
    offline: bool
    searxng_url: str | None

    def __init__(self, offline: bool = False, searxng_url: str | None = None) -> None:
        _set(self, "offline", offline)
        _set(self, "searxng_url", searxng_url)

    def to_toml(self) -> str:
        lines = [f"offline = {'true' if self.offline else 'false'}"]
        if self.searxng_url is not None:
            lines.append(f"searxng_url = {_quote(self.searxng_url)}")
        return "\n[research]\n" + "".join(line + "\n" for line in lines)

    @classmethod
    def from_toml(cls, section: object, path: Path) -> ResearchSettings | None:
        if section is None:
            return None
        if not isinstance(section, dict):
            raise BadConfig(str(path), "[research] is not a table")
        unknown = sorted(set(section) - {"offline", "searxng_url"})
        if unknown:
            raise BadConfig(str(path), f"[research] unknown keys {unknown}")
        offline = section.get("offline", False)
        url = section.get("searxng_url")
        if not isinstance(offline, bool):
            raise BadConfig(str(path), "[research] offline must be true or false")
        if url is not None and (not isinstance(url, str) or not url or "\n" in url):
            raise BadConfig(str(path), "[research] searxng_url must be a one-line string")
        return cls(offline, url)


HOMELY_DEFAULTS: dict[str, str | int] = {
    "nudges": "gentle",
    "late_hour": 23,
    "session_hours": 3,
    "failure_streak": 3,
}
"""The ``[homely]`` keys and their defaults (docs/messages.md#nudges)."""
NUDGE_MODES = ("off", "gentle")


class HomelySettings(Record):
    """The ``[homely]`` section: the wellbeing nudges (``steve config set homely.KEY``).

    ``nudges`` (off, gentle), ``late_hour`` (0..23: from this hour until 05:00 a
    late-hour nudge may be shown), ``session_hours`` (1..24: a session this long
    earns a nudge), ``failure_streak`` (1..100: this many failed ``steve test`` runs
    in a row earn one).
    """

    __match_args__ = ("nudges", "late_hour", "session_hours", "failure_streak")
    __slots__ = __match_args__
    nudges: str
    late_hour: int
    session_hours: int
    failure_streak: int

    def __init__(
        self,
        nudges: str = "gentle",
        late_hour: int = 23,
        session_hours: int = 3,
        failure_streak: int = 3,
    ) -> None:
        _set(self, "nudges", nudges)
        _set(self, "late_hour", late_hour)
        _set(self, "session_hours", session_hours)
        _set(self, "failure_streak", failure_streak)

    @staticmethod
    def check(key: str, value: str | int) -> str | int:
        """``value`` for ``key`` as stored; UnknownSetting or BadSettingValue otherwise."""
        if key not in HOMELY_DEFAULTS:
            raise UnknownSetting(f"homely.{key}", [f"homely.{k}" for k in HOMELY_DEFAULTS])
        if key == "nudges":
            if value not in NUDGE_MODES:
                raise BadSettingValue(f"homely.{key}", str(value), " or ".join(NUDGE_MODES))
            return str(value)
        low, high = {"late_hour": (0, 23), "session_hours": (1, 24), "failure_streak": (1, 100)}[
            key
        ]
        text = str(value).strip()
        if isinstance(value, bool) or not text.isascii() or not text.isdigit():
            number = -1
        else:
            number = int(text)
        if not low <= number <= high:
            raise BadSettingValue(f"homely.{key}", str(value), f"an integer in {low}..{high}")
        return number

    def with_value(self, key: str, value: str | int) -> HomelySettings:
        changes: dict[str, Any] = {key: self.check(key, value)}
        return self.replace(**changes)

    def to_toml(self) -> str:
        changed = [k for k in HOMELY_DEFAULTS if getattr(self, k) != HOMELY_DEFAULTS[k]]
        if not changed:
            return ""
        lines = [
            f"{k} = {_quote(v) if isinstance(v, str) else v}"
            for k in changed
            if (v := getattr(self, k)) is not None
        ]
        return "\n# The homely layer's nudges (docs/messages.md#nudges).\n[homely]\n" + "".join(
            line + "\n" for line in lines
        )

    @classmethod
    def from_toml(cls, section: object, path: Path) -> HomelySettings | None:
        if section is None:
            return None
        if not isinstance(section, dict):
            raise BadConfig(str(path), "[homely] is not a table")
        settings = cls()
        for key, value in section.items():
            try:
                settings = settings.with_value(str(key), value)
            except (UnknownSetting, BadSettingValue) as exc:
                raise BadConfig(str(path), f"[homely] {exc.detail}") from None
        return settings


def _quote(value: str) -> str:
    """A TOML basic string (backslash, quote and control characters escaped)."""
    out = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c for c in value
    )
    return f'"{out}"'


class RepoConfig(Record):
    __match_args__ = (
        "repository_id",
        "kdf",
        "key_check",
        "format",
        "events_public_key",
        "gate",
        "llm",
        "research",
        "homely",
    )
    __slots__ = __match_args__
    _compared = tuple(n for n in __match_args__ if n != "gate")  # gate: field(compare=False)
    repository_id: str
    kdf: KdfParams
    key_check: bytes
    format: int
    events_public_key: bytes | None
    """The Ed25519 public key event-log checkpoints must be signed with (pinned by
    ``steve init`` or ``steve events pin-key``; the private key is never here)."""
    gate: dict[str, Any] | None
    """The ``[gate]`` table: the policy gate's extra rules and approval TTL, as read
    (:func:`steve.porcelain.gate.parse_rules` validates it).  Kept when the config is
    rewritten."""
    llm: LlmSettings | None
    """The ``[llm]`` section (``steve llm use``), None when absent."""
    research: ResearchSettings | None
    """The ``[research]`` section (offline by default, the SearxNG URL), None when absent."""
    homely: HomelySettings | None
    """The ``[homely]`` section (``steve config set homely.KEY``), None when absent."""

    def __init__(
        self,
        repository_id: str,
        kdf: KdfParams,
        key_check: bytes,
        format: int = FORMAT,
        events_public_key: bytes | None = None,
        gate: dict[str, Any] | None = None,
        llm: LlmSettings | None = None,
        research: ResearchSettings | None = None,
        homely: HomelySettings | None = None,
    ) -> None:
        _set(self, "repository_id", repository_id)
        _set(self, "kdf", kdf)
        _set(self, "key_check", key_check)
        _set(self, "format", format)
        _set(self, "events_public_key", events_public_key)
        _set(self, "gate", gate)
        _set(self, "llm", llm)
        _set(self, "research", research)
        _set(self, "homely", homely)

    def to_toml(self) -> str:
        return (
            (
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
            )
            + (
                ""
                if self.events_public_key is None
                else "\n# The event log's checkpoints are verified with this key (not a secret).\n"
                f'[events]\npublic_key = "{self.events_public_key.hex()}"\n'
            )
            + ("" if self.gate is None else _gate_toml(self.gate))
            + ("" if self.llm is None else self.llm.to_toml())
            + ("" if self.homely is None else self.homely.to_toml())
            + ("" if self.research is None else self.research.to_toml())
        )

    def with_events_key(self, public_key: bytes | None) -> RepoConfig:
        return self.replace(events_public_key=public_key)

    def with_llm(self, settings: LlmSettings | None) -> RepoConfig:
        return self.replace(llm=settings)

    def with_homely(self, settings: HomelySettings | None) -> RepoConfig:
        return self.replace(homely=settings)

    def write(self, path: Path) -> None:
        write_private(path, self.to_toml())

    @classmethod
    def read(cls, path: Path) -> RepoConfig:
        try:
            with path.open("rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise BadConfig(str(path), "missing") from None
        except OSError as exc:
            raise BadConfig(str(path), str(exc)) from exc
        data = parse_simple_toml(raw)
        if data is None:  # not the plain shape STEVE writes: the full TOML parser
            import tomllib

            try:
                data = tomllib.loads(raw.decode())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
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
                research=ResearchSettings.from_toml(data.get("research"), path),
                homely=HomelySettings.from_toml(data.get("homely"), path),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadConfig(str(path), f"missing or invalid field: {exc}") from exc


_TABLE = re.compile(r"\[([a-z][a-z_]*)\]")
_KEY_VALUE = re.compile(
    r'([a-z][a-z_]*) = (?:"([^"\\]*)"|(0|[1-9][0-9]{0,17})|(true|false))'
)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # tabs, CR, ... : tomllib decides


def parse_simple_toml(raw: bytes) -> dict[str, Any] | None:
    """``raw`` as :func:`tomllib.loads` reads it, when it has the plain shape STEVE
    writes (comment lines, ``[table]`` headers, ``key = value`` with a string without
    escapes, a decimal integer or a boolean; each table and key once); None for
    anything else, which the caller gives to tomllib (start-up time: tomllib and
    what it imports cost more than reading the config).  ``tests/store/
    test_config_toml.py`` checks that it never reads a text otherwise than tomllib."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if _CONTROL.search(text):
        return None
    data: dict[str, Any] = {}
    table = data
    for line in text.split("\n"):
        if not line or line[0] == "#":
            continue
        if line[0] == "[":
            header = _TABLE.fullmatch(line)
            if header is None or header[1] in data:
                return None
            table = data[header[1]] = {}
            continue
        pair = _KEY_VALUE.fullmatch(line)
        if pair is None or pair[1] in table:
            return None
        key, string, number, boolean = pair.groups()
        if string is not None:
            table[key] = string
        elif number is not None:
            table[key] = int(number)
        else:
            table[key] = boolean == "true"
    return data


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
                isinstance(r, dict) and all(isinstance(v, str) for v in r.values()) for r in item
            ):
                raise ValueError("[[gate.rule]] entries must be tables of strings")
        elif not isinstance(item, int) or isinstance(item, bool):
            raise ValueError(f"[gate] {key} must be an integer")
    return value


def _gate_toml(gate: dict[str, Any]) -> str:
    import json  # writing a config only (start-up time)

    lines = [
        "\n# The policy gate (docs/policy.md): rules here can only tighten the defaults.",
        "[gate]",
    ]
    lines += [f"{k} = {int(v)}" for k, v in sorted(gate.items()) if k != "rule"]
    for rule in gate.get("rule", []):
        lines += ["", "[[gate.rule]]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in sorted(rule.items())]
    return "\n".join(lines) + "\n"
