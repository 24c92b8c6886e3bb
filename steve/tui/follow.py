"""The live side of the TUI: a thread that follows the event log like
``steve events --follow`` and folds a run's events into node states and bounded
per-node log buffers, which the screen reads in batches.

The follower polls ``events.db`` (WAL: reading never blocks the process that
builds), so it works while another process builds or tests.  It starts at
the run's latest ``build.started``/``test.started`` (so a build already
under way, or the last one, is shown from its start) and keeps following
until stopped.  Step output reaches the log as ``log.chunk`` events, which
the build's spooler (:class:`steve.events.LogSpooler`) emits each time 64 KiB
have collected and when the stream closes, so a quiet step's output shows
when its step ends and a chatty one's within a fraction of a second.

Memory is bounded: each node keeps its last ``ring`` lines (a ring buffer)
and one partial line of at most ``max_line`` characters; the screen asks for
what changed since its last look (:meth:`RunTracker.take`).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from steve.errors import SteveError
from steve.events import Event, EventLog
from steve.porcelain.escape import escape_text
from steve.porcelain.logs import latest_start
from steve.tui.data import EVENT_STATES, NodeState, PlanGraph

__all__ = ["Changes", "EventFollower", "NodeLog", "RunTracker"]

RING_LINES = 2000
"""Lines kept per node (older ones are dropped; ``steve logs`` has them all)."""
MAX_LINE = 4096
"""A longer line is cut there (the rest of it is dropped from the display)."""
BATCH = 256
"""Events folded under one lock (the screen never waits for a long catch-up)."""
STAGE_EVENTS = ("run.transition", "manifest.frozen", "ref.updated", "run.switched")
"""Events after which the stage view and the manifest list are read again."""


@dataclass
class NodeLog:
    """One node's last lines (stdout and stderr interleaved as they arrived)."""

    ring: int
    lines: deque[str] = field(init=False)
    total: int = 0  # lines ever appended
    partial: dict[str, str] = field(default_factory=dict)  # stream -> unterminated line

    def __post_init__(self) -> None:
        self.lines = deque(maxlen=self.ring)

    def append(self, line: str) -> None:
        self.lines.append(line)
        self.total += 1

    def since(self, seen: int) -> tuple[list[str], bool]:
        """(lines appended after the first ``seen``, whether older ones were dropped
        in between so the caller must start again from these)."""
        new = self.total - seen
        if new <= 0:
            return [], False
        if new >= len(self.lines):
            return list(self.lines), seen > 0 or new > len(self.lines)
        return list(itertools.islice(self.lines, len(self.lines) - new, None)), False


@dataclass
class Changes:
    """What changed since the screen last looked."""

    states: dict[str, NodeState]
    reload: bool  # the stage, the plan or the manifests may have changed
    notes: list[str]
    last_seq: int


class RunTracker:
    """Folds one run's events into node states and node logs (thread-safe)."""

    def __init__(
        self,
        graph: PlanGraph | None,
        states: dict[str, NodeState] | None = None,
        *,
        ring: int = RING_LINES,
        max_line: int = MAX_LINE,
    ) -> None:
        self._lock = threading.Lock()
        self.graph = graph
        self.states: dict[str, NodeState] = dict(states or {})
        self.logs: dict[str, NodeLog] = {}
        self._ring = ring
        self._max_line = max_line
        self._changed: dict[str, NodeState] = {}
        self._reload = False
        self._notes: list[str] = []
        self.last_seq = 0  # the last event of the run folded
        self.polls = 0  # times the follower has read up to the log's end

    def set_graph(self, graph: PlanGraph | None, states: dict[str, NodeState]) -> None:
        """A new plan (or a fresh read of the receipts) replaces the node states."""
        with self._lock:
            self.graph = graph
            self.states = dict(states)
            self._changed.clear()

    def feed(self, events: Iterable[Event]) -> None:
        with self._lock:
            for event in events:
                self._apply(event)
                self.last_seq = event.seq

    def take(self) -> Changes:
        with self._lock:
            out = Changes(dict(self._changed), self._reload, self._notes, self.last_seq)
            self._changed = {}
            self._reload = False
            self._notes = []
            return out

    def log_since(self, node: str, seen: int) -> tuple[list[str], bool, int]:
        """The node's lines after the first ``seen`` (see :meth:`NodeLog.since`) and
        its new total."""
        with self._lock:
            log = self.logs.get(node)
            if log is None:
                return [], False, 0
            lines, restart = log.since(seen)
            return lines, restart, log.total

    # --- folding -------------------------------------------------------------------------

    def _set(self, node: str, state: NodeState) -> None:
        self.states[node] = state
        self._changed[node] = state

    def _apply(self, event: Event) -> None:
        kind, p = event.event_type, event.payload
        if kind == "log.chunk":
            step, stream, data = p.get("step"), p.get("stream"), p.get("data")
            if isinstance(step, str) and isinstance(stream, str) and isinstance(data, bytes):
                self._chunk(step, stream, data)
        elif kind == "log.end":
            step, stream = p.get("step"), p.get("stream")
            if isinstance(step, str) and isinstance(stream, str):
                self._end(step, stream)
        elif kind in EVENT_STATES:
            node = p.get("node")
            if isinstance(node, str):
                self._set(node, EVENT_STATES[kind])
                if kind == "step.started":
                    self._log(node).append(f"── {node} started (event {event.seq}) ──")
        elif kind in ("build.started", "test.started"):
            phase = kind.split(".")[0]
            plan = p.get("plan")
            if self.graph is not None and plan != self.graph.plan.hex:
                self._reload = True  # another plan: the screen reads it again
            elif self.graph is not None:
                for nid in self.graph.ids(phase):
                    self._set(nid, NodeState.QUEUED)
            self._notes.append(f"{kind} (event {event.seq})")
        elif kind in ("build.finished", "test.finished"):
            ok = p.get("ok", p.get("verdict"))
            self._notes.append(f"{kind} ok={ok} (event {event.seq})")
            self._reload = True
        elif kind in STAGE_EVENTS:
            self._reload = True

    def _log(self, node: str) -> NodeLog:
        log = self.logs.get(node)
        if log is None:
            log = self.logs[node] = NodeLog(self._ring)
        return log

    def _chunk(self, step: str, stream: str, data: bytes) -> None:
        log = self._log(step)
        text = log.partial.pop(stream, "") + escape_text(data.decode("utf-8", "replace"))
        parts = text.split("\n")
        rest = parts.pop()
        cut = self._max_line
        for line in parts[-self._ring :] if len(parts) > self._ring else parts:
            log.append(line if len(line) <= cut else line[:cut])
        log.total += max(0, len(parts) - self._ring)  # counted though never kept
        if rest:
            log.partial[stream] = rest[:cut]

    def _end(self, step: str, stream: str) -> None:
        log = self.logs.get(step)
        if log is not None and stream in log.partial:
            log.append(log.partial.pop(stream))


class EventFollower(threading.Thread):
    """Follows ``log`` for one run's events from its latest build/test start
    (``from_seq`` to override) and feeds ``tracker`` until :meth:`stop`."""

    def __init__(
        self,
        log: EventLog,
        run_id: str,
        tracker: RunTracker,
        *,
        from_seq: int | None = None,
        poll: float = 0.1,
        on_error: Callable[[SteveError], None] | None = None,
    ) -> None:
        super().__init__(name="steve-tui-follow", daemon=True)
        self._log = log
        self._run = run_id
        self._tracker = tracker
        self._from = from_seq
        self._poll = poll
        self._halt = threading.Event()
        self._on_error = on_error

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            nxt = self._from
            if nxt is None:
                nxt = latest_start(self._log, self._run) or self._log.head().seq + 1
            while not self._halt.is_set():
                batch: list[Event] = []
                for event in self._log.events(run_id=self._run, from_seq=nxt):
                    batch.append(event)
                    nxt = event.seq + 1
                    if len(batch) >= BATCH:
                        self._tracker.feed(batch)
                        batch = []
                self._tracker.feed(batch)
                self._tracker.polls += 1
                self._halt.wait(self._poll)
        except SteveError as exc:  # reported on the screen, never a traceback
            if self._on_error is not None:
                self._on_error(exc)
