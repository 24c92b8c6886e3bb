"""The repository's event log as steved uses it: one appender (on the writer thread)
and one reader per follower, each opened with the held key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from steve.events import EventLog
from steve.events.model import Event, Level
from steve.events.store import EventFilter

EVENTS_DB = "events.db"


def event_to_wire(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "time": event.time,
        "level": event.level.value,
        "event_type": event.event_type,
        "run_id": event.run_id,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "actor": event.actor,
        "payload_bytes": event.payload_bytes,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def event_from_wire(value: dict[str, Any]) -> Event:
    return Event(**{**value, "level": Level.parse(str(value["level"]))})


class Reader:
    def __init__(self, log: EventLog) -> None:
        self._log = log

    def head(self) -> int:
        return self._log.head().seq

    def page(
        self, from_seq: int, limit: int, filters: dict[str, str | None]
    ) -> list[dict[str, Any]]:
        flt = EventFilter(
            filters.get("run_id"),
            filters.get("correlation_id"),
            filters.get("event_type"),
            from_seq,
        )
        out: list[dict[str, Any]] = []
        for event in self._log.store().iter_events(flt, page=limit):
            out.append(event_to_wire(event))
            if len(out) >= limit:
                break
        return out

    def close(self) -> None:
        self._log.close()


class RepoEvents:
    """The :class:`steve.daemon.server.EventSource` of a repository directory."""

    def __init__(self, steve_dir: Path, *, actor: str | None = None) -> None:
        self.path = steve_dir / EVENTS_DB
        self.actor = actor
        self._log: EventLog | None = None
        self._key: bytes | None = None

    def _appender(self, key: bytes) -> EventLog:
        if self._log is None or self._key != key:
            self.close()
            self._log = EventLog(
                self.path,
                key,
                key_checked=True,
                actor=self.actor,
                correlation_id=os.urandom(16).hex(),
            )
            self._key = key
        return self._log

    def append(self, key: bytes, event_type: str, payloads: list[dict[str, Any]]) -> int:
        log = self._appender(key)
        for payload in payloads:
            log.emit(event_type, payload)
        log.flush()
        return log.head().seq

    def head(self, key: bytes) -> int:
        return self._appender(key).head().seq

    def reader(self, key: bytes) -> Reader:
        return Reader(EventLog(self.path, key, key_checked=True))

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
            self._key = None
