"""The progress display: library progress reports drawn on a terminal, or nothing.

:func:`progress_display` yields a :class:`steve.progress.Progress` that draws
with rich on standard error when standard error is a terminal and neither
``--quiet`` nor ``STEVE_QUIET`` is given; otherwise it yields None and the
library skips every report (no bytes written, no rich imported).  Standard
output is never touched: ids, JSON and listings stay exactly as without a
terminal.

A command run through steved (``steve/cli/forward.py``) writes to the daemon's
frame streams, which are not terminals.  A client whose standard error is a
terminal says so in the environment it forwards (:data:`FORWARDED_TTY`, with
its width); the command then draws inside steved as it would directly, and
the display travels as ordinary standard-error frames (about 8 a second).

The display shows what (the task), how far (done/total and a bar, or the
count when the total is not known), how fast (units per second), for how
long, and what is being worked on (the running node, a path).  Reports are
cheap: :meth:`TerminalProgress.advance` adds to a counter and hands rich the
new figures at most every :data:`PUSH_INTERVAL` seconds; rich redraws
:data:`REFRESH_PER_SECOND` times a second on its own thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from steve.cli.app import LENT_REPO, is_terminal

if TYPE_CHECKING:
    from steve.cli.app import Context
    from steve.porcelain.steps import Progress as NodeProgress
    from steve.porcelain.steps import ProgressCallback
    from steve.progress import Progress

PUSH_INTERVAL = 0.05
"""Seconds between two updates handed to rich (the counter is exact at finish)."""
REFRESH_PER_SECOND = 8
STRIDE_MAX = 128
"""Most reports between two readings of the clock."""
DETAIL_MAX = 40
"""Characters of the detail shown (a longer one keeps its end)."""
DELAY = 0.5
"""Seconds a command runs before its display appears (``STEVE_PROGRESS_DELAY``); the
displays of few, slow steps (build, test, replay, backup, restore) appear at once."""


FORWARDED_TTY = "STEVE_PROGRESS_TTY"
"""Set by a client whose standard error is a terminal in the environment it forwards
to steved: ``COLUMNS`` of that terminal, then `` stdout`` when standard output is
the same kind of terminal."""


def forwarded_terminal() -> tuple[int, bool] | None:
    """Inside steved, running a forwarded command: (columns, stdout is a terminal too)
    of the client's terminal, or None (a client without one, or not in steved)."""
    if LENT_REPO.get() is None:
        return None
    parts = os.environ.get(FORWARDED_TTY, "").split()
    if not parts or not parts[0].isdigit() or not 20 <= int(parts[0]) <= 1000:
        return None
    return int(parts[0]), parts[1:] == ["stdout"]


def client_terminal() -> str | None:
    """The value of :data:`FORWARDED_TTY` a client forwarding a command sends (None:
    its standard error is not a terminal)."""
    if not os.isatty(2):
        return None
    try:
        columns = os.get_terminal_size(2).columns
    except OSError:
        columns = 80
    return f"{columns} stdout" if os.isatty(1) else str(columns)


def wanted(state: Context | None = None, *, quiet: bool = False) -> bool:
    """Whether a command should draw progress: stderr is a terminal (or, in steved,
    the client's is), not quiet."""
    if quiet or (state is not None and state.quiet):
        return False
    return is_terminal(sys.stderr.buffer) or forwarded_terminal() is not None


class TerminalProgress:
    """A :class:`steve.progress.Progress` drawn with rich on standard error.

    Nothing is drawn, and rich is not even imported, before ``delay`` seconds
    have passed (git's delayed progress): a command that ends sooner costs only
    the counting.  The figures are exact from the start of each phase whenever
    the display appears."""

    def __init__(self, delay: float = 0.0) -> None:
        self._show_at = time.monotonic() + delay
        far = forwarded_terminal()
        self.shares_stdout = far[1] if far is not None else is_terminal(sys.stdout.buffer)
        """Whether standard output is a terminal too (results and display share it)."""
        self._bar: Any = None  # rich.progress.Progress, once shown
        self._console: Any = None
        self._task: Any = None  # the phase's rich task, once shown
        self._phase: tuple[str, int | None, str] | None = None  # (task, total, unit)
        self._began = 0.0
        self._done = 0
        self._total: int | None = None
        self._detail = ""
        self._next = 0.0
        self._left = self._stride = 1  # reports until the clock is read again
        self._tick_at = 0.0

    # --- steve.progress.Progress ---------------------------------------------------------

    def start(self, task: str, total: int | None = None, *, unit: str = "") -> None:
        self.finish()
        self._phase = (task, total, unit)
        self._began = time.monotonic()
        self._done, self._total, self._detail = 0, total, ""
        self._next = 0.0
        self._left = self._stride = 1
        self._tick_at = self._began
        if self._bar is not None or self._began >= self._show_at:
            self._show()
            self._bar.refresh()  # the task shows at once, however short it is

    def advance(self, n: int = 1, detail: str = "") -> None:
        self._done += n
        if detail:
            self._detail = detail
        self._left -= 1
        if self._left <= 0:
            self._tick()

    def _tick(self) -> None:
        """Every ``_stride`` reports: read the clock, push when due, and pick the next
        stride so that the clock is read about four times per push, however fast
        (one report a minute, or millions a second) the reports come."""
        now = time.monotonic()
        took = now - self._tick_at
        self._tick_at = now
        if took > 0:
            self._stride = max(1, min(STRIDE_MAX, int(self._stride * PUSH_INTERVAL / 4 / took)))
        else:
            self._stride = min(STRIDE_MAX, self._stride * 2)
        self._left = self._stride
        if now >= self._next:
            self._next = now + PUSH_INTERVAL
            self._push(now)

    def finish(self) -> None:
        if self._task is not None:
            self._push(time.monotonic())
            self._bar.refresh()  # the final figures, drawn once
            self._bar.remove_task(self._task)
            self._task = None
        self._phase = None

    # --- more -----------------------------------------------------------------------------

    def update(self, done: int, total: int | None, detail: str) -> None:
        """Set the figures at once (for reports that carry them, like the build's)."""
        self._done, self._total, self._detail = done, total, detail
        self._push(time.monotonic())

    @contextmanager
    def hold(self) -> Iterator[None]:
        """For a write to standard output while the display is up: when standard output
        is a terminal too, the display's line is erased first and redrawn by the next
        refresh, so the two do not mix on one line."""
        if self._bar is None or not self.shares_stdout:
            yield
            return
        # rich's Live draws under this lock (its refresh thread included)
        with self._bar.live._lock:
            self._console.file.write("\r\x1b[2K")
            self._console.file.flush()
            yield
            sys.stdout.flush()

    def close(self) -> None:
        self.finish()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _push(self, now: float) -> None:
        if self._phase is None:
            return
        if self._task is None:
            if now < self._show_at:
                return
            self._show()
        done = self._done if self._total is None else min(self._done, self._total)
        detail = self._detail
        if len(detail) > DETAIL_MAX:  # a path's end says most
            detail = "\u2026" + detail[-(DETAIL_MAX - 1) :]
        self._bar.update(self._task, completed=done, total=self._total, detail=detail)

    def _show(self) -> None:
        """Start drawing (rich imported now) and add the current phase."""
        if self._bar is None:
            self._bar, self._console = _rich_display()
            self._bar.start()
        assert self._phase is not None
        task, total, unit = self._phase
        self._task = self._bar.add_task(task, total=total, unit=unit, detail="", began=self._began)


def _rich_display() -> tuple[Any, Any]:
    """(a rich Progress drawing one line on standard error, its Console)."""
    import rich.progress as rp
    from rich.console import Console
    from rich.text import Text

    class _Count(rp.ProgressColumn):
        def render(self, task: rp.Task) -> Text:
            unit = task.fields.get("unit", "")
            unit = f" {unit}" if unit else ""
            done = int(task.completed)
            if task.total is None:
                return Text(f"{done}{unit}")
            return Text(f"{done}/{int(task.total)}{unit}")

    class _Rate(rp.ProgressColumn):
        """Units per second since the phase began (not since it was first drawn)."""

        def render(self, task: rp.Task) -> Text:
            took = time.monotonic() - task.fields["began"]
            if not task.completed or took <= 0:
                return Text("")
            speed = task.completed / took
            return Text(f"{speed:,.0f}/s" if speed >= 10 else f"{speed:.1f}/s")

    class _Elapsed(rp.ProgressColumn):
        def render(self, task: rp.Task) -> Text:
            took = int(time.monotonic() - task.fields["began"])
            return Text(f"{took // 3600}:{took // 60 % 60:02d}:{took % 60:02d}", style="yellow")

    far = forwarded_terminal()  # in steved: frames to the client's terminal
    if far is not None:
        console = Console(file=sys.stderr, highlight=False, force_terminal=True, width=far[0])
    else:
        console = Console(file=sys.stderr, highlight=False)
    bar = rp.Progress(
        rp.SpinnerColumn(),
        rp.TextColumn("[bold]{task.description}"),
        rp.BarColumn(bar_width=24),
        _Count(),
        _Rate(),
        _Elapsed(),
        rp.TextColumn("{task.fields[detail]}"),
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
        refresh_per_second=REFRESH_PER_SECOND,
    )
    return bar, console


def delay() -> float:
    """Seconds before a display appears: ``STEVE_PROGRESS_DELAY`` (tests set 0), else
    :data:`DELAY`."""
    text = os.environ.get("STEVE_PROGRESS_DELAY", "")
    try:
        value = float(text) if text else DELAY
    except ValueError:
        return DELAY
    return value if 0 <= value < 3600 else DELAY


def terminal_progress(
    state: Context | None = None, *, quiet: bool = False, at_once: bool = False
) -> TerminalProgress | None:
    """A display if :func:`wanted` (shown after :func:`delay`, or ``at_once`` for
    reports that come seconds apart), else None; the caller closes it
    (:meth:`TerminalProgress.close`)."""
    if not wanted(state, quiet=quiet):
        return None
    return TerminalProgress(0.0 if at_once else delay())


@contextmanager
def progress_display(
    state: Context | None = None, *, quiet: bool = False, at_once: bool = False
) -> Iterator[Progress | None]:
    """A :class:`steve.progress.Progress` for the block, or None (see the module
    docstring and :func:`terminal_progress`); the display is removed when the block
    ends, however it ends."""
    shown = terminal_progress(state, quiet=quiet, at_once=at_once)
    try:
        yield shown
    finally:
        if shown is not None:
            shown.close()


@contextmanager
def node_display(
    task: str, state: Context | None = None, *, quiet: bool = False
) -> Iterator[ProgressCallback | None]:
    """The build executor's node reports (:class:`steve.porcelain.steps.Progress`)
    drawn as one task: nodes done of total, the running nodes as the detail."""
    if not wanted(state, quiet=quiet):
        yield None
        return
    shown = TerminalProgress()
    running: list[str] = []
    lock = threading.Lock()  # reports come from the executor's step threads
    try:
        shown.start(task, None, unit="nodes")

        def report(p: NodeProgress) -> None:
            with lock:
                if p.status.value == "started":
                    running.append(p.node)
                elif p.node in running:
                    running.remove(p.node)
                more = f" +{len(running) - 3}" if len(running) > 3 else ""
                detail = f"running {' '.join(running[:3])}{more}" if running else ""
                shown.update(p.done, p.total, detail)

        yield report
    finally:
        shown.close()


@contextmanager
def held(shown: Progress | None) -> Iterator[None]:
    """:meth:`TerminalProgress.hold` of ``shown`` (nothing for None or another kind)."""
    if isinstance(shown, TerminalProgress) and shown.shares_stdout:
        with shown.hold():
            yield
    else:
        yield


__all__ = [
    "TerminalProgress",
    "held",
    "node_display",
    "progress_display",
    "terminal_progress",
    "wanted",
]
