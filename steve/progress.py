"""Progress of long work: the one callback protocol the library reports to.

A long library call (``fsck``, ``gc``, ``verify``, ``export_git``,
``import_git``, ``backup``, ``restore``, ``replay_all``, ...) takes an
optional ``progress: Progress | None = None`` and, when one is given, tells
it what it is doing; with None it does nothing more than one ``is None``
test per report.  The library never prints: ``steve.cli.progress`` draws
these reports on a terminal (rich, on standard error) and nothing otherwise.

The protocol, for one call:

* ``start(task, total, unit=...)`` begins a phase: ``task`` names it
  ("fsck", "gc: marking"), ``total`` is how many units it will do (None:
  not known in advance), ``unit`` what is counted ("objects", "files").
  A call may have several phases, one after the other; a new ``start``
  ends the one before.
* ``advance(n, detail)`` says ``n`` more units are done (``n >= 0``; 0 only
  changes the detail) and ``detail`` is what is being worked on now (a node
  name, a path; "" keeps the last one).  The sum of ``n`` never decreases
  and never exceeds ``total`` when ``total`` is known.
* ``finish()`` ends the last phase.  A call that raises may skip it; the
  caller of the library (the CLI's display) closes what is left.

Reports come from one thread at a time unless the function's documentation
says otherwise.  :class:`Recorder` keeps the reports as data (tests, and
callers that want to forward them, e.g. as daemon frames).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class Progress(Protocol):
    """Receives the progress reports of one library call (module docstring)."""

    def start(self, task: str, total: int | None = None, *, unit: str = "") -> None: ...

    def advance(self, n: int = 1, detail: str = "") -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One report, as data: ``kind`` is the method called."""

    kind: Literal["start", "advance", "finish"]
    task: str = ""
    total: int | None = None
    unit: str = ""
    n: int = 0
    detail: str = ""


@dataclass
class Recorder:
    """A :class:`Progress` that keeps every report (in order) in :attr:`events`."""

    events: list[ProgressEvent] = field(default_factory=list)

    def start(self, task: str, total: int | None = None, *, unit: str = "") -> None:
        self.events.append(ProgressEvent("start", task, total, unit))

    def advance(self, n: int = 1, detail: str = "") -> None:
        self.events.append(ProgressEvent("advance", n=n, detail=detail))

    def finish(self) -> None:
        self.events.append(ProgressEvent("finish"))

    def phases(self) -> list[tuple[str, int | None, int]]:
        """(task, total, units done) of each phase, in order."""
        out: list[tuple[str, int | None, int]] = []
        for e in self.events:
            if e.kind == "start":
                out.append((e.task, e.total, 0))
            elif e.kind == "advance" and out:
                task, total, done = out[-1]
                out[-1] = (task, total, done + e.n)
        return out


def tracked(
    items: Iterable[T],
    progress: Progress | None,
    task: str,
    total: int | None = None,
    *,
    unit: str = "",
) -> Iterator[T]:
    """``items`` unchanged, reporting one unit per item to ``progress`` (a phase of
    its own, finished when ``items`` is exhausted); just ``items`` when None."""
    if progress is None:
        yield from items
        return
    progress.start(task, total, unit=unit)
    for item in items:
        yield item
        progress.advance(1)
    progress.finish()


__all__ = ["Progress", "ProgressEvent", "Recorder", "tracked"]
