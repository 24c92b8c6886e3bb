"""Structured logs: one JSON object per line (DEVPATH 12.1).

    {"ts": "2025-01-18T12:00:00.000Z", "level": "info", "target": "steve.events",
     "correlation_id": "9f0c...", "msg": "ref.updated", "fields": {"ref": "refs/heads/main"}}

The library never chooses where logs go: a :class:`JsonLogger` writes to the
text stream it is given (the CLI passes stderr or a file).  :func:`redact`
runs over every ``fields`` map: values under secret-looking keys become
``"[redacted]"``, byte strings become ``"<N bytes>"`` (object contents and
log chunks never reach a log line), and long text is cut.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from steve.events.model import Level

SECRET_KEY = re.compile(
    r"(pass(word|phrase)?|secret|token|api[_-]?key|private|credential|auth|cookie|session|"
    r"^key$|_key$|^data$|^content$|^chunk$)",
    re.I,
)
MAX_STRING = 200
MAX_ITEMS = 32
MAX_DEPTH = 4
REDACTED = "[redacted]"


def redact(value: Any, key: str = "", depth: int = 0) -> Any:
    """A copy of ``value`` safe to write to a log (see the module docstring)."""
    if key and SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "..."
    if depth >= MAX_DEPTH:
        return "<...>"
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): redact(v, str(k), depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more"
        return out
    if isinstance(value, list | tuple):
        seq = [redact(v, "", depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            seq.append(f"... {len(value) - MAX_ITEMS} more")
        return seq
    return f"<{type(value).__name__}>"


def iso_ms(t: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2025-01-18T12:00:00.000Z``."""
    whole = int(t)
    ms = int((t - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


class JsonLogger:
    """Writes JSON Lines records at or above ``level`` to ``stream`` (thread-safe)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        level: Level | str = Level.WARNING,
        correlation_id: str | None = None,
        target: str = "steve",
    ) -> None:
        self._stream = stream
        self.level = Level.parse(level) if isinstance(level, str) else level
        self.correlation_id = correlation_id
        self.target = target
        self._lock = threading.Lock()

    def enabled(self, level: Level) -> bool:
        return level.rank >= self.level.rank

    def record(
        self,
        level: Level,
        msg: str,
        fields: Mapping[str, Any] | None = None,
        *,
        target: str | None = None,
        correlation_id: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The record that :meth:`log` writes (redacted)."""
        return {
            "ts": iso_ms(time.time() if now is None else now),
            "level": level.value,
            "target": target or self.target,
            "correlation_id": correlation_id or self.correlation_id,
            "msg": redact(msg),
            "fields": redact(dict(fields or {})),
        }

    def log(
        self,
        level: Level | str,
        msg: str,
        fields: Mapping[str, Any] | None = None,
        *,
        target: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        lv = Level.parse(level) if isinstance(level, str) else level
        if not self.enabled(lv):
            return
        line = json.dumps(
            self.record(lv, msg, fields, target=target, correlation_id=correlation_id),
            ensure_ascii=False,
            separators=(",", ":"),
        )
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def debug(self, msg: str, **fields: Any) -> None:
        self.log(Level.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log(Level.INFO, msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.log(Level.WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log(Level.ERROR, msg, fields)
